"""The Redis backend: redis-py's asyncio client (hiredis parser) on one server.

Every command runs inside ``_errors(command)``, which refuses a closed backend
and translates redis-py's exceptions into :mod:`tenantkv.errors` with the
URL's password removed. Pub/sub uses one dedicated subscriber connection per
backend, shared by all its subscriptions, read by one background task
(:mod:`.pubsub`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from ...codec import encode_key
from ...errors import InvalidURLError
from ...index.protocols import IndexKeys
from ...pacing import (
    MOVE_DELETE,
    MOVE_READ,
    SCAN,
    SCAN_UNLINK,
    MovePacer,
    Pace,
    StepKind,
)
from ...urls import StoreURL
from ..base import BackendBase, BatchOp, OldKey
from .batching import batch_call, batch_results, unindexed_keys
from .commands import SingleKeyCommands
from .errors import translate_errors
from .index import RedisKeyIndex
from .moving import delete_all, read_all
from .options import NO_RETRY, standalone_url
from .pubsub import RedisSubscription, SubscriberHub
from .walks import scan_pages, scan_unlink
from .wire import held_wire

__all__ = ["RedisBackend"]


class RedisBackend(SingleKeyCommands, BackendBase):
    """A backend on one Redis server (``redis://`` or ``rediss://``)."""

    def __init__(self, client: aioredis.Redis, *, url: str, subscriber: aioredis.Redis) -> None:
        super().__init__(url, connections=client.connection_pool.max_connections)
        self._client = client
        self._subscriber = subscriber
        self._hub = SubscriberHub(subscriber, url)
        self._keep_server_state(client, self.connections)

    @staticmethod
    def prepare(url: StoreURL, options: dict[str, Any]) -> StoreURL:
        """``url`` with its options checked and ``options`` (keywords) merged; no I/O.

        Option names, from the keywords and the URL's query, are checked here
        (redis-py would only fail on the first connection, with a TypeError).
        """
        return standalone_url(url, options)

    @classmethod
    def create(cls, url: StoreURL) -> RedisBackend:
        """A backend on the server of a prepared ``redis://`` URL (nothing sent yet)."""
        ((host, port),) = url.nodes
        try:
            client = aioredis.Redis(host=host, port=port, **url.client_options)
            # The subscriber connection never retries: a retry would reconnect
            # and subscribe again behind the subscriptions' back (see .pubsub).
            subscriber = aioredis.Redis(host=host, port=port, **{**url.client_options, **NO_RETRY})
        except (ValueError, TypeError) as exc:
            raise InvalidURLError(f"invalid Redis URL {url.redacted}: {exc}") from exc
        return cls(client, url=url.redacted, subscriber=subscriber)

    @property
    def client(self) -> aioredis.Redis:
        """The underlying redis-py client (for diagnostics and tests)."""
        return self._client

    @property
    def _key_client(self) -> aioredis.Redis:
        return self._client

    @property
    def subscription_count(self) -> int:
        return self._hub.subscription_count

    def _errors(self, command: str) -> contextlib.AbstractContextManager[None]:
        self._check_open()
        return translate_errors(self._url, command)

    async def ping(self) -> None:
        with self._errors("PING"):
            await self._client.ping()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with self._errors("MGET"):
            values = await self._client.mget(list(keys))
        return cast("list[bytes | None]", values)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """One atomic script call (``lua/set_many_unindexed.lua``): MSET, or SET … PX per key.

        A MULTI/EXEC of the same SETs is as atomic, but costs the client several
        times as much per key: redis-py queues, packs and parses one command per key.
        """
        if not items:
            return
        ttl = "" if ttl_ms is None else str(ttl_ms)
        with self._errors("SET"):
            await self._set_many_script(
                keys=[key for key, _ in items], args=[ttl, *(value for _, value in items)]
            )

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """One script call (``lua/batch.lua``), atomic for every key of this server."""
        if not ops:
            return []
        data_keys, args = batch_call(ops, indexed=False)
        with self._errors("EVALSHA"):
            replies = await self._batch_script(keys=unindexed_keys(ops, data_keys), args=args)
        return batch_results(ops, replies)

    # -- moving in from another layout (tenantkv.migration) -----------------------
    async def move_pacer(self, kind: StepKind, pace: Pace, key: str) -> MovePacer:
        cost = self._move_costs(kind)
        with self._errors("PING"):
            cost.floor_s = await self._round_trips.floor(None, self._client.ping)
        return MovePacer(cost, pace)

    async def migrate_read(self, keys: Sequence[str], max_items: int, pace: Pace) -> list[OldKey]:
        if not keys:
            return []
        pacer = await self.move_pacer(MOVE_READ, pace, keys[0])
        with self._errors("EVALSHA"):
            return await read_all(self._moving["read"], keys, max_items, pacer)

    async def migrate_delete(
        self, keys: Sequence[tuple[str, str, int]], max_items: int, pace: Pace
    ) -> list[str]:
        if not keys:
            return []
        pacer = await self.move_pacer(MOVE_DELETE, pace, keys[0][0])
        with self._errors("EVALSHA"):
            return await delete_all(self._moving["delete"], keys, max_items, pacer)

    async def publish(self, channel: str, data: bytes) -> int:
        with self._errors("PUBLISH"):
            receivers: int = await self._client.publish(channel, data)
        return receivers

    def subscribe(self, channel: str) -> RedisSubscription:
        self._check_open()
        return RedisSubscription(self._hub, channel)

    async def _pool_of(self, key: str) -> aioredis.ConnectionPool:
        return self._client.connection_pool

    async def scan(self, match: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Pages of ``SCAN`` on a connection of its own, one request ahead (:mod:`.walks`)."""
        stats = self._pacing.stats(SCAN, pace, (b"scan",))
        async with (
            held_wire(self._client.connection_pool, self._errors, "SCAN") as wire,
            contextlib.aclosing(scan_pages(wire, encode_key(match), stats)) as pages,
        ):
            async for page in pages:
                yield page

    async def scan_unlink(self, match: str, pace: Pace) -> AsyncGenerator[int, None]:
        """``UNLINK`` of each SCAN page written with the next SCAN: one round trip per page."""
        stats = self._pacing.stats(SCAN_UNLINK, pace, (b"scan", b"unlink"))
        async with (
            held_wire(self._client.connection_pool, self._errors, "UNLINK") as wire,
            contextlib.aclosing(scan_unlink(wire, encode_key(match), stats)) as steps,
        ):
            async for removed in steps:
                yield removed

    async def unlink(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        with self._errors("UNLINK"):
            removed: int = await self._client.unlink(*keys)
        return removed

    def key_index(self, keys: IndexKeys) -> RedisKeyIndex:
        """The tenant index stored under ``keys`` (kept by Lua scripts; Redis >= 7.0)."""
        return RedisKeyIndex(self._index_server, keys)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._hub.aclose()
        await self._subscriber.aclose()
        await self._client.aclose()
