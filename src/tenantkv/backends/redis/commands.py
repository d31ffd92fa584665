"""The single-key commands, alike on one server and on a cluster (redis-py routes by key)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from ...codec import decode_key
from ...pacing import MoveCosts
from ..base import BatchOp, MoveIn
from .index import IndexServer
from .moving import RoundTrips, moving_scripts, write_args
from .scripts import lua_source, script_source
from .wire import Pacing

__all__ = ["SingleKeyCommands"]


class SingleKeyCommands:
    """The single-key commands, alike on one server and on a cluster (redis-py routes by key),
    and what both backends keep of their servers (:meth:`_keep_server_state`).

    Both :class:`RedisBackend` and the cluster backend mix this in; they provide
    ``_key_client``, ``_errors`` (refuse a closed backend, translate exceptions) and
    ``_pool_of`` (the pool of the server holding a key).
    """

    _set_many_script: AsyncScript
    _batch_script: AsyncScript
    _moving: dict[str, AsyncScript]
    _pacing: Pacing
    _move_costs: MoveCosts
    _round_trips: RoundTrips
    _index_server: IndexServer

    def _keep_server_state(
        self, client: aioredis.Redis | RedisCluster, connections: int | None
    ) -> None:
        """Register the scripts run outside the index, and start what is learned per server
        (a cluster: per node) and shared by every walk and call of the backend."""
        self._set_many_script = client.register_script(lua_source("set_many_unindexed"))
        self._batch_script = client.register_script(script_source("batch"))
        self._moving = moving_scripts(client)
        #: What SCAN, UNLINK and index chunks cost on each server.
        self._pacing = Pacing()
        #: What the migration's scripts cost, and a call's fixed round trip (tenantkv.migration).
        self._move_costs = MoveCosts(self._pacing.costs)
        self._round_trips = RoundTrips()
        self._index_server = IndexServer(
            client,
            errors=self._errors,
            pacing=self._pacing,
            pool=self._pool_of,
            connections=connections,
        )

    @property
    def _key_client(self) -> aioredis.Redis | RedisCluster:
        raise NotImplementedError

    def _errors(self, command: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def _pool_of(self, key: str) -> aioredis.ConnectionPool:
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
