"""Enumeration by the tenant's own key index: cost follows what the tenant holds.

The index (:mod:`tenantkv.index.protocols`) is an ordered set of the
tenant's keys plus their expiry times, kept by every write of the store. A
pattern with a literal prefix (``search:*``, ``search:1?``) reads only the
entries with that prefix, ``count`` at a time, resuming after the last entry
read; any remaining glob is matched on the client with Redis's rules.
``count_keys()`` without a pattern is one O(log N) server call (one per
shard for a tenant spread over several shards, each shard having its own
index in its own slot).

Keys written or deleted behind the store's back (another client, a
non-indexed store) are not seen until :meth:`IndexEnumerator.reindex`;
:meth:`IndexEnumerator.verify` reports such drift.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from functools import partial

from ..backends.base import Backend
from ..cancellation import CancellationCheck
from ..codec import KEY_ENCODING, decode_keys, encode_key
from ..errors import PermissionDeniedError
from ..fanout import MAX_PARALLEL, gather_limited
from ..glob import compile_glob_bytes, literal_prefix
from ..namespace import Namespace
from ..pacing import DEFAULT_BUDGET_MS, Pace
from ..progress import ProgressMeter
from .protocols import IndexStatus, KeyIndex

__all__ = ["DEFAULT_MAX_REPORTED", "PRUNE_PER_MS", "IndexEnumerator", "IndexReport"]

#: How many keys of each kind of drift an :class:`IndexReport` names at most.
DEFAULT_MAX_REPORTED = 1000
#: Expired entries one prune call removes per ms of the time budget, when no ``count`` is
#: given: a pruned entry costs the server about 2 us (two ZREMs inside the script).
PRUNE_PER_MS = 250


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What :meth:`~tenantkv.TenantStore.verify_index` found (or ``reindex`` found and fixed).

    The ``*_count`` fields are exact; the key lists (tenant-relative keys,
    sorted) name at most ``max_reported`` keys each, the first ones found. An
    entry whose key merely expired and is not yet pruned is not drift. For a
    sharded tenant every count adds up all its shards.
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
        self,
        keys: Sequence[bytes],
        statuses: Sequence[IndexStatus],
        kinds: set[IndexStatus],
        cut: int = 0,
    ) -> None:
        """Count the drift of ``kinds`` among ``keys`` (bytes; the relative key starts at
        ``cut``): only drifting keys are decoded."""
        for raw, status in zip(keys, statuses, strict=True):
            if status not in kinds:
                continue
            key = raw[cut:].decode(*KEY_ENCODING)
            if key in self.seen:
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
            missing_from_index=sorted(self.keys[IndexStatus.MISSING_FROM_INDEX]),
            missing_count=self.counts[IndexStatus.MISSING_FROM_INDEX],
            stale_in_index=sorted(self.keys[IndexStatus.STALE_IN_INDEX]),
            stale_count=self.counts[IndexStatus.STALE_IN_INDEX],
            ttl_mismatch=sorted(self.keys[IndexStatus.TTL_MISMATCH]),
            ttl_mismatch_count=self.counts[IndexStatus.TTL_MISMATCH],
        )


#: The connections one branch of a fan-out may hold at a time. A shard walk of a listing: its
#: own (the next read on its way) and a gap read through the client. A shard's compare in
#: reindex/verify: its walk's and two check calls in flight (the Redis index's); while the SCAN
#: runs, the SCAN's and the checks'.
_WALK_HOLDS, _COMPARE_HOLDS = 2, 3
#: Shards compared at a time by reindex/verify, however large the pool: half of MAX_PARALLEL,
#: which keeps the connections a compare holds where they were with one check call per shard.
_COMPARING = MAX_PARALLEL // 2

_DATA_SIDE = {IndexStatus.MISSING_FROM_INDEX, IndexStatus.TTL_MISMATCH}
_INDEX_SIDE = {IndexStatus.STALE_IN_INDEX}


class IndexEnumerator:
    """Lists, counts and clears a tenant's keys through its key index.

    ``indexes`` are the backend's :class:`~tenantkv.index.protocols.KeyIndex`
    objects of this tenant, one per shard of ``namespace`` (one for an
    unsharded tenant), as :func:`~tenantkv.index.protocols.shard_index_keys`
    lays them out; the store writes through the same indexes. ``backend`` is
    used only by :meth:`reindex` and :meth:`verify`, which SCAN the namespace.

    With several shards every operation covers every shard: listing reads
    up to :data:`~tenantkv.fanout.MAX_PARALLEL` shards' indexes side by side,
    one chunk from each per round, each with its next chunk on its way (so
    at most two chunks per open shard exist, and on a cluster the shards'
    nodes are read concurrently); ``count_keys()`` and
    ``stats()`` add up one O(log N) count per shard; ``clear`` and ``prune``
    work on the shards concurrently (at most
    :data:`~tenantkv.fanout.MAX_PARALLEL` at a time), ``verify`` and
    ``reindex`` on half as many (each shard's check may have two calls in
    flight). Where the backend's pool is smaller (``max_connections``), each
    of these runs as many shards at a time as the pool can serve
    (:meth:`~tenantkv.backends.base.Backend.fanout`): a listing's shard walk
    may hold two connections, a compare three. Keys come back in no
    particular order across shards (each key lives in exactly one shard, so
    none repeats).
    """

    strategy = "index"

    def __init__(
        self,
        indexes: Sequence[KeyIndex],
        backend: Backend,
        namespace: Namespace,
        *,
        budget_ms: float = DEFAULT_BUDGET_MS,
    ) -> None:
        if len(indexes) != namespace.shards:
            raise ValueError(f"{namespace.shards} shards need as many indexes, not {len(indexes)}")
        self._indexes = tuple(indexes)
        self._backend = backend
        self._namespace = namespace
        self._budget_ms = budget_ms

    @property
    def budget_ms(self) -> float:
        """Target server time of each command, in ms."""
        return self._budget_ms

    def __repr__(self) -> str:
        shown = self._indexes[0] if len(self._indexes) == 1 else f"{len(self._indexes)} shards"
        return f"IndexEnumerator(tenant={self._namespace.tenant!r}, index={shown!r})"

    @property
    def indexes(self) -> tuple[KeyIndex, ...]:
        """The tenant's index of each shard, by shard number."""
        return self._indexes

    def _pace(self, count: int | None) -> Pace:
        return Pace(self._budget_ms, count)

    def _prune_size(self, count: int | None) -> int:
        return count if count is not None else max(1, int(PRUNE_PER_MS * self._budget_ms))

    async def _walk_shards(self, prefix: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Every live entry of every shard starting with ``prefix``, as member bytes.

        One shard: its walk as it is. Several: up to
        :data:`~tenantkv.fanout.MAX_PARALLEL` shard walks are open at a time
        (each with its next chunk on its way); each round takes the next
        chunk of every open walk, concurrently, and yields them, so at most a
        chunk per open walk is held. A walk that ends makes room for the next
        shard.
        """
        if len(self._indexes) == 1:
            async with contextlib.aclosing(self._indexes[0].walk(prefix, pace)) as only:
                async for chunk in only:
                    yield chunk
            return
        waiting = deque(self._indexes)
        open_at_most = self._backend.fanout(_WALK_HOLDS)
        walks: list[AsyncGenerator[list[bytes], None]] = []
        cancelled = CancellationCheck()
        try:
            while walks or waiting:
                cancelled()
                while waiting and len(walks) < open_at_most:
                    walks.append(waiting.popleft().walk(prefix, pace))
                got = await gather_limited(partial(_next_chunk, walk) for walk in walks)
                walks = [walk for walk, part in zip(walks, got, strict=True) if part is not None]
                for part in got:
                    if part:
                        yield part
        finally:
            for walk in walks:
                await walk.aclose()

    async def batches(self, pattern: str, count: int | None) -> AsyncGenerator[list[str], None]:
        prefix, shape = literal_prefix(pattern)
        if shape == "exact":
            # The key itself is the first entry with its own name as prefix,
            # in the index of the one shard it can live in.
            index = self._indexes[self._namespace.shard_of(prefix)]
            chunk = await index.chunk(prefix, None, 1)
            if chunk.keys == [prefix]:
                yield chunk.keys
            return
        matches = None if shape == "prefix" else compile_glob_bytes(pattern)
        async with contextlib.aclosing(self._walk_shards(prefix, self._pace(count))) as chunks:
            async for members in chunks:
                selected = members if matches is None else [m for m in members if matches(m)]
                if selected:
                    yield decode_keys(selected)

    async def count(self, pattern: str, count: int | None) -> int:
        if literal_prefix(pattern) == ("", "prefix"):
            # One O(log N) call per shard.
            prune = self._prune_size(count)
            counts = await gather_limited(
                (partial(index.live_count, prune=prune) for index in self._indexes),
                self._backend.fanout(),
            )
            return sum(counts)
        total = 0
        async for batch in self.batches(pattern, count):
            total += len(batch)
        return total

    async def clear(self, count: int | None, meter: ProgressMeter | None = None) -> int:
        """Delete every key the index knows, no server call over the time budget.

        Keys written behind the store's back are not in the index and stay
        (as they stay invisible to ``keys``); :meth:`reindex` first adopts them.
        Each shard's index is cleared by its backend
        (:meth:`~tenantkv.index.protocols.KeyIndex.clear`), shards concurrently.
        A ``meter`` someone listens to learns the total first: the indexed
        count (one O(log N) call per shard).
        """
        pace = self._pace(count)
        step = None
        if meter is not None:
            if meter.wanted:
                meter.total = await self.count("*", count)
            step = meter.add
        return sum(
            await gather_limited(
                (partial(index.clear, pace, step) for index in self._indexes),
                self._backend.fanout(),
            )
        )

    async def prune(self, count: int | None) -> int:
        """Remove the entries of every expired key, a bounded number per server call; how many."""
        size = self._prune_size(count)

        async def prune_shard(index: KeyIndex) -> int:
            pruned = 0
            cancelled = CancellationCheck()
            while True:
                cancelled()
                removed = await index.prune(size)
                pruned += removed
                if removed < size:
                    return pruned

        return sum(
            await gather_limited(
                (partial(prune_shard, index) for index in self._indexes), self._backend.fanout()
            )
        )

    async def verify(
        self,
        count: int | None,
        max_reported: int = DEFAULT_MAX_REPORTED,
        meter: ProgressMeter | None = None,
    ) -> IndexReport:
        """Compare the index with a SCAN of the namespace; repair nothing (it only prunes).

        ``meter`` hears of every page of data keys scanned and chunk of entries
        checked (so its count ends at ``scanned_keys + index_entries``).
        """
        return await self._compare(count, max_reported, repair=False, meter=meter)

    async def reindex(
        self,
        count: int | None,
        max_reported: int = DEFAULT_MAX_REPORTED,
        meter: ProgressMeter | None = None,
    ) -> IndexReport:
        """Make the index match the data: adopt unindexed keys, drop entries without data.

        Bounded and non-blocking: a SCAN of the namespace, then a walk of the
        index (each command within the time budget and ``count``); each page
        is checked and repaired by calls per shard it holds keys of. The
        report adds up the drift of every shard. ``meter``: as for :meth:`verify`.
        """
        return await self._compare(count, max_reported, repair=True, meter=meter)

    async def _compare(
        self, count: int | None, max_reported: int, *, repair: bool, meter: ProgressMeter | None
    ) -> IndexReport:
        tally = _Tally(max_reported)
        namespace, shards = self._namespace, len(self._indexes)
        pace = self._pace(count)
        comparing = min(_COMPARING, self._backend.fanout(_COMPARE_HOLDS))  # shards at a time
        # Where the relative key starts in a physical key, and (sharded) the shard number.
        cut = len(encode_key(namespace.shard_prefix(0)))
        shard_at = len(encode_key(namespace.key_prefix))

        async def compare(index: KeyIndex, keys: Sequence[bytes]) -> list[IndexStatus]:
            return await (index.repair(keys, pace) if repair else index.check(keys, pace))

        # Every data key present for the whole SCAN is checked against the
        # index of the shard it lives in: finds keys without an entry and
        # entries with the wrong expiry. One SCAN covers every shard (a
        # per-shard SCAN would walk the whole keyspace once per shard on a
        # single server and on Redis < 7.4).
        cancelled = CancellationCheck()
        async with contextlib.aclosing(
            _scan_for_repair(self._backend, namespace.match("*"), pace, repair)
        ) as pages:
            async for page in pages:
                cancelled()
                if not page:
                    continue
                if shards == 1:
                    groups = {0: page}
                else:
                    groups = {}
                    for key in page:
                        shard = int(key[shard_at : shard_at + 2])
                        # Shard numbers beyond ``shards`` belong to another layout
                        # (the tenant opened with another ``shards``): not this index's.
                        if shard < shards:
                            groups.setdefault(shard, []).append(key)
                    if not groups:
                        continue
                parts = list(groups.values())
                statuses = await gather_limited(
                    (
                        partial(compare, self._indexes[shard], keys)
                        for shard, keys in groups.items()
                    ),
                    comparing,
                )
                for keys, found in zip(parts, statuses, strict=True):
                    tally.scanned += len(keys)
                    tally.add(keys, found, _DATA_SIDE, cut)
                    if meter is not None:
                        meter.add(len(keys))

        # Every live entry of every shard is checked: finds entries whose key is gone.
        async def walk_shard(index: KeyIndex) -> None:
            key_prefix = encode_key(index.keys.key_prefix)
            async with contextlib.aclosing(index.walk("", pace)) as chunks:
                async for members in chunks:
                    tally.walked += len(members)
                    found = await compare(index, [key_prefix + m for m in members])
                    tally.add(members, found, _INDEX_SIDE)
                    if meter is not None:
                        meter.add(len(members))

        await gather_limited((partial(walk_shard, index) for index in self._indexes), comparing)
        return tally.report(namespace.tenant, repaired=repair)


async def _scan_for_repair(
    backend: Backend, match: str, pace: Pace, repair: bool
) -> AsyncGenerator[list[bytes], None]:
    """The namespace's SCAN for reindex/verify_index; a user denied SCAN is told what to do.

    A tenant user whose ACL denies ``SCAN`` (the recipe where the index is the
    only way to list) cannot run them: they need a user allowed ``SCAN``.
    """
    try:
        async with contextlib.aclosing(backend.scan(match, pace)) as pages:
            async for page in pages:
                yield page
    except PermissionDeniedError as exc:
        what = "reindex" if repair else "verify_index"
        raise PermissionDeniedError(
            f"{what} walks the tenant's namespace with SCAN, which these credentials may not "
            f"run (a tenant user without SCAN); run {what} as a user allowed SCAN, such as "
            f"an admin user. {exc}",
            url=exc.url,
            command="SCAN",
        ) from exc


async def _next_chunk(walk: AsyncGenerator[list[bytes], None]) -> list[bytes] | None:
    """The next chunk of ``walk``; ``None`` once it has ended."""
    try:
        return await walk.__anext__()
    except StopAsyncIteration:
        return None
