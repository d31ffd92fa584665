"""Enumeration by ``SCAN cursor MATCH <namespace><pattern> COUNT n``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from ..backends.base import Backend
from ..cancellation import CancellationCheck
from ..codec import decode_keys, encode_key
from ..fanout import gather_limited
from ..index.protocols import IndexingBackend, shard_index_keys
from ..namespace import Namespace
from ..pacing import DEFAULT_BUDGET_MS, Pace
from ..progress import ProgressMeter

__all__ = ["ScanEnumerator"]


class ScanEnumerator:
    """Walks the whole keyspace with a cursor, keeping the tenant's matching keys.

    Each server call visits as many keys as the time budget allows (and at
    most ``count``), so none blocks the server for long; the walk as a whole
    costs what the *whole keyspace* holds (the index strategy costs what the
    tenant holds). SCAN may return a key more than once, so the names already
    yielded are remembered for the length of one enumeration.

    Per page, the work is one pass: every key of the tenant starts with the
    same namespace prefix (of one length for every shard), so it is cut off
    by position and the rest decoded once; the de-duplication set holds the
    very ``str`` objects yielded (a ``keys()`` list shares them), and a page
    that holds no name seen before, as nearly every page, is added to it in
    one call.
    """

    strategy = "scan"

    def __init__(
        self, backend: Backend, namespace: Namespace, *, budget_ms: float = DEFAULT_BUDGET_MS
    ) -> None:
        self._backend = backend
        self._namespace = namespace
        self._budget_ms = budget_ms
        #: Bytes before the relative key in every physical key of the tenant.
        self._cut = len(encode_key(namespace.shard_prefix(0)))

    @property
    def budget_ms(self) -> float:
        """Target server time of each command, in ms."""
        return self._budget_ms

    def __repr__(self) -> str:
        return f"ScanEnumerator(tenant={self._namespace.tenant!r})"

    async def batches(self, pattern: str, count: int | None) -> AsyncGenerator[list[str], None]:
        seen: set[str] = set()
        cut = self._cut
        cancelled = CancellationCheck()
        pages = self._backend.scan(self._namespace.match(pattern), Pace(self._budget_ms, count))
        async with contextlib.aclosing(pages):
            async for page in pages:
                cancelled()
                if not page:
                    continue
                keys = decode_keys(page, cut)
                if seen.isdisjoint(keys):
                    before = len(seen)
                    seen.update(keys)
                    if len(seen) - before == len(keys):
                        yield keys
                        continue
                    # A name twice in one page: yield it once.
                    fresh = list(dict.fromkeys(keys))
                else:
                    fresh = [key for key in dict.fromkeys(keys) if key not in seen]
                    seen.update(fresh)
                if fresh:
                    yield fresh

    async def count(self, pattern: str, count: int | None) -> int:
        """How many distinct keys match: the same walk as :meth:`batches`, without decoding
        (the set holds the key bytes after the namespace prefix)."""
        seen: set[bytes] = set()
        cut = self._cut
        whole = self._namespace.shards == 1  # one prefix for all keys: no need to cut it off
        cancelled = CancellationCheck()
        pages = self._backend.scan(self._namespace.match(pattern), Pace(self._budget_ms, count))
        async with contextlib.aclosing(pages):
            async for page in pages:
                cancelled()
                seen.update(page if whole else [key[cut:] for key in page])
        return len(seen)

    async def clear(self, count: int | None, meter: ProgressMeter | None = None) -> int:
        """Delete every key of the tenant; and the tenant's key index, if it has one.

        A store opened without the index may clear a tenant that stores opened
        with it wrote: left alone, the index would keep listing the deleted
        keys to them. The index goes first, so a key an indexed store writes
        while the SCAN runs keeps its new entry: a live key is never hidden from
        indexed readers (if the SCAN then deletes that key, its entry outlives
        it until ``reindex()``). The number returned counts data keys only.

        Each page's UNLINK goes out with the next SCAN (one round trip per
        page, :meth:`~tenantkv.backends.base.Backend.scan_unlink`). No total for
        ``meter``: what the SCAN will find is not known before it ends.
        """
        backend = self._backend
        if isinstance(backend, IndexingBackend):
            # One call per shard's index, side by side (a sharded tenant's are in different slots).
            await gather_limited(
                (backend.key_index(keys).drop for keys in shard_index_keys(self._namespace)),
                backend.fanout(),
            )
        deleted = 0
        cancelled = CancellationCheck()
        # Deleting while walking is safe: SCAN still returns every key that stays present.
        steps = backend.scan_unlink(self._namespace.match("*"), Pace(self._budget_ms, count))
        async with contextlib.aclosing(steps):
            async for removed in steps:
                cancelled()
                deleted += removed
                if meter is not None:
                    meter.add(removed)
        return deleted
