"""Wiring a tenant's key index into a store: its writer and its enumerator."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import Backend
from ..errors import InvalidURLError
from ..namespace import Namespace
from .enumerator import IndexEnumerator
from .protocols import IndexingBackend, KeyWriter, shard_index_keys
from .sharded import ShardedKeyWriter

__all__ = ["TenantIndex", "attach_index"]


@dataclass(frozen=True, slots=True)
class TenantIndex:
    """What a store needs to keep and read one tenant's index."""

    #: Every write of the store goes through it (data and index together).
    writer: KeyWriter
    #: Lists, counts, clears and repairs through the index.
    enumerator: IndexEnumerator


async def attach_index(backend: Backend, namespace: Namespace) -> TenantIndex:
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
    writer = indexes[0] if len(indexes) == 1 else ShardedKeyWriter(indexes, namespace)
    return TenantIndex(writer, IndexEnumerator(indexes, backend, namespace))
