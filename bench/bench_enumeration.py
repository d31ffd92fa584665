"""Benchmark: listing and clearing a tenant, tenantkv against the raw commands, side by side.

Everything runs on one private ``redis-server`` started here and stopped at
the end (never the machine's shared server), in rounds that interleave the
variants, so that a drift of the machine's speed hits them alike; ratios are
per round, against the baseline of the same round, then the median.

For each keyspace size (``--sizes``):

- **whole**: a tenant that is (nearly) the whole keyspace (``size`` keys;
  a 1,000-key tenant is the only other data);
- **small**: a 1,000-key tenant among those ``size`` keys of another tenant.

Listings: ``KEYS``; a raw redis-py asyncio SCAN loop (COUNT 1000, a ``set``
for de-duplication); ``store.keys()`` by SCAN; a raw ``ZRANGE idx (last +
BYLEX LIMIT 0 1000`` walk of the tenant's index; ``store.keys()`` with
``index=True``; redis-py's ``scan_iter()`` with its default COUNT (one run:
it is slow). Clears (``--clear-size`` keys, refilled before each variant, in
database 1): ``KEYS`` + one ``DEL``; a raw SCAN + UNLINK loop; ``clear()`` by
SCAN; a raw loop of the index clear's own commands (``ZRANGE idx (last + BYLEX LIMIT 0
1000``, then ``MULTI``, ``ZREM`` of the chunk from ``#idx`` and ``#exp``, ``UNLINK`` of its
keys, ``EXEC``); ``clear()`` by the index; and the same five for the small tenant.

Per variant: wall ms (median of ``--rounds``), the client's CPU ms, the
server's own ms (``INFO commandstats``, all commands but the benchmark's own
INFO/CONFIG/SLOWLOG, and without ``EXEC``'s time: the commands a transaction ran
are counted on their own, and ``EXEC``'s usec holds theirs again), its calls. A
separate pass per tenantkv variant runs with ``SLOWLOG`` recording every command
(threshold 0) and reports the mean,
p50, p99 and maximum of the server time of its commands and how many took
over 1 ms (the time budget); with ``--long-size`` the same is measured on
80-byte keys. Peak Python memory (``tracemalloc``) of ``iter_keys`` per
strategy, streamed (nothing kept) and as ``keys()``, at the largest size.
The load average is recorded at the start, per round and at the end.

Usage (see README, "Listing and clearing at the speed of the protocol")::

    .venv/bin/python bench/bench_enumeration.py --sizes 100000,1000000 \\
        --json docs/bench_enumeration.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis

import tenantkv
from tenantkv.cli.loadtest.servers import PrivateServer
from tenantkv.cli.loadtest.target import describe_machine

VALUE = b'{"id":"txn-0000000000","state":"active","amount":1234.5,"note":"xxxxxxxxxxxxx"}'[:70]
BIG, SMALL, LONG = "bench", "small", "long"
SMALL_KEYS = 1000
RAW_COUNT = 1000
#: The clears' variant names (bench_clear_key_shapes runs the same clears).
KEYS_DEL, CLEAR_SCAN, CLEAR_INDEX = "KEYS + DEL", "clear() by SCAN", "clear() by index"
RAW_SCAN_UNLINK = "raw SCAN + UNLINK (COUNT 1000)"
RAW_INDEX_CLEAR = "raw ZRANGE + MULTI/ZREM/UNLINK (1000)"
#: The server commands of the benchmark itself, left out of the server's time.
OWN_COMMANDS = frozenset(
    [
        "info",
        "config|resetstat",
        "config|set",
        "config|get",
        "slowlog|get",
        "slowlog|reset",
        "slowlog|len",
        "select",
        "ping",
        "client|setinfo",
        "hello",
    ]
)


def short_name(i: int) -> str:
    return f"txn:{i:07d}"  # tkv:{bench}:txn:0000000 is 23 bytes


def long_name(i: int) -> str:
    """An ONDC-like name: 80 bytes with the tenant prefix ``tkv:{long}:``."""
    h = f"{(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1):032x}"
    uuid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return f"search/{i % 9973:05d}/{uuid}/responses/bpp".ljust(69, "_")[:69]


def physical(tenant: str, key: str) -> str:
    return f"tkv:{{{tenant}}}:{key}"


def fill(
    client: redis.Redis,
    tenant: str,
    names: list[str],
    *,
    index: bool = True,
    order_seed: int | None = 1,
) -> None:
    """Write ``names`` (in a shuffled order unless ``order_seed`` is None) and their index."""
    order = list(range(len(names)))
    if order_seed is not None:
        random.Random(order_seed).shuffle(order)
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(order), 1000):
            part = order[start : start + 1000]
            pipe.mset({physical(tenant, names[i]): VALUE for i in part})
            if index:
                pipe.zadd(f"tkv:{{{tenant}}}#idx", {names[i]: 0 for i in reversed(part)})
            if len(pipe) >= 50:
                pipe.execute()
        pipe.execute()


def server_time(client: redis.Redis) -> dict[str, tuple[int, int]]:
    stats: dict[str, Any] = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in stats.items()
    }


def delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, Any]:
    calls, usec, by, ms_by = 0, 0, {}, {}
    for name, (c, u) in after.items():
        if name in OWN_COMMANDS:
            continue
        c0, u0 = before.get(name, (0, 0))
        if c - c0:
            calls += c - c0
            if name != "exec":  # its usec is the queued commands', counted on their own
                usec += u - u0
                ms_by[name] = round((u - u0) / 1000, 1)
            by[name] = c - c0
    return {
        "server_ms": round(usec / 1000, 1),
        "server_calls": calls,
        "calls_by_command": by,
        "server_ms_by_command": ms_by,
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- variants ----------------------------------------------------------------------------------

Action = Callable[[], Awaitable[int]]


class Bench:
    def __init__(self, server: PrivateServer, client: redis.Redis) -> None:
        self.server = server
        self.client = client
        self._raws: dict[int, aioredis.Redis] = {}
        self.raw = self.raw_db(0)
        self.stores: dict[tuple[str, bool, int], tenantkv.TenantStore] = {}

    async def store(self, tenant: str, index: bool, db: int = 0) -> tenantkv.TenantStore:
        key = (tenant, index, db)
        if key not in self.stores:
            url = f"redis://{self.server.host}:{self.server.port}/{db}"
            self.stores[key] = await tenantkv.open_store(url, tenant=tenant, index=index)
        return self.stores[key]

    async def aclose(self) -> None:
        for store in self.stores.values():
            await store.aclose()
        for raw in self._raws.values():
            await raw.aclose()

    def raw_db(self, db: int) -> aioredis.Redis:
        """A plain redis-py asyncio client of database ``db`` (the raw variants')."""
        if db not in self._raws:
            self._raws[db] = aioredis.Redis(
                host=self.server.host, port=self.server.port, db=db, **_maint_off()
            )
        return self._raws[db]

    # listings: each returns the number of distinct keys found
    def listings(self, tenant: str) -> dict[str, Action]:
        match = f"tkv:{{{tenant}}}:*"
        idx = f"tkv:{{{tenant}}}#idx"
        raw = self.raw

        async def keys_command() -> int:
            return len(await raw.keys(match))

        async def raw_scan() -> int:
            seen: set[bytes] = set()
            cursor = 0
            while True:
                cursor, page = await raw.scan(cursor=cursor, match=match, count=RAW_COUNT)
                seen.update(cast("list[bytes]", page))
                if cursor == 0:
                    return len(seen)

        async def raw_zrange() -> int:
            out: list[bytes] = []
            low: bytes = b"-"
            while True:
                chunk = cast(
                    "list[bytes]",
                    await raw.zrange(idx, low, "+", bylex=True, offset=0, num=RAW_COUNT),
                )
                out.extend(chunk)
                if len(chunk) < RAW_COUNT:
                    return len(out)
                low = b"(" + chunk[-1]

        async def tenantkv_scan() -> int:
            return len(await (await self.store(tenant, False)).keys())

        async def tenantkv_index() -> int:
            return len(await (await self.store(tenant, True)).keys())

        return {
            "KEYS": keys_command,
            "raw SCAN loop (COUNT 1000, set)": raw_scan,
            "tenantkv SCAN": tenantkv_scan,
            "raw ZRANGE BYLEX walk (1000)": raw_zrange,
            "tenantkv index": tenantkv_index,
        }

    def scan_iter(self, tenant: str) -> Action:
        async def scan_iter_default() -> int:
            return len({key async for key in self.raw.scan_iter(match=f"tkv:{{{tenant}}}:*")})

        return scan_iter_default

    def clears(self, tenant: str, db: int) -> dict[str, Action]:
        match = f"tkv:{{{tenant}}}:*"
        idx, exp, prefix = f"tkv:{{{tenant}}}#idx", f"tkv:{{{tenant}}}#exp", match[:-1].encode()
        raw = self.raw_db(db)

        async def keys_del() -> int:
            found = await raw.keys(match)
            return int(await raw.delete(*found)) if found else 0

        async def raw_scan_unlink() -> int:
            cursor, deleted = 0, 0
            while True:
                cursor, page = await raw.scan(cursor=cursor, match=match, count=RAW_COUNT)
                if page:
                    deleted += int(await raw.unlink(*page))
                if cursor == 0:
                    return deleted

        async def raw_index_clear() -> int:
            # The commands of clear() by index, one after the other: a chunk of the index,
            # then its entries and keys in one transaction.
            deleted, low = 0, b"-"
            while True:
                chunk = cast(
                    "list[bytes]",
                    await raw.zrange(idx, low, "+", bylex=True, offset=0, num=RAW_COUNT),
                )
                if chunk:
                    async with raw.pipeline(transaction=True) as pipe:
                        pipe.zrem(idx, *chunk)
                        pipe.zrem(exp, *chunk)
                        pipe.unlink(*(prefix + member for member in chunk))
                        deleted += int((await pipe.execute())[-1])
                if len(chunk) < RAW_COUNT:
                    return deleted
                low = b"(" + chunk[-1]

        async def clear_scan() -> int:
            return await (await self.store(tenant, False, db)).clear()

        async def clear_index() -> int:
            return await (await self.store(tenant, True, db)).clear()

        return {
            KEYS_DEL: keys_del,
            RAW_SCAN_UNLINK: raw_scan_unlink,
            CLEAR_SCAN: clear_scan,
            RAW_INDEX_CLEAR: raw_index_clear,
            CLEAR_INDEX: clear_index,
        }


def _maint_off() -> dict[str, Any]:
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


async def measure(client: redis.Redis, action: Action) -> dict[str, Any]:
    gc.collect()
    before = server_time(client)
    cpu, start = time.process_time(), time.perf_counter()
    found = await action()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = {"wall_ms": round(wall * 1000, 1), "client_cpu_ms": round(cpu * 1000, 1), "found": found}
    out.update(delta(before, server_time(client)))
    return out


async def slowlog_pass(client: redis.Redis, action: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run ``action`` with every command recorded; the spread of their server times."""
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    try:
        await action()
        entries = client.slowlog_get(1_000_000)
    finally:
        client.config_set("slowlog-log-slower-than", 10_000)
    # The commands that carry a page or chunk: not the walk's own INFO readings, nor the
    # constant-time TIME, WATCH, MULTI and first-expiry reads of an index walk.
    entries = [e for e in entries if not _bookkeeping(bytes(e["command"]))]
    durations = sorted(int(e["duration"]) for e in entries)
    if not durations:
        return {"commands": 0}
    longest = max(entries, key=lambda e: int(e["duration"]))
    return {
        "commands": len(durations),
        "mean_us": round(statistics.fmean(durations), 1),
        "p50_us": durations[len(durations) // 2],
        "p99_us": durations[min(len(durations) - 1, int(len(durations) * 0.99))],
        "max_us": durations[-1],
        "over_1ms": sum(1 for d in durations if d > 1000),
        "longest_command": bytes(longest["command"])[:60].decode(errors="replace"),
    }


def _bookkeeping(command: bytes) -> bool:
    head = command.lower()
    if head.startswith((b"slowlog", b"config", b"info", b"time", b"watch", b"multi")):
        return True
    return head.startswith(b"zrange") and head.endswith(b" 0 0 withscores")


async def rounds(
    bench: Bench,
    variants: dict[str, Action],
    n: int,
    expected: int,
    *,
    refill: Callable[[], None] | None = None,
    db_client: redis.Redis | None = None,
) -> dict[str, Any]:
    """Run every variant ``n`` times, interleaved; medians and per-round ratios to the first."""
    client = db_client or bench.client
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    loads: list[list[float]] = []
    for _ in range(n):
        loads.append(loadavg())
        for name, action in variants.items():
            if refill is not None:
                refill()
            result = await measure(client, action)
            if result["found"] != expected:
                raise AssertionError(f"{name}: found {result['found']} of {expected}")
            runs[name].append(result)
            print(f"  {name:34s} {result['wall_ms']:9.1f} ms  server {result['server_ms']} ms")
    baseline = next(iter(variants))
    out: dict[str, Any] = {"load_per_round": loads, "variants": {}}
    for name, results in runs.items():
        ratios = [r["wall_ms"] / b["wall_ms"] for r, b in zip(results, runs[baseline], strict=True)]
        out["variants"][name] = {
            "wall_ms": statistics.median(r["wall_ms"] for r in results),
            "wall_ms_runs": [r["wall_ms"] for r in results],
            "ratio_to_" + _slug(baseline): round(statistics.median(ratios), 3),
            "client_cpu_ms": statistics.median(r["client_cpu_ms"] for r in results),
            "server_ms": statistics.median(r["server_ms"] for r in results),
            "server_calls": statistics.median(r["server_calls"] for r in results),
            "calls_by_command": results[-1]["calls_by_command"],
            "server_ms_by_command": {
                name: statistics.median(r["server_ms_by_command"].get(name, 0.0) for r in results)
                for name in results[-1]["server_ms_by_command"]
            },
        }
    return out


def _slug(name: str) -> str:
    return name.split(" (")[0].replace(" ", "_").replace("+", "").replace("__", "_").lower()


def add_ratios(section: dict[str, Any], pairs: list[tuple[str, str, str]]) -> None:
    """Per-round ratios of variant pairs (numerator, denominator) -> ``ratios[label]``."""
    v = section["variants"]
    for label, num, den in pairs:
        if num in v and den in v:
            per_round = [
                a / b for a, b in zip(v[num]["wall_ms_runs"], v[den]["wall_ms_runs"], strict=True)
            ]
            section.setdefault("ratios", {})[label] = round(statistics.median(per_round), 3)


async def peak_memory(bench: Bench, tenant: str, expected: int) -> dict[str, Any]:
    """Peak Python memory (tracemalloc) of iter_keys (streamed) and keys() per strategy."""
    out: dict[str, Any] = {}
    for label, index in (("SCAN", False), ("index", True)):
        store = await bench.store(tenant, index)
        for mode in ("iter_keys", "keys"):
            gc.collect()
            tracemalloc.start()
            if mode == "iter_keys":
                n = 0
                async with contextlib.aclosing(store.iter_keys()) as keys:
                    async for _ in keys:
                        n += 1
            else:
                n = len(await store.keys())
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert n == expected, (label, mode, n)
            out[f"{label} {mode}"] = round(peak / 1e6, 1)
            print(f"  peak memory {label} {mode}: {out[f'{label} {mode}']} MB")
    return out


async def budget_passes(bench: Bench, tenant: str, db: int, refill: Callable[[], None]) -> Any:
    client = bench.client if db == 0 else redis.Redis(port=bench.server.port, db=db)
    out = {}
    refill()
    for name, index in (("tenantkv SCAN", False), ("tenantkv index", True)):
        store = await bench.store(tenant, index, db)
        out[name] = await slowlog_pass(client, store.keys)
        print(f"  SLOWLOG {name}: {out[name]}")
    for name, index in ((CLEAR_SCAN, False), (CLEAR_INDEX, True)):
        refill()
        store = await bench.store(tenant, index, db)
        out[name] = await slowlog_pass(client, store.clear)
        print(f"  SLOWLOG {name}: {out[name]}")
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    extra = ("--slowlog-log-slower-than", "10000", "--slowlog-max-len", "1000000")
    results: dict[str, Any] = {
        "load_start": loadavg(),
        "machine": describe_machine(),
        "args": vars(args),
        "sizes": {},
    }
    with PrivateServer(args.redis_server, extra_args=extra) as server, server.client() as client:
        results["redis_version"] = server.version
        bench = Bench(server, client)
        try:
            # Warm up the connections and the index scripts.
            for tenant in (BIG, SMALL):
                await bench.store(tenant, True)
                await bench.store(tenant, False)
            small_names = [f"txn:{i:04d}" for i in range(SMALL_KEYS)]
            for size in sizes:
                print(f"== {size:,} keys", flush=True)
                client.flushall()
                fill(client, BIG, [short_name(i) for i in range(size)], order_seed=args.order_seed)
                fill(client, SMALL, small_names, order_seed=args.order_seed)
                section: dict[str, Any] = {"keyspace": client.dbsize()}
                print(" whole keyspace:", flush=True)
                whole = await rounds(bench, bench.listings(BIG), args.rounds, size)
                add_ratios(
                    whole,
                    [
                        (
                            "tenantkv SCAN / raw SCAN loop",
                            "tenantkv SCAN",
                            "raw SCAN loop (COUNT 1000, set)",
                        ),
                        ("tenantkv index / KEYS", "tenantkv index", "KEYS"),
                        (
                            "tenantkv index / raw ZRANGE walk",
                            "tenantkv index",
                            "raw ZRANGE BYLEX walk (1000)",
                        ),
                    ],
                )
                section["whole"] = whole
                print(" small tenant:", flush=True)
                small = await rounds(bench, bench.listings(SMALL), args.rounds, SMALL_KEYS)
                section["small"] = small
                if args.scan_iter:
                    print(" scan_iter():", flush=True)
                    section["scan_iter_default"] = {
                        "whole": await measure(client, bench.scan_iter(BIG)),
                        "small": await measure(client, bench.scan_iter(SMALL)),
                    }
                    print(f"  {section['scan_iter_default']}")
                print(" small tenant clears:", flush=True)

                def refill_small() -> None:
                    fill(client, SMALL, small_names, order_seed=args.order_seed)

                section["small_clear"] = await rounds(
                    bench, bench.clears(SMALL, 0), args.rounds, SMALL_KEYS, refill=refill_small
                )
                if size == max(sizes) and args.memory:
                    print(" peak memory:", flush=True)
                    section["peak_memory_mb"] = await peak_memory(bench, BIG, size)
                results["sizes"][str(size)] = section

            print(f"== clears of {args.clear_size:,} keys (database 1)", flush=True)
            db1 = redis.Redis(port=server.port, db=1)
            names = [short_name(i) for i in range(args.clear_size)]

            def refill_big() -> None:
                db1.flushdb()
                fill(db1, BIG, names, order_seed=args.order_seed)

            clears = await rounds(
                bench,
                bench.clears(BIG, 1),
                args.rounds,
                args.clear_size,
                refill=refill_big,
                db_client=db1,
            )
            add_ratios(
                clears,
                [
                    ("clear() by SCAN / KEYS + DEL", CLEAR_SCAN, KEYS_DEL),
                    ("clear() by index / clear() by SCAN", CLEAR_INDEX, CLEAR_SCAN),
                    ("clear() by index / raw index clear loop", CLEAR_INDEX, RAW_INDEX_CLEAR),
                    ("raw index clear loop / raw SCAN + UNLINK", RAW_INDEX_CLEAR, RAW_SCAN_UNLINK),
                ],
            )
            results["clear"] = {"keys": args.clear_size, **clears}
            print(" SLOWLOG passes (short keys):", flush=True)
            results["clear"]["slowlog"] = await budget_passes(bench, BIG, 1, refill_big)

            if args.long_size:
                print(f"== {args.long_size:,} keys of 80 bytes (database 2)", flush=True)
                db2 = redis.Redis(port=server.port, db=2)
                long_names = [long_name(i) for i in range(args.long_size)]
                assert len(physical(LONG, long_names[0]).encode()) == 80

                def refill_long() -> None:
                    db2.flushdb()
                    fill(db2, LONG, long_names, order_seed=args.order_seed)

                refill_long()
                results["long_keys"] = {
                    "keys": args.long_size,
                    "key_bytes": 80,
                    "slowlog": await budget_passes(bench, LONG, 2, refill_long),
                }
                db2.flushdb()
        finally:
            await bench.aclose()
    results["load_end"] = loadavg()
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Redis {results['redis_version']}; load average {results['load_start']} at the start, "
        f"{results['load_end']} at the end; wall ms: median of {results['args']['rounds']} "
        "interleaved rounds; ratios: median of per-round ratios.",
        "",
        "| keyspace | tenant | variant | wall ms | ratio | client CPU ms | server ms | calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, section in results["sizes"].items():
        for scenario in ("whole", "small", "small_clear"):
            for name, v in section[scenario]["variants"].items():
                ratio = next(val for key, val in v.items() if key.startswith("ratio_to_"))
                lines.append(
                    f"| {int(size):,} | {scenario} | {name} | {v['wall_ms']} | {ratio}x "
                    f"| {v['client_cpu_ms']} | {v['server_ms']} | {v['server_calls']} |"
                )
        for label, value in section["whole"].get("ratios", {}).items():
            lines.append(f"| {int(size):,} | whole | **{label}** | | {value}x | | | |")
    clear = results["clear"]
    for name, v in clear["variants"].items():
        ratio = next(val for key, val in v.items() if key.startswith("ratio_to_"))
        lines.append(
            f"| clear {clear['keys']:,} | whole | {name} | {v['wall_ms']} | {ratio}x "
            f"| {v['client_cpu_ms']} | {v['server_ms']} | {v['server_calls']} |"
        )
    for label, value in clear.get("ratios", {}).items():
        lines.append(f"| clear {clear['keys']:,} | whole | **{label}** | | {value}x | | | |")
    lines += [
        "",
        "| keys | variant | commands | mean µs | p50 | p99 | max | over 1 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for where in ("clear", "long_keys"):
        if where not in results:
            continue
        label = "23-byte" if where == "clear" else "80-byte"
        for name, s in results[where]["slowlog"].items():
            if not s.get("commands"):
                continue
            lines.append(
                f"| {label} | {name} | {s['commands']} | {s['mean_us']} | {s['p50_us']} "
                f"| {s['p99_us']} | {s['max_us']} | {s['over_1ms']} |"
            )
    for size, section in results["sizes"].items():
        if "peak_memory_mb" in section:
            shown = ", ".join(f"{k} {v} MB" for k, v in section["peak_memory_mb"].items())
            lines += ["", f"Peak Python memory at {int(size):,} keys: {shown}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="keyspace sizes")
    parser.add_argument("--clear-size", type=int, default=100_000, help="keys of the big clear")
    parser.add_argument(
        "--long-size", type=int, default=1_000_000, help="80-byte keys for the budget check (0: no)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--layout",
        choices=("random", "sorted"),
        default="random",
        help="insertion order of keys and index entries: shuffled (the server's memory is "
        "not in name order, as with live traffic) or in name order",
    )
    parser.add_argument(
        "--no-scan-iter", dest="scan_iter", action="store_false", help="skip scan_iter()"
    )
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the tracemalloc pass"
    )
    parser.add_argument("--redis-server", default=None, help="redis-server binary")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    args.order_seed = 1 if args.layout == "random" else None
    results = asyncio.run(run(args))
    table = markdown(results)
    results["markdown"] = table
    print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
