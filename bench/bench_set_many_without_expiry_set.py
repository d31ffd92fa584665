"""Experiment for issue 3's open decision: batched TTL writes if the index had no ``#exp`` set.

The index keeps two sorted sets; a key with a TTL costs an insert into each
(``#idx`` by name, ``#exp`` by expiry time). ``#exp`` is what makes
``count_keys()`` an exact O(log N) call under expiry and lets writes prune
expired entries. This measures what dropping it would save on the one write
that misses the 1.25x target: a ``set_many`` of 1,000 keys with a TTL.

Three scripts get the same arguments, by raw ``EVALSHA`` (no store, so the
client's per-key work, which would dilute every ratio, is left out):

- ``plain``: ``lua/set_many_unindexed.lua``, what a store without the index runs;
- ``index``: ``lua/set_many.lua``, what the index runs today;
- ``index without #exp``: the same script without its ``#exp`` insert and its
  pruning (nothing else would change on a write).

Batches of new keys rotate through the three in alternating order, on one
private ``redis-server``. Figures: µs per key, median over the batches, and
each ratio to ``plain``.

Usage: ``.venv/bin/python bench/bench_set_many_without_expiry_set.py --json results/x.json``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import redis

import tenantkv
from tenantkv.backends.redis.scripts import lua_source, script_source
from tenantkv.cli.loadtest.servers import PrivateServer

BATCH = 1000
TTL_MS = 600_000
VALUE = json.dumps(
    {"id": "txn-0000000000", "state": "active", "amount": 1234.5, "note": "x" * 40}
).encode()

_EXPIRY_LINES = "  batched('ZADD', exp, expiries, 1)\n  prune(PRUNE_PER_WRITE * n, now)\n"


def without_expiry_set() -> str:
    source = script_source("set_many")
    if _EXPIRY_LINES not in source:
        raise SystemExit("lua/set_many.lua changed: update this experiment")
    return source.replace(_EXPIRY_LINES, "")


def run(client: redis.Redis, rounds: int) -> dict[str, Any]:
    sources = {
        "plain": lua_source("set_many_unindexed"),
        "index": script_source("set_many"),
        "index without #exp": without_expiry_set(),
    }
    shas = {name: str(client.script_load(source)) for name, source in sources.items()}
    samples: dict[str, list[float]] = {name: [] for name in sources}
    names = list(sources)
    for batch in range(rounds):
        for name in names if batch % 2 else names[::-1]:
            namespace = tenantkv.Namespace(f"x-{name.split()[0]}-{len(name)}")
            keys = [namespace.key(f"b{batch}:{i}") for i in range(BATCH)]
            if name == "plain":
                args: list[Any] = [str(TTL_MS), *([VALUE] * BATCH)]
                index_keys: list[str] = []
            else:
                args = [str(TTL_MS), len(namespace.key_prefix.encode()), *([VALUE] * BATCH)]
                index_keys = [namespace.meta_key("idx"), namespace.meta_key("exp")]
            all_keys = [*index_keys, *keys]
            start = time.perf_counter()
            client.evalsha(shas[name], len(all_keys), *all_keys, *args)
            samples[name].append((time.perf_counter() - start) / BATCH * 1e6)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "redis_version": client.info("server")["redis_version"],
        "batch": BATCH,
        "rounds": rounds,
        "us_per_key": {name: round(value, 3) for name, value in medians.items()},
        "ratio_to_plain": {
            name: round(value / medians["plain"], 3) for name, value in medians.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result here as JSON")
    parser.add_argument("--rounds", type=int, default=60, help="batches per script")
    options = parser.parse_args()
    with PrivateServer() as server, server.client() as client:
        result = run(client, options.rounds)
    print(json.dumps(result, indent=2))
    if options.json is not None:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
