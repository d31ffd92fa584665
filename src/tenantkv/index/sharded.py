"""The writes of a tenant spread over several shards, each to its shard's own index."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from ..backends.base import BatchOp, MoveIn, batch_steps
from ..fanout import MAX_PARALLEL, gather_limited
from ..namespace import Namespace
from .protocols import KeyIndex

__all__ = ["ShardedKeyWriter"]


class ShardedKeyWriter:
    """The writes of a sharded tenant, each sent to the index of its key's shard.

    A single-key write is one call of that shard's :class:`KeyIndex` (one
    atomic round trip in one slot, as for an unsharded tenant). ``set_many``
    and ``unlink`` make one call per shard involved, shards concurrently: each
    shard's part is all-or-none and keeps data and index consistent, but a
    failure in one shard does not undo the parts of the others.
    """

    def __init__(
        self, indexes: Sequence[KeyIndex], namespace: Namespace, *, fanout: int = MAX_PARALLEL
    ) -> None:
        if len(indexes) != namespace.shards:
            raise ValueError(f"{namespace.shards} shards need as many indexes, not {len(indexes)}")
        self._indexes = tuple(indexes)
        self._namespace = namespace
        #: Shards written at a time (the backend's :meth:`~tenantkv.backends.base.Backend.fanout`).
        self._fanout = fanout

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
            (
                partial(self._indexes[shard].set_many, [items[i] for i in positions], ttl_ms)
                for shard, positions in groups.items()
            ),
            self._fanout,
        )

    async def delete(self, key: str) -> bool:
        return await self._index(key).delete(key)

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        return await self._index(key).set_ttl(key, ttl_ms)

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        return await self._index(key).list_push(key, value, ttl_ms)

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        """The moves are of one shard (the caller groups them): that shard's index writes them."""
        if not moves:
            return []
        return await self._index(moves[0].key).migrate_write(ledger, moves, max_items, check=check)

    async def _per_shard(
        self,
        keys: Sequence[str],
        call: Callable[[KeyIndex, list[int]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """``call(index, positions)`` per shard involved, shards concurrently; results in order."""
        parts = list(self._by_shard(keys).items())
        replies = await gather_limited(
            (partial(call, self._indexes[shard], positions) for shard, positions in parts),
            self._fanout,
        )
        out: list[Any] = [None] * len(keys)
        for (_, positions), results in zip(parts, replies, strict=True):
            for position, result in zip(positions, results, strict=True):
                out[position] = result
        return out

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """One call per shard involved (keys and channels alike), shards concurrently:
        each shard's part is all-or-none and in order; the parts stand on their own. Over
        several shards, in steps (:func:`batch_steps`): a publish goes after every call
        queued before it."""
        out: list[Any] = [None] * len(ops)
        for step in batch_steps(ops, len(self._by_shard([op.key for op in ops]))):
            part = [ops[i] for i in step]

            async def shard_part(
                index: KeyIndex, positions: list[int], part: list[BatchOp] = part
            ) -> list[Any]:
                return await index.batch([part[i] for i in positions])

            results = await self._per_shard([op.key for op in part], shard_part)
            for position, result in zip(step, results, strict=True):
                out[position] = result
        return out
