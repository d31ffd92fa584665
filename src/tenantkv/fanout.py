"""Bounded fan-out: one call per hash slot, node or tenant shard, a few at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["MAX_PARALLEL", "branches", "gather_limited"]

#: Most awaitables of one fan-out in flight at once. redis-py's cluster
#: client fails rather than waits when a node's connection pool is exhausted
#: (100 connections by default), and a tenant can have up to 100 shards.
MAX_PARALLEL = 16


def branches(connections: int | None, holds: int = 1) -> int:
    """How many branches of one fan-out may run at once when each holds up to ``holds``
    connections of a pool that opens at most ``connections`` (``None``: no limit):
    :data:`MAX_PARALLEL` at most, one at least.

    redis-py's pools fail rather than wait once ``max_connections`` are busy,
    so a fan-out wider than the pool would fail a call the pool could have
    served in turn. (One branch that needs more than the pool fails as
    redis-py does: ``Too many connections``.)
    """
    if connections is None:
        return MAX_PARALLEL
    return max(1, min(MAX_PARALLEL, connections // holds))


T = TypeVar("T")


async def gather_limited(
    calls: Iterable[Callable[[], Awaitable[T]]], limit: int = MAX_PARALLEL
) -> list[T]:
    """Make ``calls`` (each returning an awaitable) with at most ``limit`` running at a time;
    their results in order.

    A call is only made when its turn comes, so nothing is created that a
    cancellation or a failure could leave un-awaited. If one fails, the
    others are cancelled and its error is raised. A single call is simply
    awaited (no task). Bind loop variables with :func:`functools.partial`.
    """
    pending = list(calls)
    if len(pending) == 1:
        return [await pending[0]()]
    gate = asyncio.Semaphore(limit)

    async def gated(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    tasks = [asyncio.ensure_future(gated(call)) for call in pending]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
