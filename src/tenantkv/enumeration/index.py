"""Enumeration by the tenant's own key index: cost follows what the tenant holds.

The index (:mod:`tenantkv.backends.keyindex`) is an ordered set of the
tenant's keys plus their expiry times, kept by every write of the store. A
pattern with a literal prefix (``search:*``, ``search:1?``) reads only the
entries with that prefix, ``count`` at a time, resuming after the last entry
read; any remaining glob is matched on the client with Redis's rules.
``count_keys()`` without a pattern is one O(log N) server call.

Keys written or deleted behind the store's back (another client, a
non-indexed store) are not seen until :meth:`IndexEnumerator.reindex`;
:meth:`IndexEnumerator.verify` reports such drift.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from ..backends.base import Backend
from ..backends.keyindex import IndexStatus, KeyIndex
from ..glob import compile_glob, literal_prefix
from ..namespace import Namespace

__all__ = ["DEFAULT_MAX_REPORTED", "IndexEnumerator", "IndexReport"]

#: How many keys of each kind of drift an :class:`IndexReport` names at most.
DEFAULT_MAX_REPORTED = 1000


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What :meth:`~tenantkv.TenantStore.verify_index` found (or ``reindex`` found and fixed).

    The ``*_count`` fields are exact; the key lists (tenant-relative keys) name
    at most ``max_reported`` keys each. An entry whose key merely expired and
    is not yet pruned is not drift.
    """

    tenant: str
    #: Whether the drift listed here has been repaired (``reindex``) or only found.
    repaired: bool
    #: Data keys seen by the SCAN of the tenant's namespace.
    scanned_keys: int
    #: Live index entries walked.
    index_entries: int
    #: Data keys that have no index entry (invisible to ``keys``/``count_keys``/``clear``).
    missing_from_index: list[str] = field(default_factory=list)
    missing_count: int = 0
    #: Index entries whose data key is gone (listed and counted though absent).
    stale_in_index: list[str] = field(default_factory=list)
    stale_count: int = 0
    #: Keys whose TTL differs from the expiry the index records.
    ttl_mismatch: list[str] = field(default_factory=list)
    ttl_mismatch_count: int = 0

    @property
    def drift(self) -> int:
        """How many keys were inconsistent, of all kinds."""
        return self.missing_count + self.stale_count + self.ttl_mismatch_count

    @property
    def clean(self) -> bool:
        return self.drift == 0


class _Tally:
    """Collects the drift of one verify/reindex walk."""

    def __init__(self, max_reported: int) -> None:
        self.max_reported = max_reported
        self.scanned = 0
        self.walked = 0
        self.keys: dict[IndexStatus, list[str]] = {s: [] for s in IndexStatus}
        self.counts: dict[IndexStatus, int] = dict.fromkeys(IndexStatus, 0)
        # SCAN may return a key twice; count each drifting key once.
        self.seen: set[str] = set()

    def add(
        self, keys: Sequence[str], statuses: Sequence[IndexStatus], kinds: set[IndexStatus]
    ) -> None:
        for key, status in zip(keys, statuses, strict=True):
            if status not in kinds or key in self.seen:
                continue
            self.seen.add(key)
            self.counts[status] += 1
            if len(self.keys[status]) < self.max_reported:
                self.keys[status].append(key)

    def report(self, tenant: str, repaired: bool) -> IndexReport:
        return IndexReport(
            tenant=tenant,
            repaired=repaired,
            scanned_keys=self.scanned,
            index_entries=self.walked,
            missing_from_index=self.keys[IndexStatus.MISSING_FROM_INDEX],
            missing_count=self.counts[IndexStatus.MISSING_FROM_INDEX],
            stale_in_index=self.keys[IndexStatus.STALE_IN_INDEX],
            stale_count=self.counts[IndexStatus.STALE_IN_INDEX],
            ttl_mismatch=self.keys[IndexStatus.TTL_MISMATCH],
            ttl_mismatch_count=self.counts[IndexStatus.TTL_MISMATCH],
        )


_DATA_SIDE = {IndexStatus.MISSING_FROM_INDEX, IndexStatus.TTL_MISMATCH}
_INDEX_SIDE = {IndexStatus.STALE_IN_INDEX}


class IndexEnumerator:
    """Lists, counts and clears a tenant's keys through its key index.

    ``index`` is the backend's :class:`~tenantkv.backends.keyindex.KeyIndex`
    for this tenant (the store also writes through it); ``backend`` is used
    only by :meth:`reindex` and :meth:`verify`, which SCAN the namespace.
    """

    def __init__(self, index: KeyIndex, backend: Backend, namespace: Namespace) -> None:
        self._index = index
        self._backend = backend
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"IndexEnumerator(tenant={self._namespace.tenant!r}, index={self._index!r})"

    @property
    def index(self) -> KeyIndex:
        return self._index

    async def _walk(self, prefix: str, count: int) -> AsyncIterator[list[str]]:
        after: str | None = None
        while True:
            chunk = await self._index.chunk(prefix, after, count)
            if chunk.keys:
                yield chunk.keys
            if chunk.last is None:
                return
            after = chunk.last

    async def batches(self, pattern: str, count: int) -> AsyncIterator[list[str]]:
        prefix, shape = literal_prefix(pattern)
        if shape == "exact":
            # The key itself is the first entry with its own name as prefix.
            chunk = await self._index.chunk(prefix, None, 1)
            if chunk.keys == [prefix]:
                yield chunk.keys
            return
        matches = None if shape == "prefix" else compile_glob(pattern)
        async for keys in self._walk(prefix, count):
            selected = keys if matches is None else [key for key in keys if matches(key)]
            if selected:
                yield selected

    async def count(self, pattern: str, count: int) -> int:
        if literal_prefix(pattern) == ("", "prefix"):
            return await self._index.live_count(prune=count)
        total = 0
        async for batch in self.batches(pattern, count):
            total += len(batch)
        return total

    async def clear(self, count: int) -> int:
        """Delete every key the index knows, ``count`` per server call.

        Keys written behind the store's back are not in the index and stay
        (as they stay invisible to ``keys``); :meth:`reindex` first adopts them.
        """
        deleted = 0
        key = self._namespace.key
        async for keys in self._walk("", count):
            deleted += await self._index.unlink([key(k) for k in keys])
        return deleted

    async def prune(self, count: int) -> int:
        """Remove the entries of every expired key, ``count`` per server call; how many."""
        pruned = 0
        while True:
            removed = await self._index.prune(count)
            pruned += removed
            if removed < count:
                return pruned

    async def verify(self, count: int, max_reported: int = DEFAULT_MAX_REPORTED) -> IndexReport:
        """Compare the index with a SCAN of the namespace; repair nothing (it only prunes)."""
        return await self._compare(count, max_reported, repair=False)

    async def reindex(self, count: int, max_reported: int = DEFAULT_MAX_REPORTED) -> IndexReport:
        """Make the index match the data: adopt unindexed keys, drop entries without data.

        Bounded and non-blocking: a SCAN of the namespace (``count`` keys per
        call), then a walk of the index; each page is checked and repaired
        by one server call.
        """
        return await self._compare(count, max_reported, repair=True)

    async def _compare(self, count: int, max_reported: int, *, repair: bool) -> IndexReport:
        tally = _Tally(max_reported)
        compare = self._index.repair if repair else self._index.check
        relative, key = self._namespace.relative, self._namespace.key
        # Every data key present for the whole SCAN is checked: finds keys
        # without an entry and entries with the wrong expiry.
        async for page in self._backend.scan(self._namespace.match("*"), count):
            if page:
                tally.scanned += len(page)
                statuses = await compare(page)
                tally.add([relative(k) for k in page], statuses, _DATA_SIDE)
        # Every live entry is checked: finds entries whose key is gone.
        async for keys in self._walk("", count):
            tally.walked += len(keys)
            statuses = await compare([key(k) for k in keys])
            tally.add(keys, statuses, _INDEX_SIDE)
        return tally.report(self._namespace.tenant, repaired=repair)
