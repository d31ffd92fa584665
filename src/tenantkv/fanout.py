"""Bounded fan-out: one awaitable per hash slot, node or tenant shard, a few at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

__all__ = ["MAX_PARALLEL", "gather_limited"]

#: Most awaitables of one fan-out in flight at once. redis-py's cluster
#: client fails rather than waits when a node's connection pool is exhausted
#: (100 connections by default), and a tenant can have up to 100 shards.
MAX_PARALLEL = 16

T = TypeVar("T")


async def gather_limited(awaitables: Iterable[Awaitable[T]], limit: int = MAX_PARALLEL) -> list[T]:
    """Run ``awaitables`` with at most ``limit`` at a time; their results in order.

    If one fails, the others are cancelled and its error is raised. A single
    awaitable is simply awaited (no task).
    """
    pending = list(awaitables)
    if len(pending) == 1:
        return [await pending[0]]
    gate = asyncio.Semaphore(limit)

    async def gated(awaitable: Awaitable[T]) -> T:
        async with gate:
            return await awaitable

    tasks = [asyncio.ensure_future(gated(a)) for a in pending]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
