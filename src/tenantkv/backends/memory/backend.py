"""The in-process backend: Redis semantics without a server.

It is the embedded default (``memory://``) and the model the Redis backend is
tested against, so it copies what a user can observe of Redis: millisecond
TTLs with lazy expiry, ``WRONGTYPE`` between values and lists, ``LRANGE``
index rules, glob matching byte by byte, pub/sub fan-out counted per
subscriber connection, and a cursor walk that returns every key present for
the whole walk. The data lives in a :class:`~.keyspace.MemoryKeyspace`; each
backend is one "connection" to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from ...codec import KEY_ENCODING
from ...errors import InvalidURLError, StoreClosedError, WrongTypeError
from ...glob import compile_glob, literal_prefix
from ...index.protocols import IndexKeys
from ...pacing import (
    MOVE_DELETE,
    MOVE_READ,
    SCAN,
    SCAN_UNLINK,
    MoveCosts,
    MovePacer,
    Pace,
    StepCosts,
    StepKind,
    WalkPacer,
)
from ...urls import StoreURL
from ..base import BackendBase, BatchOp, MoveIn, OldKey
from ..subscription import QueueSubscription
from . import moving
from .batching import apply_op, check_batch
from .index import MemoryKeyIndex
from .keyspace import MemoryKeyspace

__all__ = ["MemoryBackend"]

_connections = itertools.count(1)


class _MemorySubscription(QueueSubscription):
    def __init__(self, backend: MemoryBackend, channel: str) -> None:
        super().__init__(channel)
        self._backend = backend

    async def _attach(self) -> None:
        self._backend._check_open()
        self._backend.keyspace.attach(self.channel, self._backend.connection, self.queue)

    async def _detach(self) -> None:
        self._backend.keyspace.detach(self.channel, self._backend.connection, self.queue)

    def _held(self) -> bool:
        return self._backend.keyspace.holds(self.channel, self._backend.connection, self.queue)


class MemoryBackend(BackendBase):
    """A backend over a :class:`MemoryKeyspace`; each backend is one "connection"."""

    def __init__(self, keyspace: MemoryKeyspace, *, url: str = "memory://") -> None:
        super().__init__(url)
        self.keyspace = keyspace
        #: This backend's "connection" to the keyspace, unique in the process
        #: (``id()`` could be reused by a later backend after this one is gone).
        self.connection = next(_connections)
        #: What a batch of each walk costs here, per key (in-process time): sizes the batches
        #: so that none keeps the event loop from other tasks for longer than the budget.
        self.costs = StepCosts()
        #: What the migration's parts cost here (tenantkv.migration), per unit of work.
        self._move_costs = MoveCosts(self.costs)

    def __repr__(self) -> str:
        return f"MemoryBackend(url={self._url!r})"

    @staticmethod
    def prepare(url: StoreURL, options: dict[str, Any]) -> StoreURL:
        """``url`` itself: a ``memory://`` store takes no backend options."""
        if options or url.backend_query:
            unknown = sorted({*options, *url.backend_query})
            raise InvalidURLError(f"memory:// takes no backend options, got {unknown}")
        return url

    @classmethod
    def create(cls, url: StoreURL) -> MemoryBackend:
        """A backend on the process-wide keyspace the URL names (``memory://NAME``)."""
        return cls(MemoryKeyspace.shared(url.name), url=url.redacted)

    @property
    def subscription_count(self) -> int:
        """Open subscriptions made through this backend."""
        return self.keyspace.subscriptions_of(self.connection)

    def _value(self, key: str, command: str) -> bytes | None:
        self._check_open()
        entry = self.keyspace.lookup(key)
        if entry is None:
            return None
        if not isinstance(entry.value, bytes):
            raise WrongTypeError(
                f"{command}: key {key!r} holds a list, not a value", url=self.url, command=command
            )
        return entry.value

    def _list(self, key: str, command: str) -> deque[bytes] | None:
        self._check_open()
        entry = self.keyspace.lookup(key)
        if entry is None:
            return None
        if isinstance(entry.value, bytes):
            raise WrongTypeError(
                f"{command}: key {key!r} holds a value, not a list", url=self.url, command=command
            )
        return entry.value

    def _expire_at(self, ttl_ms: int | None) -> int | None:
        return None if ttl_ms is None else self.keyspace.clock() + ttl_ms

    async def ping(self) -> None:
        self._check_open()

    async def get(self, key: str) -> bytes | None:
        return self._value(key, "GET")

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._check_open()
        # MGET answers nil, not WRONGTYPE, for a key holding a list.
        out: list[bytes | None] = []
        for key in keys:
            entry = self.keyspace.lookup(key)
            out.append(
                entry.value if entry is not None and isinstance(entry.value, bytes) else None
            )
        return out

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        self._check_open()
        self.keyspace.put(key, value, self._expire_at(ttl_ms))

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        self._check_open()
        expire_at = self._expire_at(ttl_ms)
        for key, value in items:
            self.keyspace.put(key, value, expire_at)

    async def delete(self, key: str) -> bool:
        self._check_open()
        return self.keyspace.lookup(key) is not None and self.keyspace.remove(key)

    async def exists(self, key: str) -> bool:
        self._check_open()
        return self.keyspace.lookup(key) is not None

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        self._check_open()
        entry = self.keyspace.lookup(key)
        if entry is None:
            return False
        entry.expire_at_ms = self._expire_at(ttl_ms)
        self.keyspace.schedule_expiry(key)
        return True

    async def get_ttl(self, key: str) -> int | None:
        self._check_open()
        entry = self.keyspace.lookup(key)
        if entry is None or entry.expire_at_ms is None:
            return None
        return entry.expire_at_ms - self.keyspace.clock()

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        items = self._list(key, "RPUSH")
        if items is None:
            items = deque()
            self.keyspace.put(key, items, None)
        items.append(value)
        if ttl_ms is not None:
            entry = self.keyspace.lookup(key)
            assert entry is not None
            entry.expire_at_ms = self._expire_at(ttl_ms)
            self.keyspace.schedule_expiry(key)
        return len(items)

    # -- moving in from another layout (tenantkv.migration) -----------------------
    async def move_pacer(self, kind: StepKind, pace: Pace, key: str) -> MovePacer:
        """Timed in process (no round trip to take off)."""
        return MovePacer(self._move_costs(kind), pace)

    async def migrate_read(self, keys: Sequence[str], max_items: int, pace: Pace) -> list[OldKey]:
        pacer = await self.move_pacer(MOVE_READ, pace, "")
        return await moving.migrate_read(self, keys, max_items, pacer)

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        return moving.migrate_write(self, ledger, moves, max_items, check=check)

    async def migrate_delete(
        self, keys: Sequence[tuple[str, str, int]], max_items: int, pace: Pace
    ) -> list[str]:
        pacer = await self.move_pacer(MOVE_DELETE, pace, "")
        return await moving.migrate_delete(self, keys, max_items, pacer)

    # -- batches -------------------------------------------------------------
    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """Every op in order, with no other task in between (nothing here suspends)."""
        check_batch(self, ops)
        return [await apply_op(self, op, self) for op in ops]

    async def list_range(self, key: str, start: int, stop: int) -> list[bytes]:
        items = self._list(key, "LRANGE")
        if items is None:
            return []
        n = len(items)
        start = max(start + n if start < 0 else start, 0)
        stop = min(stop + n if stop < 0 else stop, n - 1)
        if start > stop:
            return []
        return list(itertools.islice(items, start, stop + 1))

    async def list_length(self, key: str) -> int:
        items = self._list(key, "LLEN")
        return 0 if items is None else len(items)

    async def publish(self, channel: str, data: bytes) -> int:
        self._check_open()
        return self.keyspace.publish(channel, data)

    def subscribe(self, channel: str) -> _MemorySubscription:
        return _MemorySubscription(self, channel)

    async def _batches(
        self, match: str, pace: Pace, kind: StepKind
    ) -> AsyncGenerator[list[str], None]:
        """The keys matching ``match``, in cursor order, a batch as long as the budget allows.

        Each batch's own time, the consumer's work on it included, is measured
        and sizes the next (the in-process counterpart of a server's time per
        command); between batches other tasks run, as other clients do
        between SCAN calls.
        """
        self._check_open()
        prefix, shape = literal_prefix(match)
        matches: Callable[[str], bool]
        if shape == "prefix":
            # The namespace's own pattern (``<prefix>:{<tenant>}:*``): a prefix test will do.
            matches = operator.methodcaller("startswith", prefix)
        else:
            matches = compile_glob(match)
        pacer = WalkPacer(self.costs(kind), pace)
        cursor = 0
        while True:
            count = pacer.count()
            started = time.perf_counter()
            keys, cursor = self.keyspace.walk(cursor, count)
            yield [key for key in keys if matches(key)]
            pacer.elapsed(time.perf_counter() - started, count)
            if cursor == 0:
                return
            await asyncio.sleep(0)
            self._check_open()

    async def scan(self, match: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Batches of the keyspace in cursor order (see :meth:`_batches`), as bytes."""
        async with contextlib.aclosing(self._batches(match, pace, SCAN)) as batches:
            async for keys in batches:
                yield [key.encode(*KEY_ENCODING) for key in keys]

    async def scan_unlink(self, match: str, pace: Pace) -> AsyncGenerator[int, None]:
        """Delete, batch by batch, every key :meth:`scan` would yield; how many each deleted."""
        remove = self.keyspace.remove
        async with contextlib.aclosing(self._batches(match, pace, SCAN_UNLINK)) as batches:
            async for keys in batches:
                yield sum(1 for key in keys if remove(key))

    async def unlink(self, keys: Sequence[str]) -> int:
        self._check_open()
        return sum(
            1 for key in keys if self.keyspace.lookup(key) is not None and self.keyspace.remove(key)
        )

    def key_index(self, keys: IndexKeys) -> MemoryKeyIndex:
        """The tenant index stored under ``keys`` in this keyspace."""
        return MemoryKeyIndex(self, keys)

    async def aclose(self) -> None:
        """Close; open subscriptions end as a closed Redis connection's would."""
        self._closed = True
        closed = StoreClosedError("the store was closed")
        for queue in self.keyspace.detach_connection(self.connection):
            queue.put_nowait(closed)
