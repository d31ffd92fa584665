"""The key index of the in-process backend, with the Redis index's semantics."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...codec import KEY_ENCODING, decode_key, encode_key
from ...index.protocols import IndexChunk, IndexKeys, IndexStatus, prefix_successor
from ...pacing import INDEX_CLEAR, INDEX_RANGE, Pace, WalkPacer
from ..base import BatchOp, MoveIn
from . import moving
from .batching import apply_op, check_batch
from .keyspace import MemoryKeyspace, SortedIndex

if TYPE_CHECKING:
    from .backend import MemoryBackend

__all__ = ["PRUNE_PER_WRITE", "MemoryKeyIndex"]

#: Expired index entries pruned per write that adds a TTL: the average rate of the Redis
#: scripts, which prune 16 on an eighth of single-key writes to save server calls; here every
#: such write prunes 2, which costs next to nothing and keeps the behaviour deterministic.
PRUNE_PER_WRITE = 2


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

    def _sets(self) -> SortedIndex | None:
        return self._keyspace.indexes.get(self._keys.index)

    async def drop(self) -> None:
        self._backend._check_open()
        self._keyspace.indexes.pop(self._keys.index, None)

    def _drop_if_empty(self, sets: SortedIndex) -> None:
        # An empty sorted set is no key at all in Redis.
        if not sets.names:
            self._keyspace.indexes.pop(self._keys.index, None)

    def _sync(self, key: str) -> None:
        member = encode_key(self._keys.member(key))
        entry = self._keyspace.lookup(key)
        if entry is None:
            sets = self._sets()
            if sets is not None:
                sets.discard(member)
                self._drop_if_empty(sets)
        else:
            self._keyspace.indexes.setdefault(self._keys.index, SortedIndex()).put(
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

    async def prepare(self, *, listing: bool = True) -> None:
        self._backend._check_open()

    async def exists(self) -> bool:
        self._backend._check_open()
        return self._sets() is not None

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

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        done = await self._backend.set_ttl(key, ttl_ms)
        self._sync(key)
        if done:
            self._prune(PRUNE_PER_WRITE)
        return done

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        length = await self._backend.list_push(key, value, ttl_ms)
        self._sync(key)
        if ttl_ms is not None:
            self._prune(PRUNE_PER_WRITE)
        return length

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        return moving.migrate_write(
            self._backend, ledger, moves, max_items, check=check, synced=self._sync
        )

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """Every op in order, index entries included, with no other task in between."""
        check_batch(self._backend, ops)
        return [await apply_op(self._backend, op, self) for op in ops]

    # -- reads and repair ---------------------------------------------------
    def _live_members(
        self, sets: SortedIndex, low: bytes, inclusive: bool, end: bytes | None, count: int
    ) -> tuple[list[bytes], bytes | None]:
        """Up to ``count`` entries from ``low``: the live ones (expired ones pruned on the way),
        and the last one read if the range may go on."""
        walk = sets.names.irange(low, end, inclusive=(inclusive, False))
        members: list[bytes] = list(itertools.islice(walk, count))
        now = self._keyspace.clock()
        live: list[bytes] = []
        for member in members:
            expire_at = sets.expire_at.get(member)
            if expire_at is not None and expire_at < now:
                sets.discard(member)
            else:
                live.append(member)
        self._drop_if_empty(sets)
        return live, (members[-1] if len(members) >= count else None)

    async def chunk(self, prefix: str, after: str | None, count: int) -> IndexChunk:
        self._backend._check_open()
        sets = self._sets()
        if sets is None:
            return IndexChunk([], None)
        start = encode_key(prefix)
        low, inclusive = (start, True) if after is None else (encode_key(after), False)
        live, last = self._live_members(sets, low, inclusive, prefix_successor(start), count)
        return IndexChunk(
            [decode_key(member) for member in live], None if last is None else decode_key(last)
        )

    async def walk(self, prefix: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Every live member starting with ``prefix``, in chunks as long as the budget allows;
        other tasks run between chunks."""
        backend = self._backend
        pacer = WalkPacer(backend.costs(INDEX_RANGE), pace)
        start = encode_key(prefix)
        end = prefix_successor(start)
        low, inclusive = start, True
        while True:
            backend._check_open()
            sets = self._sets()
            if sets is None:
                return
            count = pacer.count()
            began = time.perf_counter()
            live, last = self._live_members(sets, low, inclusive, end, count)
            pacer.elapsed(time.perf_counter() - began, count)
            if live:
                yield live
            if last is None:
                return
            low, inclusive = last, False
            await asyncio.sleep(0)

    async def clear(self, pace: Pace, progress: Callable[[int], None] | None = None) -> int:
        """Delete every key the index lists with its entry, a chunk at a time in name order
        (each chunk at once, so index and data agree at every step); other tasks run between
        chunks. Each chunk starts after the previous one's last member, as on Redis: a key
        written behind the walk keeps its key and entry."""
        backend = self._backend
        keyspace = self._keyspace
        pacer = WalkPacer(backend.costs(INDEX_CLEAR), pace)
        prefix = self._keys.key_prefix
        deleted = 0
        after: bytes | None = None  # the last member of the previous chunk
        while True:
            backend._check_open()
            sets = self._sets()
            if sets is None:
                return deleted
            count = pacer.count()
            began = time.perf_counter()
            names = sets.names
            rest = names if after is None else names.irange(after, inclusive=(False, True))
            members = list(itertools.islice(rest, count))
            removed = 0
            for member in members:
                key = prefix + member.decode(*KEY_ENCODING)
                if keyspace.lookup(key) is not None and keyspace.remove(key):
                    removed += 1
                sets.discard(member)
            self._drop_if_empty(sets)
            pacer.elapsed(time.perf_counter() - began, count)
            deleted += removed
            if progress is not None:
                progress(removed)
            if len(members) < count:
                return deleted
            after = members[-1]
            await asyncio.sleep(0)

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
        member = encode_key(self._keys.member(key))
        # The same time for the key as for its entry: a key that expires while a page is
        # checked is merely expired, not a stale entry.
        entry = self._keyspace.lookup(key, now)
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

    async def check(self, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
        self._backend._check_open()
        now = self._keyspace.clock()
        return [self._status(key.decode(*KEY_ENCODING), now) for key in keys]

    async def repair(self, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
        statuses = await self.check(keys, pace)
        for key, status in zip(keys, statuses, strict=True):
            if status is not IndexStatus.CONSISTENT:
                self._sync(key.decode(*KEY_ENCODING))
        return statuses
