"""What the load test measures: ways to list a tenant's keys, and ways to clear them.

The library's own strategies (``scan``, ``index``, ``clear``) go through a
:class:`~tenantkv.TenantStore`, exactly as a user's code would. Only the
references talk to redis-py directly: ``KEYS`` (the old way, the baseline)
and redis-py's ``scan_iter`` with its default COUNT ("what most Python code
does").

On a Redis Cluster the old way has to send ``KEYS`` to every primary (they
run concurrently, each blocking its own node), and delete per hash slot;
``scan_iter`` is then redis-py's ``RedisCluster.scan_iter``, which walks the
primaries with one cursor each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from tenantkv import Namespace, TenantStore

from .dataset import DistinctCounter

__all__ = [
    "ClearStrategy",
    "KeysCommand",
    "KeysThenDelete",
    "LibraryClear",
    "LibraryListing",
    "ListingStrategy",
    "RedisPyScanIter",
    "count_found",
]

#: SCAN's COUNT when the client sends none (what redis-py's ``scan_iter()`` gets).
SERVER_DEFAULT_COUNT = 10


def _relative(namespace: Namespace, raw: bytes | str) -> str:
    key = raw if isinstance(raw, str) else raw.decode("utf-8", "surrogateescape")
    return namespace.relative(key) if key.startswith(namespace.key_prefix) else "\0" + key


def count_found(found: list[Any], namespace: Namespace | None, counter: DistinctCounter) -> None:
    """Feed what a listing returned (physical if ``namespace`` is given) into ``counter``."""
    for raw in found:
        counter.add(raw if namespace is None else _relative(namespace, raw))


class ListingStrategy(Protocol):
    """Lists one tenant's keys into ``found``, as fast as it can.

    Checking the keys costs more than some strategies take to list them, so
    it happens after the clock stops (:func:`count_found`); ``found`` holds
    one listing's keys meanwhile (about 100 MB for 1,000,000 keys).
    """

    name: str
    label: str
    count: int | None
    baseline: bool
    #: Whether the strategy promises each key at most once (raw SCAN does not).
    unique: bool

    @property
    def physical(self) -> Namespace | None:
        """The namespace to strip from physical keys; ``None`` when keys come back relative."""
        ...

    async def run(self, found: list[Any]) -> None: ...


class ClearStrategy(Protocol):
    """Deletes one tenant's keys; returns how many were deleted."""

    name: str
    label: str
    baseline: bool

    async def run(self) -> int: ...


@dataclass
class KeysCommand:
    """The old way: one ``KEYS <namespace>*`` that walks the keyspace in one blocking call.

    With several ``nodes`` (a cluster's primaries) one KEYS goes to each, concurrently.
    """

    nodes: list[aioredis.Redis]
    namespace: Namespace
    name: str = "keys"
    label: str = "KEYS (baseline)"
    count: int | None = None
    baseline: bool = True
    unique: bool = True

    async def run(self, found: list[Any]) -> None:
        pattern = self.namespace.match("*")
        for keys in await asyncio.gather(*(node.keys(pattern) for node in self.nodes)):
            found.extend(keys)

    @property
    def physical(self) -> Namespace:
        return self.namespace


@dataclass
class RedisPyScanIter:
    """``scan_iter(match=...)`` with redis-py's default (no COUNT: 10).

    ``client`` is a ``redis.asyncio.Redis``, or a ``RedisCluster`` whose
    ``scan_iter`` walks every primary.
    """

    client: aioredis.Redis | AsyncRedisCluster
    namespace: Namespace
    name: str = "scan_iter"
    label: str = f"redis-py scan_iter (COUNT {SERVER_DEFAULT_COUNT})"
    count: int | None = SERVER_DEFAULT_COUNT
    baseline: bool = False
    unique: bool = False

    async def run(self, found: list[Any]) -> None:
        async for raw in self.client.scan_iter(match=self.namespace.match("*")):
            found.append(raw)

    @property
    def physical(self) -> Namespace:
        return self.namespace


@dataclass
class LibraryListing:
    """``store.iter_keys(count=...)``: SCAN, or the index when the store was opened with it."""

    store: TenantStore
    name: str
    label: str
    count: int | None
    baseline: bool = False
    unique: bool = True

    physical: Namespace | None = None

    async def run(self, found: list[Any]) -> None:
        async for key in self.store.iter_keys("*", count=self.count):
            found.append(key)


@dataclass
class KeysThenDelete:
    """The old way to clear: ``KEYS`` then one ``DEL`` of everything it returned.

    On a cluster (``per_slot``): KEYS on every primary, then one DEL per hash
    slot (a multi-key DEL must stay in one slot), each node concurrently.
    """

    nodes: list[aioredis.Redis]
    namespace: Namespace
    name: str = "keys+del"
    label: str = "KEYS+DEL (baseline)"
    baseline: bool = True
    per_slot: bool = False

    async def run(self) -> int:
        deleted = await asyncio.gather(*(self._one_node(node) for node in self.nodes))
        return sum(deleted)

    async def _one_node(self, client: aioredis.Redis) -> int:
        keys: list[bytes | str] = await client.keys(self.namespace.match("*"))
        if not keys:
            return 0
        if not self.per_slot:
            deleted: int = await client.delete(*keys)
            return deleted
        slots: dict[int, list[bytes | str]] = {}
        for key in keys:
            slots.setdefault(key_slot(key if isinstance(key, bytes) else key.encode()), []).append(
                key
            )
        total = 0
        for group in slots.values():
            total += await client.delete(*group)
        return total


@dataclass
class LibraryClear:
    """``store.clear()``: bounded batches of UNLINK, found by SCAN or by the index."""

    store: TenantStore
    name: str
    label: str
    baseline: bool = False

    async def run(self) -> int:
        return await self.store.clear()
