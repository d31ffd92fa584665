"""Benchmark: what a clear costs per key, by SCAN and by the index, for two shapes of key.

The enumeration benchmark's clear uses short sequential names without TTLs
(``txn:0000000``); the load test's keys are the ONDC app's shape: names of
43-53 bytes with a UUID (``search:<uuid>``, ``search:<uuid>:responses``, a
list, ``select:<uuid>:0``), each with a TTL. Both are cleared here side by
side, on one private ``redis-server`` started here (never the machine's
shared one): a tenant of ``--keys`` keys among as many of another tenant,
refilled before each variant in a shuffled order (the index rebuilt by
``reindex()``, the adoption path), in rounds that alternate the variants of
``bench_enumeration``'s clear: ``KEYS`` + one ``DEL``, a raw redis-py SCAN +
UNLINK loop (COUNT 1000), ``clear()`` by SCAN, a raw loop of the index clear's
commands and ``clear()`` by the index.

Per variant (measured as ``bench_enumeration`` does): wall ms, the client's
CPU ms, the server's ms per command (``INFO commandstats``; ``EXEC`` left out,
its commands are counted on their own), and for the index its chunks
(``EXEC`` calls) and keys per chunk. The load average is recorded at the
start, per round and at the end.

Usage::

    .venv/bin/python bench/bench_clear_key_shapes.py --json docs/bench_clear_key_shapes.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench_enumeration import (
    CLEAR_INDEX,
    CLEAR_SCAN,
    KEYS_DEL,
    RAW_INDEX_CLEAR,
    VALUE,
    Bench,
    loadavg,
    measure,
    short_name,
)
from tenantkv.cli.loadtest.dataset import KEYS_PER_TXN, NOISE_TXN_OFFSET, is_list, key_of, value_of
from tenantkv.cli.loadtest.servers import PrivateServer
from tenantkv.cli.loadtest.target import describe_machine

TENANT, NOISE = "shapes", "noise"
#: The load test's TTLs: 30 minutes, spread over a minute.
TTL_MS, TTL_SPREAD = 1_800_000, 60

#: Key ``i`` of a shape: (name, value, a second list item or None for a string, with a TTL).
Shape = Callable[[int], tuple[str, bytes, bytes | None, bool]]


def short_key(i: int) -> tuple[str, bytes, bytes | None, bool]:
    """The enumeration benchmark's shape: ``txn:0000000``, a 70-byte string, no TTL."""
    return short_name(i), VALUE, None, False


def ondc_key(i: int) -> tuple[str, bytes, bytes | None, bool]:
    """The load test's shape (its seeder's): each key with a TTL; one in four a two-item list."""
    second = value_of(i + KEYS_PER_TXN) if is_list(i) else None
    return key_of(i), value_of(i), second, True


def fill(client: redis.Redis, tenant: str, shape: Shape, count: int, first: int = 0) -> None:
    """Write keys ``first..first+count-1`` of ``shape``, in a shuffled order (as live traffic
    writes them: the server's memory is not in name order)."""
    order = list(range(first, first + count))
    random.Random(1).shuffle(order)
    pipe = client.pipeline(transaction=False)
    for i in order:
        name, value, second, ttl = shape(i)
        key = f"tkv:{{{tenant}}}:{name}"
        px = TTL_MS + (i % TTL_SPREAD) * 1000 if ttl else None
        if second is not None:
            pipe.rpush(key, value, second)
            if px is not None:
                pipe.pexpire(key, px)
        else:
            pipe.set(key, value, px=px)
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()


def summary(runs: list[dict[str, Any]], keys: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: statistics.median(r[key] for r in runs)
        for key in ("wall_ms", "client_cpu_ms", "server_ms")
    }
    out["wall_ms_runs"] = [r["wall_ms"] for r in runs]
    out["server_ms_by_command"] = runs[-1]["server_ms_by_command"]
    out["calls_by_command"] = runs[-1]["calls_by_command"]
    chunks = runs[-1]["calls_by_command"].get("exec")
    if chunks:
        out["keys_per_chunk"] = round(keys / chunks, 1)
    out["server_us_per_key"] = round(out["server_ms"] * 1000 / keys, 2)
    return out


def ratio(runs: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> float:
    """The median over rounds of a variant's wall time over the baseline's in the same round."""
    pairs = zip(runs, baseline, strict=True)
    return round(statistics.median(float(r["wall_ms"]) / float(b["wall_ms"]) for r, b in pairs), 3)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "load_start": loadavg(),
        "machine": describe_machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "shapes": {},
    }
    with PrivateServer() as server:
        client = redis.Redis(host=server.host, port=server.port)
        results["redis_version"] = client.info("server")["redis_version"]
        bench = Bench(server, client)
        variants = bench.clears(TENANT, 0)
        by_index = await bench.store(TENANT, True)
        try:
            for shape, names in (("short names, no TTL", short_key), ("ONDC names, TTL", ondc_key)):
                client.flushall()
                # The other tenant's keys: other names (transactions far beyond the tenant's).
                first = NOISE_TXN_OFFSET * KEYS_PER_TXN if names is ondc_key else 10_000_000
                fill(client, NOISE, names, args.keys, first)
                runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
                loads = []
                for _ in range(args.rounds):
                    loads.append(loadavg())
                    for variant, action in variants.items():
                        fill(client, TENANT, names, args.keys)
                        if variant in (CLEAR_INDEX, RAW_INDEX_CLEAR):
                            await by_index.reindex()
                        out = await measure(client, action)
                        if out["found"] != args.keys:
                            raise AssertionError(f"{variant}: deleted {out['found']}")
                        runs[variant].append(out)
                        print(f"  {shape:20s} {variant:32s} {out['wall_ms']:8.1f} ms", flush=True)
                baseline = runs[KEYS_DEL]
                results["shapes"][shape] = {
                    "load_per_round": loads,
                    "variants": {v: summary(rs, args.keys) for v, rs in runs.items()},
                    "ratios_to_keys_del": {v: ratio(rs, baseline) for v, rs in runs.items()},
                    "index_over_scan": ratio(runs[CLEAR_INDEX], runs[CLEAR_SCAN]),
                }
        finally:
            await bench.aclose()
    results["load_end"] = loadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keys", type=int, default=100_000, help="tenant keys (and noise keys)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    for shape, section in results["shapes"].items():
        print(f"{shape}: index/SCAN {section['index_over_scan']}x, to KEYS + DEL:")
        print(f"  {section['ratios_to_keys_del']}")
        for variant, summary in section["variants"].items():
            print(f"  {variant}: {json.dumps(summary)}")
    print("load", results["load_start"], "->", results["load_end"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
