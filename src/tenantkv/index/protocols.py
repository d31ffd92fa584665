"""The key-index capability: what a backend offers so a store can keep a per-tenant index.

(The other pieces of the index family sit beside this module:
:mod:`tenantkv.index.sharded` routes a sharded tenant's writes,
:mod:`tenantkv.index.enumerator` lists, counts, clears and repairs through
the index; the backends' own indexes are ``tenantkv.backends.redis.index``
and ``tenantkv.backends.memory.index``.)

A store writes through a :class:`KeyWriter`. Without the index that is the
backend itself; with the index it is the backend's :class:`KeyIndex`, whose
writes change the data key *and* its index entry atomically, in the one
round trip the plain write would take. The index is read in bounded,
resumable chunks by :class:`tenantkv.index.enumerator.IndexEnumerator`.

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
(:func:`shard_index_keys`); :class:`~tenantkv.index.sharded.ShardedKeyWriter` sends each write to
the index of its key's shard, so a write still touches one slot and is
still one atomic call.

A backend that can keep such an index implements :class:`IndexingBackend`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..backends.base import BatchOp, MoveIn
from ..namespace import Namespace
from ..pacing import Pace

__all__ = [
    "IndexChunk",
    "IndexKeys",
    "IndexStatus",
    "IndexingBackend",
    "KeyIndex",
    "KeyWriter",
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

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int: ...

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]: ...

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        """Write keys moved in, of one shard (see :meth:`Backend.migrate_write`)."""
        ...


class KeyIndex(KeyWriter, Protocol):
    """One tenant's index on one backend.

    Each write (the :class:`KeyWriter` methods) changes data and index
    atomically in one round trip; a write that fails changes neither. Every
    read or repair is one bounded server call.
    """

    @property
    def keys(self) -> IndexKeys: ...

    async def prepare(self, *, listing: bool = True) -> None:
        """Check that the backend can keep the index (e.g. the server version).

        With ``listing`` the store will also list, count and clear through the
        index, so a server that may evict the index itself is refused.
        """

    async def exists(self) -> bool:
        """Whether the index holds any entry (one cheap call)."""
        ...

    async def chunk(self, prefix: str, after: str | None, count: int) -> IndexChunk:
        """Up to ``count`` entries starting with ``prefix``, after member ``after``.

        Expired entries met on the way are pruned, not returned.
        """
        ...

    def walk(self, prefix: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Every live entry starting with ``prefix``, in chunks as large as ``pace`` allows.

        Members come as the server holds them (UTF-8 ``bytes``), in byte
        order; each is yielded once; expired entries are not. The next chunk
        may be on its way while one is handed on (at most one ahead);
        stopping early leaves nothing unread on a pooled connection.
        """
        ...

    async def clear(self, pace: Pace, progress: Callable[[int], None] | None = None) -> int:
        """Delete every key the index lists, and the entries; how many keys existed.

        No server command does more than ``pace`` allows. A key written
        meanwhile is either deleted with its entry or keeps both; a live key
        never loses its entry. ``progress`` is called with the keys each step deleted.
        """
        ...

    async def live_count(self, prune: int) -> int:
        """How many entries are live; prunes up to ``prune`` expired entries first."""
        ...

    async def prune(self, count: int) -> int:
        """Remove up to ``count`` entries of expired keys; how many were removed."""
        ...

    async def check(self, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
        """Compare the physical ``keys`` (as the server holds them) with their entries (an
        entry whose key merely expired and is not yet pruned is consistent), in calls as
        large as ``pace`` allows."""
        ...

    async def repair(self, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
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
