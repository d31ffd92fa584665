"""The single-key commands, alike on one server and on a cluster (redis-py routes by key)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from ...codec import decode_key
from ..base import BatchOp, MoveIn
from .moving import write_args

__all__ = ["SingleKeyCommands"]


class SingleKeyCommands:
    """The single-key commands, alike on one server and on a cluster (redis-py routes by key).

    Both :class:`RedisBackend` and the cluster backend mix this in; they provide
    ``_key_client`` and ``_errors`` (refuse a closed backend, translate exceptions).
    """

    @property
    def _key_client(self) -> aioredis.Redis | RedisCluster:
        raise NotImplementedError

    def _errors(self, command: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def get(self, key: str) -> bytes | None:
        with self._errors("GET"):
            value = await self._key_client.get(key)
        return cast("bytes | None", value)

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        with self._errors("SET"):
            await self._key_client.set(key, value, px=ttl_ms)

    async def delete(self, key: str) -> bool:
        with self._errors("UNLINK"):
            return bool(await self._key_client.unlink(key))

    async def exists(self, key: str) -> bool:
        with self._errors("EXISTS"):
            return bool(await self._key_client.exists(key))

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        with self._errors("PEXPIRE"):
            return bool(await self._key_client.pexpire(key, ttl_ms))

    async def get_ttl(self, key: str) -> int | None:
        with self._errors("PTTL"):
            ttl: int = await self._key_client.pttl(key)
        return ttl if ttl >= 0 else None

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        if ttl_ms is not None:  # RPUSH and PEXPIRE in one atomic step: a batch of one
            (length,) = await self.batch([BatchOp("list_push", key, value, ttl_ms)])
            return int(length)
        with self._errors("RPUSH"):
            pushed: int = await self._key_client.rpush(key, value)
        return pushed

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        raise NotImplementedError

    _moving: dict[str, AsyncScript]

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        """One script (``lua/migrate_write.lua``): the moves are of one shard, so one slot."""
        if not moves:
            return []
        keys = [ledger, ledger, ledger, *(move.key for move in moves)]
        args = write_args(moves, indexed=False, max_items=max_items, check=check)
        with self._errors("EVALSHA"):
            replies = await self._moving["write"](keys=keys, args=args)
        return [decode_key(reply) for reply in replies]

    async def list_range(self, key: str, start: int, stop: int) -> list[bytes]:
        with self._errors("LRANGE"):
            items = await self._key_client.lrange(key, start, stop)
        return cast("list[bytes]", items)

    async def list_length(self, key: str) -> int:
        with self._errors("LLEN"):
            length: int = await self._key_client.llen(key)
        return length
