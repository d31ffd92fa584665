"""The per-tenant key index (``index=True``), in one room.

- :mod:`.protocols`: what a backend offers to keep an index (:class:`KeyIndex`,
  :class:`IndexingBackend`) and the index's layout (:class:`IndexKeys`);
- :mod:`.sharded`: a sharded tenant's writes, each to its shard's index;
- :mod:`.enumerator`: listing, counting, clearing, verifying and repairing
  through the index (:class:`IndexEnumerator`, :class:`IndexReport`);
- :mod:`.attach`: how a store gets its index writer and enumerator.

Each backend keeps its own index beside its own code
(``tenantkv.backends.redis.index``, ``tenantkv.backends.memory.index``).
"""

from __future__ import annotations

from .attach import TenantIndex, attach_index, existing_index_writer
from .enumerator import DEFAULT_MAX_REPORTED, IndexEnumerator, IndexReport
from .protocols import (
    IndexChunk,
    IndexingBackend,
    IndexKeys,
    IndexStatus,
    KeyIndex,
    KeyWriter,
    prefix_successor,
    shard_index_keys,
)
from .sharded import ShardedKeyWriter

__all__ = [
    "DEFAULT_MAX_REPORTED",
    "IndexChunk",
    "IndexEnumerator",
    "IndexKeys",
    "IndexReport",
    "IndexStatus",
    "IndexingBackend",
    "KeyIndex",
    "KeyWriter",
    "ShardedKeyWriter",
    "TenantIndex",
    "attach_index",
    "existing_index_writer",
    "prefix_successor",
    "shard_index_keys",
]
