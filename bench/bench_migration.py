"""Moving in: how fast ``migrate_from`` moves a predecessor's keys, and what others feel meanwhile.

On a private redis-server (``--save "" --appendonly no``, stopped at the end):
seed ``--keys`` keys in the old service's layout (``tenant:<id>:search:<txn>``
JSON entries with a 30-minute TTL and ``...:responses`` lists, half each),
then move them with ``TenantStore.migrate_from`` (with and without the index)
while an open-loop probe on its own connection GETs a key every 1 ms and the
server's SLOWLOG records every command. Reports keys/s, the probe's latency
percentiles, the longest command, and the load average before and after.

    .venv/bin/python bench/bench_migration.py --keys 100000 --json docs/bench_migration.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import redis

import tenantkv
from tenantkv.cli.loadtest.probe import Probe
from tenantkv.cli.loadtest.results import LatencyStats
from tenantkv.cli.loadtest.servers import PrivateServer

TENANT = "buyer-app.example.com"
OLD_PREFIX = f"tenant:{TENANT}:"


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


async def run_once(server: PrivateServer, keys: int, index: bool) -> dict[str, Any]:
    with server.client() as client:
        seed(client, keys)
        client.set("probe", "x")
        client.slowlog_reset()
        client.config_set("slowlog-max-len", 1_000_000)
    load_before = os.getloadavg()
    with Probe(server.url, "probe", interval_ms=1.0) as probe:
        async with tenantkv.open_store(server.url, tenant=TENANT, index=index) as store:
            probe.begin()
            started = time.perf_counter()
            report = await store.migrate_from(OLD_PREFIX)
            elapsed = time.perf_counter() - started
            recording = probe.end()
            load_after = os.getloadavg()
            with server.client() as client:
                entries = client.slowlog_get(1_000_000)
            await store.clear()
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
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    extra = ("--slowlog-log-slower-than", "0")
    with PrivateServer(extra_args=extra) as server:
        runs = [await run_once(server, args.keys, index) for index in (False, True)]
        return {"redis_version": server.version, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
