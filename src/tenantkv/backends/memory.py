"""The in-process backend: Redis semantics without a server.

It is the embedded default (``memory://``) and the model the Redis backend is
tested against, so it copies what a user can observe of Redis: millisecond
TTLs with lazy expiry, ``WRONGTYPE`` between values and lists, ``LRANGE``
index rules, glob matching byte by byte, pub/sub fan-out counted per
subscriber connection, and a cursor walk that returns every key present for
the whole walk.

Stores opened on the same ``memory://NAME`` URL in one process share one
:class:`MemoryKeyspace`, as stores on one Redis server share its keyspace.
A keyspace lives as long as the process; it holds no data on disk.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from sortedcontainers import SortedDict, SortedList, SortedSet

from ..errors import StoreClosedError, WrongTypeError
from ..glob import compile_glob
from ..namespace import KEY_ENCODING
from .keyindex import IndexChunk, IndexKeys, IndexStatus, prefix_successor

__all__ = ["MemoryBackend", "MemoryKeyIndex", "MemoryKeyspace"]

Clock = Callable[[], int]

#: Expired index entries pruned per write that adds a TTL: the average rate of the Redis
#: scripts, which prune 16 on an eighth of single-key writes to save server calls; here every
#: such write prunes 2, which costs next to nothing and keeps the behaviour deterministic.
PRUNE_PER_WRITE = 2


_connections = itertools.count(1)


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, the clock Redis uses for expiry."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Entry:
    value: bytes | deque[bytes]
    expire_at_ms: int | None
    seq: int


class MemoryKeyspace:
    """One shared keyspace: what a single Redis database is to its clients."""

    _registry: ClassVar[dict[str, MemoryKeyspace]] = {}

    def __init__(self, name: str = "", *, clock: Clock = wall_clock_ms) -> None:
        self.name = name
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        # Insertion sequence -> key: the order a cursor walks in. A key keeps
        # its sequence number until it is deleted, so a key present for the
        # whole walk is visited exactly once, whatever else is written.
        self._order: SortedDict = SortedDict()
        self._seq = itertools.count(1)
        self._expiring: list[tuple[int, int, str]] = []
        self._channels: dict[str, dict[int, list[asyncio.Queue[bytes | BaseException]]]] = {}
        # Key indexes by the name of their index key (see MemoryKeyIndex).
        self.indexes: dict[str, _SortedIndex] = {}

    @classmethod
    def shared(cls, name: str) -> MemoryKeyspace:
        """The process-wide keyspace called ``name``, created on first use."""
        keyspace = cls._registry.get(name)
        if keyspace is None:
            keyspace = cls._registry[name] = cls(name)
        return keyspace

    # -- entries ----------------------------------------------------------
    def lookup(self, key: str) -> _Entry | None:
        """The live entry for ``key``, deleting it first if it has expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        # Expired once the clock has passed its time (Redis: now > when), so a key
        # whose time is this very millisecond still exists, with a PTTL of 0.
        if entry.expire_at_ms is not None and entry.expire_at_ms < self.clock():
            self.remove(key)
            return None
        return entry

    def put(self, key: str, value: bytes | deque[bytes], expire_at_ms: int | None) -> None:
        entry = self.lookup(key)
        if entry is None:
            seq = next(self._seq)
            self._entries[key] = _Entry(value, expire_at_ms, seq)
            self._order[seq] = key
        else:
            entry.value = value
            entry.expire_at_ms = expire_at_ms
        self.schedule_expiry(key)

    def schedule_expiry(self, key: str) -> None:
        entry = self._entries[key]
        if entry.expire_at_ms is not None:
            heapq.heappush(self._expiring, (entry.expire_at_ms, entry.seq, key))
            if len(self._expiring) > 2 * len(self._entries) + 64:
                self._compact_expiring()
        self.expire_some()

    def _compact_expiring(self) -> None:
        """Drop the queue's outdated entries (a TTL refreshed leaves its old time behind).

        Rebuilt only once the queue is twice the keyspace, so a key refreshed
        over and over costs O(1) per refresh, amortized, and bounded memory.
        """
        self._expiring = [
            (entry.expire_at_ms, entry.seq, key)
            for key, entry in self._entries.items()
            if entry.expire_at_ms is not None
        ]
        heapq.heapify(self._expiring)

    def remove(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        del self._order[entry.seq]
        return True

    def walk(self, after_seq: int, budget: int) -> tuple[list[str], int]:
        """Visit up to ``budget`` keys after cursor ``after_seq``; live keys and the next cursor.

        The next cursor is 0 when the walk is complete, as with SCAN.
        """
        start = self._order.bisect_right(after_seq)
        seqs = list(itertools.islice(self._order.islice(start), budget))
        keys = [self._order[s] for s in seqs]
        live = [key for key in keys if self.lookup(key) is not None]
        if not seqs or self._order.bisect_right(seqs[-1]) >= len(self._order):
            return live, 0
        return live, seqs[-1]

    def expire_some(self, limit: int = 20) -> None:
        """Delete up to ``limit`` expired keys nobody reads, as Redis's active expiry does."""
        now = self.clock()
        while limit and self._expiring and self._expiring[0][0] < now:
            _, seq, key = heapq.heappop(self._expiring)
            entry = self._entries.get(key)
            if entry is not None and entry.seq == seq:
                self.lookup(key)
            limit -= 1

    # -- pub/sub ----------------------------------------------------------
    def attach(
        self, channel: str, connection: int, queue: asyncio.Queue[bytes | BaseException]
    ) -> bool:
        """Register a subscription; true when ``connection`` was not yet on ``channel``."""
        connections = self._channels.setdefault(channel, {})
        queues = connections.setdefault(connection, [])
        queues.append(queue)
        return len(queues) == 1

    def detach(
        self, channel: str, connection: int, queue: asyncio.Queue[bytes | BaseException]
    ) -> None:
        connections = self._channels.get(channel, {})
        queues = connections.get(connection, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            connections.pop(connection, None)
        if not connections:
            self._channels.pop(channel, None)

    def detach_connection(self, connection: int) -> list[asyncio.Queue[bytes | BaseException]]:
        """Drop every subscription of ``connection``; their queues."""
        queues: list[asyncio.Queue[bytes | BaseException]] = []
        for channel in list(self._channels):
            queues += self._channels[channel].pop(connection, [])
            if not self._channels[channel]:
                del self._channels[channel]
        return queues

    def subscriptions_of(self, connection: int) -> int:
        return sum(len(connections.get(connection, ())) for connections in self._channels.values())

    def publish(self, channel: str, data: bytes) -> int:
        connections = self._channels.get(channel, {})
        for queues in connections.values():
            for queue in queues:
                queue.put_nowait(data)
        return len(connections)


class _MemorySubscription:
    def __init__(self, backend: MemoryBackend, channel: str) -> None:
        self._backend = backend
        self._channel = channel
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self._entered = False

    async def __aenter__(self) -> _MemorySubscription:
        self._backend._check_open()
        self._backend.keyspace.attach(self._channel, self._backend.connection, self._queue)
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._entered:
            self._backend.keyspace.detach(self._channel, self._backend.connection, self._queue)
            self._entered = False

    def __aiter__(self) -> _MemorySubscription:
        return self

    async def __anext__(self) -> bytes:
        if not self._entered:
            raise StoreClosedError("the subscription is not active (use 'async with')")
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item


@dataclass
class MemoryBackend:
    """A backend over a :class:`MemoryKeyspace`; each backend is one "connection"."""

    keyspace: MemoryKeyspace
    url: str = "memory://"
    #: This backend's "connection" to the keyspace, unique in the process
    #: (``id()`` could be reused by a later backend after this one is gone).
    connection: int = field(default_factory=lambda: next(_connections), init=False)
    _closed: bool = field(default=False, init=False)

    @property
    def subscription_count(self) -> int:
        """Open subscriptions made through this backend."""
        return self.keyspace.subscriptions_of(self.connection)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the backend for {self.url} is closed")

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

    async def list_push(self, key: str, value: bytes) -> int:
        items = self._list(key, "RPUSH")
        if items is None:
            items = deque()
            self.keyspace.put(key, items, None)
        items.append(value)
        return len(items)

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

    async def scan(self, match: str, count: int) -> AsyncIterator[list[str]]:
        self._check_open()
        matches = compile_glob(match)
        cursor = 0
        while True:
            keys, cursor = self.keyspace.walk(cursor, count)
            yield [key for key in keys if matches(key)]
            if cursor == 0:
                return
            # Let other tasks run between pages, as other clients do between SCAN calls.
            await asyncio.sleep(0)
            self._check_open()

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


# -- the key index --------------------------------------------------------------------------


def _member_bytes(member: str) -> bytes:
    return member.encode(*KEY_ENCODING)


def _member_text(member: bytes) -> str:
    return member.decode(*KEY_ENCODING)


class _SortedIndex:
    """The in-process twin of the two sorted sets of a Redis key index.

    Members are the UTF-8 bytes of tenant-relative keys, so they sort exactly
    as Redis orders ``ZRANGE ... BYLEX`` (memcmp), surrogate escapes included.
    """

    __slots__ = ("expire_at", "expiring", "names")

    def __init__(self) -> None:
        self.names = SortedSet()
        self.expiring = SortedList()  # (expire_at_ms, member)
        self.expire_at: dict[bytes, int] = {}

    def put(self, member: bytes, expire_at_ms: int | None) -> None:
        self.names.add(member)
        old = self.expire_at.pop(member, None)
        if old is not None:
            self.expiring.remove((old, member))
        if expire_at_ms is not None:
            self.expire_at[member] = expire_at_ms
            self.expiring.add((expire_at_ms, member))

    def discard(self, member: bytes) -> None:
        self.names.discard(member)
        old = self.expire_at.pop(member, None)
        if old is not None:
            self.expiring.remove((old, member))

    def expired(self, now: int, limit: int) -> list[bytes]:
        """Up to ``limit`` members whose key has expired (expiry < now, as in the keyspace)."""
        below = self.expiring.irange(None, (now,), inclusive=(True, False))
        return [member for _, member in itertools.islice(below, limit)]

    def expired_count(self, now: int) -> int:
        count: int = self.expiring.bisect_left((now,))
        return count


class MemoryKeyIndex:
    """One tenant's key index in a :class:`MemoryKeyspace`, with the Redis index's semantics.

    Each write calls the backend's own method, then updates the entry from
    what the keyspace now holds. Neither step awaits anything that
    suspends, so no other task can run in between: a write and its index
    entry change together, and a write that raises (``WRONGTYPE``) changes
    neither.
    """

    def __init__(self, backend: MemoryBackend, keys: IndexKeys) -> None:
        self._backend = backend
        self._keys = keys

    def __repr__(self) -> str:
        return f"MemoryKeyIndex(index={self._keys.index!r})"

    @property
    def keys(self) -> IndexKeys:
        return self._keys

    @property
    def _keyspace(self) -> MemoryKeyspace:
        return self._backend.keyspace

    def _sets(self) -> _SortedIndex | None:
        return self._keyspace.indexes.get(self._keys.index)

    async def drop(self) -> None:
        self._backend._check_open()
        self._keyspace.indexes.pop(self._keys.index, None)

    def _drop_if_empty(self, sets: _SortedIndex) -> None:
        # An empty sorted set is no key at all in Redis.
        if not sets.names:
            self._keyspace.indexes.pop(self._keys.index, None)

    def _sync(self, key: str) -> None:
        member = _member_bytes(self._keys.member(key))
        entry = self._keyspace.lookup(key)
        if entry is None:
            sets = self._sets()
            if sets is not None:
                sets.discard(member)
                self._drop_if_empty(sets)
        else:
            self._keyspace.indexes.setdefault(self._keys.index, _SortedIndex()).put(
                member, entry.expire_at_ms
            )

    def _prune(self, limit: int) -> int:
        sets = self._sets()
        if sets is None:
            return 0
        dead = sets.expired(self._keyspace.clock(), limit)
        for member in dead:
            sets.discard(member)
        self._drop_if_empty(sets)
        return len(dead)

    async def prepare(self) -> None:
        self._backend._check_open()

    # -- writes -------------------------------------------------------------
    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        await self._backend.set(key, value, ttl_ms)
        self._sync(key)
        if ttl_ms is not None:
            self._prune(PRUNE_PER_WRITE)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        await self._backend.set_many(items, ttl_ms)
        for key, _ in items:
            self._sync(key)
        if ttl_ms is not None:
            self._prune(PRUNE_PER_WRITE * len(items))

    async def delete(self, key: str) -> bool:
        existed = await self._backend.delete(key)
        self._sync(key)
        return existed

    async def unlink(self, keys: Sequence[str]) -> int:
        removed = await self._backend.unlink(keys)
        for key in keys:
            self._sync(key)
        return removed

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        done = await self._backend.set_ttl(key, ttl_ms)
        self._sync(key)
        if done:
            self._prune(PRUNE_PER_WRITE)
        return done

    async def list_push(self, key: str, value: bytes) -> int:
        length = await self._backend.list_push(key, value)
        self._sync(key)
        return length

    # -- reads and repair ---------------------------------------------------
    async def chunk(self, prefix: str, after: str | None, count: int) -> IndexChunk:
        self._backend._check_open()
        sets = self._sets()
        if sets is None:
            return IndexChunk([], None)
        start = _member_bytes(prefix)
        low, inclusive = (start, True) if after is None else (_member_bytes(after), False)
        walk = sets.names.irange(low, prefix_successor(start), inclusive=(inclusive, False))
        members: list[bytes] = list(itertools.islice(walk, count))
        now = self._keyspace.clock()
        live: list[str] = []
        for member in members:
            expire_at = sets.expire_at.get(member)
            if expire_at is not None and expire_at < now:
                sets.discard(member)
            else:
                live.append(_member_text(member))
        self._drop_if_empty(sets)
        last = _member_text(members[-1]) if len(members) >= count else None
        return IndexChunk(live, last)

    async def live_count(self, prune: int) -> int:
        self._backend._check_open()
        self._prune(prune)
        sets = self._sets()
        if sets is None:
            return 0
        return len(sets.names) - sets.expired_count(self._keyspace.clock())

    async def prune(self, count: int) -> int:
        self._backend._check_open()
        return self._prune(count)

    def _status(self, key: str, now: int) -> IndexStatus:
        member = _member_bytes(self._keys.member(key))
        entry = self._keyspace.lookup(key)
        sets = self._sets()
        indexed = sets is not None and member in sets.names
        expiry = None if sets is None else sets.expire_at.get(member)
        if entry is None:
            merely_expired = expiry is not None and expiry < now
            if indexed and not merely_expired:
                return IndexStatus.STALE_IN_INDEX
            return IndexStatus.CONSISTENT
        if not indexed:
            return IndexStatus.MISSING_FROM_INDEX
        if entry.expire_at_ms != expiry:
            return IndexStatus.TTL_MISMATCH
        return IndexStatus.CONSISTENT

    async def check(self, keys: Sequence[str]) -> list[IndexStatus]:
        self._backend._check_open()
        now = self._keyspace.clock()
        return [self._status(key, now) for key in keys]

    async def repair(self, keys: Sequence[str]) -> list[IndexStatus]:
        statuses = await self.check(keys)
        for key, status in zip(keys, statuses, strict=True):
            if status is not IndexStatus.CONSISTENT:
                self._sync(key)
        return statuses
