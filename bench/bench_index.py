"""Benchmark: what the per-tenant key index costs on writes and saves on listing.

Runs everything side by side on one private ``redis-server`` (started here,
stopped at the end; never the machine's shared server):

- write cost with and without the index: sequential ``store.set`` (one round
  trip each), pipelined single writes (1000 per pipeline, raw redis-py: plain
  ``SET`` vs the index's ``EVALSHA``), and ``set_many`` batches of 1000
  (one script either way: MSET or SET PX per key, vs the same plus the index
  updates); with and without a TTL; µs per write and the ratio indexed / plain,
  and the server's own µs per write (INFO commandstats);
- listing a 1,000-key tenant inside 10K / 100K / 1M-key keyspaces: SCAN
  (COUNT 1000) vs the index (chunks of 1000); median wall ms and server calls;
- memory: ``MEMORY USAGE`` of the index sorted sets per indexed key.

Usage: ``.venv/bin/python bench/bench_index.py --json results/bench_index.json``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import redis

import tenantkv
from tenantkv.backends.redis import RedisBackend
from tenantkv.backends.redis.index import RedisKeyIndex
from tenantkv.cli.loadtest.servers import PrivateServer
from tenantkv.cli.loadtest.target import describe_machine
from tenantkv.index import IndexKeys

VALUE = {"id": "txn-0000000000", "state": "active", "amount": 1234.5, "note": "x" * 40}
BATCH = 1000
TENANT_KEYS = 1000


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


def redis_backend(store: tenantkv.TenantStore) -> RedisBackend:
    backend = store.backend
    assert isinstance(backend, RedisBackend)
    return backend


async def key_index(store: tenantkv.TenantStore) -> RedisKeyIndex:
    ns = store.namespace
    index = redis_backend(store).key_index(
        IndexKeys(ns.meta_key("idx"), ns.meta_key("exp"), ns.key_prefix)
    )
    await index.prepare()
    return index


# -- writes ------------------------------------------------------------------------------------
#
# Each variant writes blocks of BATCH keys, alternately without and with the index (ABBA order,
# so a drift of the machine's speed hits both sides alike), on one pair of stores opened for the
# variant. Every block writes new keys, as new transactions do. The figures are µs per write:
# the median over the blocks of each side, and the ratio of those medians.


class Side:
    """One side of a write comparison: a store, and its key index if it has one."""

    def __init__(self, store: tenantkv.TenantStore, index: RedisKeyIndex | None) -> None:
        self.store = store
        self.index = index


Block = Callable[[Side, str, int | None], Awaitable[None]]


async def sequential(side: Side, block: str, ttl_ms: int | None) -> None:
    store = side.store
    for i in range(BATCH):
        await store.set(f"{block}:{i}", VALUE, ttl_ms=ttl_ms)


async def pipelined(side: Side, block: str, ttl_ms: int | None) -> None:
    """One raw redis-py pipeline of BATCH single writes: ``SET`` or the index's ``EVALSHA``."""
    index = side.index
    payload = json.dumps(VALUE).encode()
    key = side.store.namespace.key
    async with redis_backend(side.store).client.pipeline(transaction=False) as pipe:
        for i in range(BATCH):
            if index is None:
                pipe.set(key(f"{block}:{i}"), payload, px=ttl_ms)
            else:
                index.queue_set(pipe, key(f"{block}:{i}"), payload, ttl_ms)
        await pipe.execute()


async def batched(side: Side, block: str, ttl_ms: int | None) -> None:
    await side.store.set_many({f"{block}:{i}": VALUE for i in range(BATCH)}, ttl_ms=ttl_ms)


def server_usec(client: redis.Redis, command: str) -> int:
    """Total server time spent in ``command`` so far (µs, from INFO commandstats)."""
    stats: dict[str, Any] = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return 0 if entry is None else int(entry["usec"])


async def bench_writes(url: str, client: redis.Redis, n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # Mode, how it writes a block, and the top-level command whose server time is the write's
    # (a script's time includes the commands it calls): (without the index, with it).
    modes: list[tuple[str, Block, tuple[str, str]]] = [
        ("sequential store.set", sequential, ("set", "evalsha")),
        ("pipelined, 1000/pipeline", pipelined, ("set", "evalsha")),
        ("set_many, 1000/call", batched, ("evalsha", "evalsha")),
    ]
    rounds = max(1, n // (2 * BATCH))
    for mode, write_block, commands in modes:
        for ttl in (None, 600_000):
            samples: dict[bool, list[float]] = {False: [], True: []}
            server_us: dict[bool, int] = {False: 0, True: 0}
            tenant = f"w-{time.monotonic_ns()}"
            async with (
                tenantkv.open_store(url, tenant=f"{tenant}-plain") as plain,
                tenantkv.open_store(url, tenant=f"{tenant}-index", index=True) as indexed,
            ):
                sides = {False: Side(plain, None), True: Side(indexed, await key_index(indexed))}
                for block in range(rounds):
                    order = (False, True, True, False) if block % 2 else (True, False, False, True)
                    for position, side in enumerate(order):
                        name = f"b{block}-{position}"
                        before = server_usec(client, commands[side])
                        seconds = await timed(partial(write_block, sides[side], name, ttl))
                        server_us[side] += server_usec(client, commands[side]) - before
                        samples[side].append(seconds / BATCH * 1e6)
                await plain.clear()
                await indexed.clear()
            plain_us = statistics.median(samples[False])
            index_us = statistics.median(samples[True])
            writes = len(samples[True]) * BATCH
            rows.append(
                {
                    "mode": mode,
                    "ttl": ttl is not None,
                    "blocks": len(samples[True]),
                    "plain_us_per_op": round(plain_us, 2),
                    "index_us_per_op": round(index_us, 2),
                    "ratio": round(index_us / plain_us, 3),
                    "plain_server_us_per_op": round(server_us[False] / writes, 2),
                    "index_server_us_per_op": round(server_us[True] / writes, 2),
                }
            )
            print(rows[-1], flush=True)
    return rows


# -- listing -----------------------------------------------------------------------------------


def calls(client: redis.Redis, command: str) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return 0 if entry is None else int(entry["calls"])


async def bench_listing(
    server: PrivateServer, client: redis.Redis, sizes: list[int], repeats: int, index_repeats: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with (
        tenantkv.open_store(server.url, tenant="listed", index=True) as indexed,
        tenantkv.open_store(server.url, tenant="listed") as scanning,
    ):
        await indexed.set_many({f"txn:{i:06d}": VALUE for i in range(TENANT_KEYS)})
        for size in sizes:
            # Other tenants' keys (DEBUG POPULATE adds only the missing ones).
            populate = ("DEBUG", "POPULATE", size - TENANT_KEYS, "other", 100)
            client.execute_command(*populate)  # type: ignore[no-untyped-call]
            row: dict[str, Any] = {"keyspace": client.dbsize(), "tenant_keys": TENANT_KEYS}
            # An index listing takes well under a millisecond, so the machine's noise is a
            # large part of one run: it gets more runs than a SCAN listing.
            # An index chunk is two ZRANGEs (the chunk, and the expiry set's first entry).
            for name, store, command, runs in (
                ("scan", scanning, "scan", repeats),
                ("index", indexed, "zrange", index_repeats),
            ):
                samples = []
                for _ in range(runs):
                    client.config_resetstat()
                    start = time.perf_counter()
                    keys = await store.keys(count=1000)
                    samples.append(time.perf_counter() - start)
                    assert len(keys) == TENANT_KEYS, len(keys)
                row[f"{name}_ms"] = median_ms(samples)
                row[f"{name}_calls"] = calls(client, command)
            rows.append(row)
            print(row, flush=True)
    return rows


# -- memory ------------------------------------------------------------------------------------


async def bench_memory(url: str, client: redis.Redis) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in (1000, 100_000):
        for ttl in (None, 600_000):
            tenant = f"mem{n}-{int(ttl is not None)}"
            async with tenantkv.open_store(url, tenant=tenant, index=True) as store:
                for start in range(0, n, BATCH):
                    items = {f"txn:{i:08d}": VALUE for i in range(start, start + BATCH)}
                    await store.set_many(items, ttl_ms=ttl)
                ns = store.namespace
                idx = client.memory_usage(ns.meta_key("idx"), samples=0) or 0
                exp = client.memory_usage(ns.meta_key("exp"), samples=0) or 0
                data = client.memory_usage(ns.key("txn:00000000"), samples=0) or 0
                rows.append(
                    {
                        "tenant_keys": n,
                        "ttl": ttl is not None,
                        "member_bytes": len("txn:00000000"),
                        "idx_bytes_per_key": round(idx / n, 1),
                        "exp_bytes_per_key": round(exp / n, 1),
                        "data_key_bytes": data,
                    }
                )
                print(rows[-1], flush=True)
                await store.clear()
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Redis {results['redis_version']}; writes: {results['writes']} per variant and side, "
        f"in blocks of {BATCH}, medians of the blocks; listing: medians of "
        f"{results['repeats']} (SCAN) and {results['index_repeats']} (index) runs.",
        "",
        "| write | TTL | plain µs/op | indexed µs/op | ratio | server µs/op plain, indexed |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["writes_rows"]:
        lines.append(
            f"| {row['mode']} | {'yes' if row['ttl'] else 'no'} | {row['plain_us_per_op']} "
            f"| {row['index_us_per_op']} | {row['ratio']}x "
            f"| {row['plain_server_us_per_op']}, {row['index_server_us_per_op']} |"
        )
    lines += [
        "",
        "| keyspace | SCAN ms | SCAN calls | index ms | index calls |",
        "|---|---|---|---|---|",
    ]
    for row in results["listing_rows"]:
        lines.append(
            f"| {row['keyspace']:,} | {row['scan_ms']} | {row['scan_calls']} "
            f"| {row['index_ms']} | {row['index_calls']} |"
        )
    lines += [
        "",
        "| tenant keys | TTL | idx B/key | exp B/key | one data key B |",
        "|---|---|---|---|---|",
    ]
    for row in results["memory_rows"]:
        lines.append(
            f"| {row['tenant_keys']:,} | {'yes' if row['ttl'] else 'no'} "
            f"| {row['idx_bytes_per_key']} | {row['exp_bytes_per_key']} "
            f"| {row['data_key_bytes']} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    extra = ("--enable-debug-command", "yes")
    with PrivateServer(args.redis_server, extra_args=extra) as server, server.client() as client:
        results: dict[str, Any] = {
            "redis_version": server.version,
            "machine": describe_machine(),
            "writes": args.writes,
            "repeats": args.repeats,
            "index_repeats": args.index_repeats,
        }
        results["writes_rows"] = await bench_writes(server.url, client, args.writes)
        results["memory_rows"] = await bench_memory(server.url, client)
        results["listing_rows"] = await bench_listing(
            server, client, sizes, args.repeats, args.index_repeats
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--writes", type=int, default=40_000, help="writes per variant, with and without the index"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs of each SCAN listing")
    parser.add_argument("--index-repeats", type=int, default=51, help="runs of each index listing")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="keyspace sizes")
    parser.add_argument("--redis-server", default=None, help="redis-server binary")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    table = markdown(results)
    results["markdown"] = table
    print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
