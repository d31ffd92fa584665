"""The SCAN walks of one Redis server, each on its own :class:`~.wire.Wire`, one request ahead.

:func:`scan_pages` writes ``SCAN`` i+1 as soon as reply i names its cursor,
then hands page i on; :func:`scan_unlink` (a clear) writes the ``UNLINK`` of
page i together with ``SCAN`` i+1, one round trip per page. Both size each
step from the walk's :class:`~.wire.CommandStats` (the time budget of
:mod:`tenantkv.pacing`). Pages are the keys as the server holds them
(``bytes``); the enumerators cut and decode them, once.

The single-server backend runs these on a connection of its pool; the
cluster backend runs them per node, inside its self-checking node walks.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from .wire import CommandStats, Wire, pack, pack_keys

__all__ = ["Steps", "scan_pages", "scan_unlink"]

#: Splits a page of keys into groups one command may carry together (a cluster's slots).
Splitter = Callable[[list[bytes]], Sequence[list[bytes]]]


class Steps:
    """The steps a walk has written and not yet read, each with the INFO readings around it.

    A step is one write of one or more commands; :meth:`read` returns its
    replies in order. INFO readings (:class:`~.wire.CommandStats`) ride in
    the same writes: the first before the walk's first step, the later ones
    after a step.
    """

    __slots__ = ("_queue", "stats", "wire")

    def __init__(self, wire: Wire, stats: CommandStats) -> None:
        self.wire = wire
        self.stats = stats
        #: Per step written: INFO before it, its replies, INFO after it, its COUNT, when.
        self._queue: deque[tuple[bool, int, bool, int, float]] = deque()

    def count(self) -> int:
        """The COUNT of the next step."""
        return self.stats.pacer.count()

    async def write(self, commands: Sequence[bytes], count: int, calls: Sequence[bytes]) -> None:
        """Write one step of ``count`` keys; ``calls`` names its commands as INFO does."""
        stats = self.stats
        before = after = False
        if stats.due():
            before = stats.fresh
            after = not before
        parts: list[bytes] = []
        if before:
            parts.append(CommandStats.INFO)
            stats.info_written()
        parts.extend(commands)
        stats.sent(count, *calls)
        if after:
            parts.append(CommandStats.INFO)
            stats.info_written()
        await self.wire.send(*parts)
        self._queue.append((before, len(commands), after, count, time.perf_counter()))

    async def read(self, *, error_ok: bool = False) -> list[Any]:
        """The replies of the oldest step not yet read; with ``error_ok``, an error reply is
        returned in its place (redis-py's exception object) and the rest are read too."""
        before, replies, after, count, written = self._queue.popleft()
        wire, stats = self.wire, self.stats
        if before:
            stats.reading(await wire.read(error_ok=True))
        out = [await wire.read(error_ok=error_ok) for _ in range(replies)]
        stats.replied(time.perf_counter() - written, count)
        if after:
            stats.reading(await wire.read(error_ok=True))
        return out


def _scan(cursor: bytes, match: bytes, count: int) -> bytes:
    return pack(b"SCAN", cursor, b"MATCH", match, b"COUNT", b"%d" % count)


async def scan_pages(
    wire: Wire, match: bytes, stats: CommandStats
) -> AsyncGenerator[list[bytes], None]:
    """Every page of ``SCAN 0 MATCH match`` ... until the cursor is 0 again.

    Each SCAN is written as soon as the previous reply names its cursor, so
    it is on its way while the consumer works on the page before it: at most
    one request ahead.
    """
    steps = Steps(wire, stats)
    count = steps.count()
    await steps.write([_scan(b"0", match, count)], count, (b"scan",))
    while True:
        ((cursor, keys),) = await steps.read()
        done = cursor == b"0"
        if not done:
            count = steps.count()
            await steps.write([_scan(cursor, match, count)], count, (b"scan",))
        yield keys
        if done:
            return


async def scan_unlink(
    wire: Wire, match: bytes, stats: CommandStats, split: Splitter | None = None
) -> AsyncGenerator[int, None]:
    """Delete every key ``SCAN 0 MATCH match`` walks to; yield how many each UNLINK deleted.

    Deleting while walking is safe: SCAN still returns every key that stays
    present. Page i's UNLINK (split into groups one command may carry, on a
    cluster) goes out in one write with SCAN i+1. If the walk stops early,
    what was written may or may not have run.
    """
    steps = Steps(wire, stats)
    count = steps.count()
    await steps.write([_scan(b"0", match, count)], count, (b"scan",))
    while True:
        *unlinked, (cursor, keys) = await steps.read()
        for removed in unlinked:
            yield int(removed)
        commands: list[bytes] = []
        calls: list[bytes] = []
        if keys:
            for group in [keys] if split is None else split(keys):
                commands.append(pack_keys((b"UNLINK",), group))
                calls.append(b"unlink")
        done = cursor == b"0"
        if not done:
            count = steps.count()
            commands.append(_scan(cursor, match, count))
            calls.append(b"scan")
        if commands:
            await steps.write(commands, count, calls)
        if done:
            if commands:
                for removed in await steps.read():
                    yield int(removed)
            return
