"""Pub/sub on Redis: one subscriber connection per backend (per node on a cluster), shared.

A :class:`SubscriberHub` owns one redis-py ``PubSub`` connection and one
background task that reads it; every subscription of the backend on that
server is a queue the reader feeds. SUBSCRIBE and UNSUBSCRIBE wait for the
server's confirmation, so entering a subscription means the server has it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.client import PubSub

from ...codec import decode_key
from ...errors import BackendError, BackendUnavailableError, StoreClosedError
from ..subscription import QueueSubscription, SubscriptionQueue
from .errors import permission_denied, translate_errors

__all__ = ["RedisSubscription", "SubscriberHub"]

# How long to wait for the server to confirm SUBSCRIBE / UNSUBSCRIBE.
_PUBSUB_CONFIRM_S = 10.0


class SubscriberHub:
    """One subscriber connection shared by all subscriptions of a backend.

    ``client`` is any redis-py asyncio client of one server; the Redis Cluster
    backend gives it a client of the node it subscribes on.
    """

    def __init__(self, client: aioredis.Redis, url: str) -> None:
        self._client = client
        self._url = url
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues: dict[str, list[SubscriptionQueue]] = {}
        self._confirmations: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None

    @property
    def subscription_count(self) -> int:
        return sum(len(queues) for queues in self._queues.values())

    async def _confirm(self, kind: str, channel: str) -> None:
        """Send SUBSCRIBE/UNSUBSCRIBE and wait until the server acknowledges it."""
        assert self._pubsub is not None
        future = asyncio.get_running_loop().create_future()
        self._confirmations[(kind, channel)] = future
        try:
            with translate_errors(self._url, kind.upper()):
                if kind == "subscribe":
                    await self._pubsub.subscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(self._pubsub))
            await asyncio.wait_for(asyncio.shield(future), _PUBSUB_CONFIRM_S)
        except TimeoutError as exc:
            raise BackendUnavailableError(
                f"{kind.upper()} {channel!r} was not confirmed by {self._url}",
                url=self._url,
                command=kind.upper(),
            ) from exc
        finally:
            self._confirmations.pop((kind, channel), None)

    async def add(self, channel: str, queue: SubscriptionQueue) -> None:
        async with self._lock:
            if self._failure is not None:
                # The old connection failed and its subscriptions were told so;
                # a new subscription starts over on a new connection.
                await self._discard_connection()
                self._queues.clear()
                self._failure = None
            queues = self._queues.setdefault(channel, [])
            queues.append(queue)
            if len(queues) > 1:
                return
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            try:
                await self._confirm("subscribe", channel)
            except BaseException:
                queues.remove(queue)
                self._queues.pop(channel, None)
                raise

    async def remove(self, channel: str, queue: SubscriptionQueue) -> None:
        async with self._lock:
            queues = self._queues.get(channel, [])
            if queue not in queues:
                return  # a subscription of a connection that failed and was replaced
            queues.remove(queue)
            if queues:
                return
            self._queues.pop(channel, None)
            if self._pubsub is not None and self._failure is None:
                await self._confirm("unsubscribe", channel)

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                message: dict[str, Any] | None = await pubsub.get_message(
                    ignore_subscribe_messages=False, timeout=None
                )
                if message is None:
                    continue
                kind = message["type"]
                channel = decode_key(message["channel"])
                if kind == "message":
                    for queue in self._queues.get(channel, ()):
                        queue.put_nowait(message["data"])
                elif kind in ("subscribe", "unsubscribe"):
                    future = self._confirmations.get((kind, channel))
                    if future is not None and not future.done():
                        future.set_result(None)
        except asyncio.CancelledError:
            raise
        except rexc.NoPermissionError as exc:
            # An ACL refused the channel: redis-py's subscribe() only sends SUBSCRIBE,
            # the refusal is the reply this reader gets.
            self._fail(permission_denied(self._url, "SUBSCRIBE", exc), exc)
        except Exception as exc:
            failure = BackendUnavailableError(
                f"subscriber connection to {self._url} failed: {exc}",
                url=self._url,
                command="SUBSCRIBE",
            )
            self._fail(failure, exc)

    def _fail(self, failure: BackendError, cause: Exception) -> None:
        """The reader stopped: every subscription and pending confirmation gets ``failure``."""
        failure.__cause__ = cause
        self._failure = failure
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(failure)
        for future in self._confirmations.values():
            if not future.done():
                future.set_exception(failure)

    async def _discard_connection(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def aclose(self) -> None:
        await self._discard_connection()
        closed = StoreClosedError("the store was closed")
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(closed)
        self._queues.clear()


class RedisSubscription(QueueSubscription):
    """One subscription through a :class:`SubscriberHub`."""

    def __init__(self, hub: SubscriberHub, channel: str) -> None:
        super().__init__(channel)
        self._hub = hub

    async def _attach(self) -> None:
        await self._hub.add(self.channel, self.queue)

    async def _detach(self) -> None:
        await self._hub.remove(self.channel, self.queue)
