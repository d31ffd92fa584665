"""The key-index capability: what a backend offers so a store can keep a per-tenant index.

A store writes through a :class:`KeyWriter`. Without the index that is the
backend itself; with the index it is the backend's :class:`KeyIndex`, whose
writes change the data key *and* its index entry atomically, in the one
round trip the plain write would take. The index is read in bounded,
resumable chunks by :class:`tenantkv.enumeration.IndexEnumerator`.

The index of a tenant is two bookkeeping keys in the tenant's own hash slot
(see :mod:`tenantkv.namespace`):

- ``index``: every key of the tenant, as a member named by the
  tenant-relative key, ordered by its bytes (a sorted set with score 0 on
  Redis), so a ``prefix*`` pattern is one lexicographic range;
- ``expiry``: the keys that have a TTL, scored by their absolute expiry time
  in ms on the *server's* clock, so expired-but-not-yet-pruned entries can be
  filtered out and pruned in bounded batches without any expiry notification.

A tenant spread over ``N`` shards (``shards=N``) has ``N`` such indexes, one
per shard in that shard's slot, each covering the keys of its shard
(:func:`shard_index_keys`); :class:`ShardedKeyWriter` sends each write to
the index of its key's shard, so a write still touches one slot and is
still one atomic call.

A backend that can keep such an index implements :class:`IndexingBackend`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..fanout import gather_limited
from ..namespace import Namespace

__all__ = [
    "IndexChunk",
    "IndexKeys",
    "IndexStatus",
    "IndexingBackend",
    "KeyIndex",
    "KeyWriter",
    "ShardedKeyWriter",
    "prefix_successor",
    "shard_index_keys",
]


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``.

    ``None`` when there is none (``prefix`` is empty or all ``0xff``): the range
    is then open-ended.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True, slots=True)
class IndexKeys:
    """Where one tenant's index lives and how its members map to physical keys."""

    #: Every key of the tenant, ordered by name.
    index: str
    #: Keys with a TTL, scored by absolute expiry time (ms, server clock).
    expiry: str
    #: Physical key = ``key_prefix + member``.
    key_prefix: str

    def member(self, physical_key: str) -> str:
        return physical_key[len(self.key_prefix) :]


def shard_index_keys(namespace: Namespace) -> list[IndexKeys]:
    """Where the index of each shard of ``namespace`` lives, by shard number.

    One entry for an unsharded tenant (``<prefix>:{<tenant>}#idx``/``#exp``);
    else ``<prefix>:{<tenant>:NN}#idx``/``#exp`` in the slot of shard ``NN``.
    """
    return [
        IndexKeys(
            namespace.meta_key("idx", shard),
            namespace.meta_key("exp", shard),
            namespace.shard_prefix(shard),
        )
        for shard in range(namespace.shards)
    ]


@dataclass(frozen=True, slots=True)
class IndexChunk:
    """One bounded read of the index."""

    #: Live members (tenant-relative keys) in byte order; expired entries are left out.
    keys: list[str]
    #: Resume after this member; ``None`` when the range is exhausted.
    last: str | None


class IndexStatus(enum.IntEnum):
    """How a key and its index entry relate (the answer of :meth:`KeyIndex.check`)."""

    CONSISTENT = 0
    #: The data key exists but the index has no entry for it.
    MISSING_FROM_INDEX = 1
    #: The index has a live entry but the data key is gone.
    STALE_IN_INDEX = 2
    #: Both exist but the index records another expiry than the key has.
    TTL_MISMATCH = 3


class KeyWriter(Protocol):
    """Every write a store makes (on physical keys, encoded values).

    A :class:`~tenantkv.backends.base.Backend` is one; so is a :class:`KeyIndex`.
    """

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None: ...

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def set_ttl(self, key: str, ttl_ms: int) -> bool: ...

    async def list_push(self, key: str, value: bytes) -> int: ...

    async def unlink(self, keys: Sequence[str]) -> int: ...


class KeyIndex(KeyWriter, Protocol):
    """One tenant's index on one backend.

    Each write (the :class:`KeyWriter` methods) changes data and index
    atomically in one round trip; a write that fails changes neither. Every
    read or repair is one bounded server call.
    """

    @property
    def keys(self) -> IndexKeys: ...

    async def prepare(self) -> None:
        """Check that the backend can keep the index (e.g. the server version)."""

    async def chunk(self, prefix: str, after: str | None, count: int) -> IndexChunk:
        """Up to ``count`` entries starting with ``prefix``, after member ``after``.

        Expired entries met on the way are pruned, not returned.
        """
        ...

    async def live_count(self, prune: int) -> int:
        """How many entries are live; prunes up to ``prune`` expired entries first."""
        ...

    async def prune(self, count: int) -> int:
        """Remove up to ``count`` entries of expired keys; how many were removed."""
        ...

    async def check(self, keys: Sequence[str]) -> list[IndexStatus]:
        """Compare the physical ``keys`` with their entries (an entry whose key merely
        expired and is not yet pruned is consistent)."""
        ...

    async def repair(self, keys: Sequence[str]) -> list[IndexStatus]:
        """Like :meth:`check`, and make every inconsistent entry match its key."""
        ...

    async def drop(self) -> None:
        """Delete the index itself (its sorted sets), leaving the data alone."""
        ...


@runtime_checkable
class IndexingBackend(Protocol):
    """A backend that can keep per-tenant key indexes."""

    def key_index(self, keys: IndexKeys) -> KeyIndex:
        """The index stored at ``keys`` (nothing is written until the first write)."""
        ...


class ShardedKeyWriter:
    """The writes of a sharded tenant, each sent to the index of its key's shard.

    A single-key write is one call of that shard's :class:`KeyIndex` (one
    atomic round trip in one slot, as for an unsharded tenant). ``set_many``
    and ``unlink`` make one call per shard involved, shards concurrently: each
    shard's part is all-or-none and keeps data and index consistent, but a
    failure in one shard does not undo the parts of the others.
    """

    def __init__(self, indexes: Sequence[KeyIndex], namespace: Namespace) -> None:
        if len(indexes) != namespace.shards:
            raise ValueError(f"{namespace.shards} shards need as many indexes, not {len(indexes)}")
        self._indexes = tuple(indexes)
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"ShardedKeyWriter(tenant={self._namespace.tenant!r}, shards={len(self._indexes)})"

    def _index(self, key: str) -> KeyIndex:
        return self._indexes[self._namespace.physical_shard(key)]

    def _by_shard(self, keys: Sequence[str]) -> dict[int, list[int]]:
        """Positions of the physical ``keys`` grouped by shard."""
        groups: dict[int, list[int]] = {}
        for position, key in enumerate(keys):
            groups.setdefault(self._namespace.physical_shard(key), []).append(position)
        return groups

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        await self._index(key).set(key, value, ttl_ms)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        groups = self._by_shard([key for key, _ in items])
        await gather_limited(
            self._indexes[shard].set_many([items[i] for i in positions], ttl_ms)
            for shard, positions in groups.items()
        )

    async def delete(self, key: str) -> bool:
        return await self._index(key).delete(key)

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        return await self._index(key).set_ttl(key, ttl_ms)

    async def list_push(self, key: str, value: bytes) -> int:
        return await self._index(key).list_push(key, value)

    async def unlink(self, keys: Sequence[str]) -> int:
        groups = self._by_shard(keys)
        removed = await gather_limited(
            self._indexes[shard].unlink([keys[i] for i in positions])
            for shard, positions in groups.items()
        )
        return sum(removed)
