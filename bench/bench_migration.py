"""Moving in: how fast ``migrate_from`` moves a predecessor's keys, and what others feel meanwhile.

On a private redis-server (``--save "" --appendonly no``, stopped at the end):
seed ``--keys`` keys in the old service's layout (``tenant:<id>:search:<txn>``
JSON entries with a 30-minute TTL and ``...:responses`` lists, half each),
then move them with ``TenantStore.migrate_from`` (with and without the index)
while an open-loop probe on its own connection GETs a key every 1 ms and the
server's SLOWLOG records every command of 10 us or more (``--slowlog-us``: at 0
Redis also logs each command a script calls, about 13 per key moved, which
overflows SLOWLOG and adds its own time to the scripts'). Reports keys/s, the probe's latency
percentiles, the longest command, the load average before and after, and the
SLOWLOG distribution of the migration's own scripts per kind (``read``,
``delete``, ``write``, ``index write``: the write script of a tenant with an
index), told apart by their SHA1 and, for the write, by its first keys:
calls, server time (mean, p50, p99, max, calls over 1 ms), keys per call,
and what the calls over 1 ms carried.

    .venv/bin/python bench/bench_migration.py --keys 100000 --quiet-load 0.5 \
        --json docs/bench_migration.json

``--quiet-load`` waits before each run for the 1-minute load average to fall
under it (the seeding and the previous run load the machine themselves).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

import tenantkv
from tenantkv.backends.redis.scripts import script_source
from tenantkv.cli.loadtest.probe import Probe
from tenantkv.cli.loadtest.results import LatencyStats
from tenantkv.cli.loadtest.servers import PrivateServer
from tenantkv.cli.loadtest.target import describe_machine

TENANT = "buyer-app.example.com"
OLD_PREFIX = f"tenant:{TENANT}:"


#: The migration's scripts by SHA1 (as EVALSHA names them).
SCRIPTS = {
    hashlib.sha1(script_source(f"migrate_{name}").encode()).hexdigest().encode(): name
    for name in ("read", "delete", "write")
}
#: SLOWLOG entries kept (one per script at least 10 us long: a few per key moved).
SLOWLOG_MAX_LEN = 1_000_000
#: The benchmark's own commands, left out of SLOWLOG's figures.
OWN = (b"SLOWLOG", b"CONFIG")
#: A script over this many us is over the default budget.
BUDGET_US = 1_000


def script_call(command: bytes) -> tuple[str, int] | None:
    """``(kind, keys moved)`` of a migration script's SLOWLOG command line, else ``None``.

    SLOWLOG shows the first 32 arguments: ``EVALSHA sha numkeys KEYS...``, so the name and the
    number of keys are always there. The write script's first three keys are the index, the
    expiry set and the ledger; without an index all three are the ledger.
    """
    parts = command.split(b" ")
    if len(parts) < 3 or parts[0].upper() != b"EVALSHA" or parts[1] not in SCRIPTS:
        return None
    kind, numkeys = SCRIPTS[parts[1]], int(parts[2])
    if kind != "write":
        return kind, numkeys
    indexed = len(parts) > 5 and parts[3] != parts[5]
    return ("index write" if indexed else "write"), numkeys - 3


def _percentile(ordered: list[int], share: float) -> int:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def slowlog_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The SLOWLOG distribution of each migration script, and of the other commands."""
    calls: dict[str, list[tuple[int, int, int]]] = {}  # kind -> (order, us, keys)
    others: Counter[str] = Counter()
    slow_others: Counter[str] = Counter()
    for order, entry in enumerate(sorted(entries, key=lambda entry: int(entry["id"]))):
        command: bytes = entry["command"]
        duration = int(entry["duration"])
        found = script_call(command)
        if found is None:
            name = command.split(b" ", 1)[0].decode(errors="replace").upper()
            others[name] += 1
            if duration > BUDGET_US:
                slow_others[name] += 1
            continue
        kind, carried = found
        calls.setdefault(kind, []).append((order, duration, carried))
    scripts: dict[str, Any] = {}
    for kind, runs in calls.items():
        durations = sorted(us for _, us, _ in runs)
        keys = [n for _, _, n in runs]
        slow = [(order, us, n) for order, us, n in runs if us > BUDGET_US]
        scripts[kind] = {
            "calls": len(runs),
            "mean_us": round(statistics.fmean(durations), 1),
            "p50_us": _percentile(durations, 0.50),
            "p99_us": _percentile(durations, 0.99),
            "max_us": durations[-1],
            "over_1ms": len(slow),
            "keys_per_call_mean": round(statistics.fmean(keys), 1),
            "keys_per_call_min": min(keys),
            "keys_per_call_max": max(keys),
            "us_per_key_mean": round(sum(durations) / max(1, sum(keys)), 2),
            # Whether the slow calls carry more: their keys, and whether one is the first call.
            "over_1ms_keys_per_call_mean": round(statistics.fmean(n for _, _, n in slow), 1)
            if slow
            else None,
            "over_1ms_first_call": bool(slow) and slow[0][0] == runs[0][0],
            "slowest": [
                {"us": us, "keys": n, "call": runs.index((order, us, n))}
                for order, us, n in sorted(slow, key=lambda run: -run[1])[:5]
            ],
        }
    return {
        "scripts": scripts,
        "other_commands": dict(others.most_common()),
        "other_commands_over_1ms": dict(slow_others.most_common()),
    }


def seed(client: redis.Redis, keys: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(keys // 2):
        txn = f"0190c3e2-7a4b-7c1d-9f2e-{i:012x}"
        entry = {
            "transactionId": txn,
            "messageId": f"m-{i}",
            "categoryCode": "FIS13",
            "ttl": "PT5M",
        }
        pipe.set(f"{OLD_PREFIX}search:{txn}", json.dumps(entry), px=1_800_000)
        pipe.rpush(f"{OLD_PREFIX}search:{txn}:responses", json.dumps({"bpp": f"seller-{i % 7}"}))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def settle(load: float | None, most_s: float = 300.0) -> float:
    """Wait (at most ``most_s``) for the 1-minute load average to fall under ``load``; the
    seconds waited."""
    started = time.monotonic()
    while load is not None and os.getloadavg()[0] >= load:
        if time.monotonic() - started > most_s:
            break
        time.sleep(5)
    return round(time.monotonic() - started, 1)


async def run_once(
    server: PrivateServer, keys: int, index: bool, budget_ms: float | None, quiet: float | None
) -> dict[str, Any]:
    with server.client() as client:
        seed(client, keys)
        client.set("probe", "x")
        client.config_set("slowlog-max-len", SLOWLOG_MAX_LEN)
        client.slowlog_reset()
        client.config_resetstat()
    settled_s = settle(quiet)
    load_before = os.getloadavg()
    with Probe(server.url, "probe", interval_ms=1.0) as probe:
        options: dict[str, Any] = {} if budget_ms is None else {"budget_ms": budget_ms}
        async with tenantkv.open_store(server.url, tenant=TENANT, index=index, **options) as store:
            probe.begin()
            started = time.perf_counter()
            report = await store.migrate_from(OLD_PREFIX)
            elapsed = time.perf_counter() - started
            recording = probe.end()
            load_after = os.getloadavg()
            with server.client() as client:
                entries = client.slowlog_get(SLOWLOG_MAX_LEN)
                evalsha = client.info("commandstats").get("cmdstat_evalsha", {})
            await store.clear()
    # The benchmark's own SLOWLOG RESET (of the previous run's entries) is not the migration's.
    entries = [entry for entry in entries if not entry["command"].upper().startswith(OWN)]
    slowest = max(entries, key=lambda entry: int(entry["duration"]), default=None)
    latency = LatencyStats.of(recording.latency)
    return {
        "index": index,
        "keys": keys,
        "moved": report.moved,
        "seconds": round(elapsed, 3),
        "keys_per_s": round(report.moved / elapsed),
        "probe_ms": {
            "p50": latency.p50_ms,
            "p99": latency.p99_ms,
            "p999": latency.p999_ms,
            "max": latency.max_ms,
            "samples": latency.samples,
        },
        "slowest_command_us": None if slowest is None else slowest["duration"],
        "slowest_command": None
        if slowest is None
        else b" ".join(slowest["command"].split()[:2]).decode(),
        "slowlog_entries": len(entries),
        # SLOWLOG kept every script if it holds as many EVALSHA as the server ran.
        "evalsha_calls": evalsha.get("calls", 0),
        "evalsha_mean_us": evalsha.get("usec_per_call"),
        "slowlog": slowlog_summary(entries),
        "settled_s": settled_s,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    extra = ("--slowlog-log-slower-than", str(args.slowlog_us))
    with PrivateServer(extra_args=extra) as server:
        runs = [
            await run_once(server, args.keys, index, args.budget_ms, args.quiet_load)
            for index in (False, True)
        ]
        return {"redis_version": server.version, "machine": describe_machine(), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--budget-ms", type=float, help="the store's budget_ms (default: its own)")
    parser.add_argument(
        "--quiet-load",
        type=float,
        help="before each run, wait (5 min at most) for the 1-minute load average to fall under "
        "this (the previous run's own load takes about a minute to fade)",
    )
    parser.add_argument(
        "--slowlog-us",
        type=int,
        default=10,
        help="SLOWLOG threshold: at 0 the server also logs every command a script calls "
        "(13 per key moved), which overflows SLOWLOG and slows the scripts themselves",
    )
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
