"""Pipelined seeding of transaction-shaped keys, with a progress bar.

Keys are written straight through redis-py pipelines (1,000 keys per round
trip, no MULTI; on a cluster redis-py splits each batch by node) because
seeding is set-up, not what is measured; a tenant measured with the index
gets it built afterwards by ``reindex()``, the library's adoption path.
Every key carries a TTL of about two hours, so even a run killed with
SIGKILL leaves nothing behind for long.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from rich.progress import Progress

from tenantkv import Namespace

from .dataset import KEYS_PER_TXN, is_list, key_of, value_of

__all__ = ["SEED_BATCH", "Seeder"]

SEED_BATCH = 1_000
TTL_MS = 2 * 3600 * 1000
_TTL_JITTER_S = 600


class Seeder:
    """Writes tenants' keys in pipelined batches and shows progress on ``progress``."""

    def __init__(
        self, client: aioredis.Redis | AsyncRedisCluster, progress: Progress | None
    ) -> None:
        self._client = client
        self._progress = progress

    async def seed(
        self, namespace: Namespace, count: int, description: str, *, txn_offset: int = 0
    ) -> float:
        """Write keys ``0..count-1`` of ``namespace``; returns the seconds it took."""
        started = time.perf_counter()
        task = (
            self._progress.add_task(description, total=count)
            if self._progress is not None
            else None
        )
        for first in range(0, count, SEED_BATCH):
            last = min(first + SEED_BATCH, count)
            async with self._client.pipeline(transaction=False) as pipe:
                for index in range(first, last):
                    key = namespace.key(key_of(index, txn_offset=txn_offset))
                    ttl_ms = TTL_MS + (index % _TTL_JITTER_S) * 1000
                    if is_list(index):
                        pipe.rpush(key, value_of(index), value_of(index + KEYS_PER_TXN))
                        pipe.pexpire(key, ttl_ms)
                    else:
                        pipe.set(key, value_of(index), px=ttl_ms)
                await pipe.execute()
            if task is not None and self._progress is not None:
                self._progress.update(task, advance=last - first)
        if task is not None and self._progress is not None:
            self._progress.remove_task(task)
        return time.perf_counter() - started
