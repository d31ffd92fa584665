"""The in-process keyspace: what one Redis database holds, for ``memory://`` stores.

Stores opened on the same ``memory://NAME`` URL in one process share one
:class:`MemoryKeyspace`, as stores on one Redis server share its keyspace.
It holds values and lists with millisecond expiry (lazy, plus a bounded
active expiry), the subscriptions of every channel, and the sorted sets of
key indexes (:class:`SortedIndex`). A keyspace lives as long as the process;
it holds no data on disk.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from sortedcontainers import SortedDict, SortedList, SortedSet

from ..subscription import SubscriptionQueue

__all__ = ["Clock", "Entry", "MemoryKeyspace", "SortedIndex", "wall_clock_ms"]

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, the clock Redis uses for expiry."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Entry:
    value: bytes | deque[bytes]
    expire_at_ms: int | None
    seq: int


class MemoryKeyspace:
    """One shared keyspace: what a single Redis database is to its clients."""

    _registry: ClassVar[dict[str, MemoryKeyspace]] = {}

    def __init__(self, name: str = "", *, clock: Clock = wall_clock_ms) -> None:
        self.name = name
        self.clock = clock
        self._entries: dict[str, Entry] = {}
        # Insertion sequence -> key: the order a cursor walks in. A key keeps
        # its sequence number until it is deleted, so a key present for the
        # whole walk is visited exactly once, whatever else is written.
        self._order: SortedDict = SortedDict()
        self._seq = itertools.count(1)
        self._expiring: list[tuple[int, int, str]] = []
        self._channels: dict[str, dict[int, list[SubscriptionQueue]]] = {}
        # Key indexes by the name of their index key (see MemoryKeyIndex).
        self.indexes: dict[str, SortedIndex] = {}
        # Migration ledgers by name (member -> fingerprint of the copy moved in).
        self.ledgers: dict[str, dict[str, str]] = {}

    @classmethod
    def shared(cls, name: str) -> MemoryKeyspace:
        """The process-wide keyspace called ``name``, created on first use."""
        keyspace = cls._registry.get(name)
        if keyspace is None:
            keyspace = cls._registry[name] = cls(name)
        return keyspace

    # -- entries ----------------------------------------------------------
    def lookup(self, key: str, now: int | None = None) -> Entry | None:
        """The live entry for ``key`` at ``now`` (default: the clock's time), deleting it
        first if it has expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        # Expired once the clock has passed its time (Redis: now > when), so a key
        # whose time is this very millisecond still exists, with a PTTL of 0.
        if entry.expire_at_ms is not None and entry.expire_at_ms < (
            self.clock() if now is None else now
        ):
            self.remove(key)
            return None
        return entry

    def put(self, key: str, value: bytes | deque[bytes], expire_at_ms: int | None) -> None:
        entry = self.lookup(key)
        if entry is None:
            seq = next(self._seq)
            self._entries[key] = Entry(value, expire_at_ms, seq)
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
        order, entries = self._order, self._entries
        start = order.bisect_right(after_seq)
        seqs = list(itertools.islice(order.islice(start), budget))
        # One clock reading for the batch (``lookup`` reads it per key): an expired key
        # is deleted on the way, as a lookup would.
        now = self.clock()
        live: list[str] = []
        for seq in seqs:
            key = order[seq]
            expire_at = entries[key].expire_at_ms
            if expire_at is not None and expire_at < now:
                self.remove(key)
            else:
                live.append(key)
        if not seqs or order.bisect_right(seqs[-1]) >= len(order):
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
    def attach(self, channel: str, connection: int, queue: SubscriptionQueue) -> bool:
        """Register a subscription; true when ``connection`` was not yet on ``channel``."""
        connections = self._channels.setdefault(channel, {})
        queues = connections.setdefault(connection, [])
        queues.append(queue)
        return len(queues) == 1

    def detach(self, channel: str, connection: int, queue: SubscriptionQueue) -> None:
        connections = self._channels.get(channel, {})
        queues = connections.get(connection, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            connections.pop(connection, None)
        if not connections:
            self._channels.pop(channel, None)

    def holds(self, channel: str, connection: int, queue: SubscriptionQueue) -> bool:
        return queue in self._channels.get(channel, {}).get(connection, ())

    def detach_connection(self, connection: int) -> list[SubscriptionQueue]:
        """Drop every subscription of ``connection``; their queues."""
        queues: list[SubscriptionQueue] = []
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


class SortedIndex:
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
