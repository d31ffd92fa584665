"""Wiring a tenant's key index into a store: its writer and its enumerator."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import Backend
from ..errors import InvalidURLError
from ..fanout import gather_limited
from ..namespace import Namespace
from ..pacing import DEFAULT_BUDGET_MS
from .enumerator import IndexEnumerator
from .protocols import IndexingBackend, KeyIndex, KeyWriter, shard_index_keys
from .sharded import ShardedKeyWriter

__all__ = ["TenantIndex", "attach_index", "existing_index_writer"]


@dataclass(frozen=True, slots=True)
class TenantIndex:
    """What a store needs to keep and read one tenant's index."""

    #: Every write of the store goes through it (data and index together).
    writer: KeyWriter
    #: Lists, counts, clears and repairs through the index.
    enumerator: IndexEnumerator


async def attach_index(
    backend: Backend, namespace: Namespace, *, budget_ms: float = DEFAULT_BUDGET_MS
) -> TenantIndex:
    """The key index of ``namespace`` on ``backend``, its scripts checked and loaded.

    A sharded tenant has one index per shard, in that shard's slot; its
    writes go through a :class:`ShardedKeyWriter` to the index of their key's
    shard. Raises :class:`~tenantkv.errors.InvalidURLError` when the backend
    cannot keep an index.
    """
    if not isinstance(backend, IndexingBackend):
        raise InvalidURLError(f"the backend of {backend.url} cannot keep a key index (index=true)")
    indexes = [backend.key_index(keys) for keys in shard_index_keys(namespace)]
    # Every shard's index lives on the same backend and runs the same
    # scripts: checking (and loading) them once is enough.
    await indexes[0].prepare()
    enumerator = IndexEnumerator(indexes, backend, namespace, budget_ms=budget_ms)
    return TenantIndex(_writer(indexes, namespace, backend), enumerator)


def _writer(indexes: list[KeyIndex], namespace: Namespace, backend: Backend) -> KeyWriter:
    if len(indexes) == 1:
        return indexes[0]
    return ShardedKeyWriter(indexes, namespace, fanout=backend.fanout())


async def existing_index_writer(backend: Backend, namespace: Namespace) -> KeyWriter | None:
    """For a store opened without the index: the tenant's index writer, if it has an index.

    Stores opened with ``index=True`` keep an index of the tenant; a store
    opened without it on the same tenant must keep that index true too, or
    the indexed stores would list keys it deleted and miss keys it wrote. So
    it looks for the index when it opens (one EXISTS per shard) and, if there
    is one, writes through it. An index created *after* it opened is not seen
    (its writes reach the index only after a ``reindex()``).
    """
    if not isinstance(backend, IndexingBackend):
        return None
    indexes = [backend.key_index(keys) for keys in shard_index_keys(namespace)]
    found = await gather_limited((index.exists for index in indexes), backend.fanout())
    if not any(found):
        return None
    await indexes[0].prepare(listing=False)
    return _writer(indexes, namespace, backend)
