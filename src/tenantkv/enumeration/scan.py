"""Enumeration by ``SCAN cursor MATCH <namespace><pattern> COUNT n``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..backends.base import Backend
from ..cancellation import CancellationCheck
from ..fanout import gather_limited
from ..index.protocols import IndexingBackend, shard_index_keys
from ..namespace import Namespace

__all__ = ["ScanEnumerator"]


class ScanEnumerator:
    """Walks the whole keyspace with a cursor, keeping the tenant's matching keys.

    Each server call visits about ``count`` keys, so none blocks the server
    for long; the walk as a whole costs what the *whole keyspace* holds (the
    index strategy costs what the tenant holds). SCAN may return a key more
    than once, so the names already yielded are remembered for the length of
    one enumeration.
    """

    strategy = "scan"

    def __init__(self, backend: Backend, namespace: Namespace) -> None:
        self._backend = backend
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"ScanEnumerator(tenant={self._namespace.tenant!r})"

    async def batches(self, pattern: str, count: int) -> AsyncIterator[list[str]]:
        seen: set[str] = set()
        relative = self._namespace.relative
        cancelled = CancellationCheck()
        async for page in self._backend.scan(self._namespace.match(pattern), count):
            cancelled()
            fresh = [key for key in dict.fromkeys(page) if key not in seen]
            if fresh:
                seen.update(fresh)
                yield [relative(key) for key in fresh]

    async def count(self, pattern: str, count: int) -> int:
        total = 0
        async for batch in self.batches(pattern, count):
            total += len(batch)
        return total

    async def clear(self, count: int) -> int:
        """Delete every key of the tenant; and the tenant's key index, if it has one.

        A store opened without the index may clear a tenant that stores opened
        with it wrote: left alone, the index would keep listing the deleted
        keys to them. The index goes first, so a key an indexed store writes
        while the SCAN runs keeps its new entry: a live key is never hidden from
        indexed readers (if the SCAN then deletes that key, its entry outlives
        it until ``reindex()``). The number returned counts data keys only.
        """
        backend = self._backend
        if isinstance(backend, IndexingBackend):
            # One call per shard's index, side by side (a sharded tenant's are in different slots).
            await gather_limited(
                backend.key_index(keys).drop for keys in shard_index_keys(self._namespace)
            )
        deleted = 0
        cancelled = CancellationCheck()
        # Deleting while walking is safe: SCAN still returns every key that
        # stays present, and each page is at most about ``count`` keys.
        async for page in self._backend.scan(self._namespace.match("*"), count):
            cancelled()
            deleted += await self._backend.unlink(page)
        return deleted
