"""Pub/sub on Redis: one subscriber connection per backend (per node on a cluster), shared.

A :class:`SubscriberHub` owns one redis-py ``PubSub`` connection and two
background tasks: a *reader* that receives messages (and the server's
confirmations) and hands them to the subscriptions' queues, and a *writer*
that makes the server's subscriptions match what the subscriptions want.

Subscribing and unsubscribing only change what is wanted, then wait for the
writer to have the server confirm it: a subscription's ``async with`` is
entered once the server has it, and left once the server has dropped it.
The writer sends one ``SUBSCRIBE`` (and one ``UNSUBSCRIBE``) for every
channel that changed since its last round trip, so many subscriptions opened
at once cost one round trip, and no lock is held while waiting for the
server. Whatever interrupts a caller (a cancellation, a timeout) cannot leave
a command half done: the caller's own work is bookkeeping, and a caller that
gives up on entering takes its channel back before it returns, so a failed or
cancelled entry leaves nothing subscribed on the server.

The connection never reconnects by itself (redis-py would silently
subscribe again, and the messages published meanwhile would be lost unseen):
when it fails, every subscription ends with
:class:`~tenantkv.errors.BackendUnavailableError`, the connection is closed,
and the next subscription starts on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable
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
    """One subscriber connection shared by all subscriptions of a backend on one server.

    ``client`` is a redis-py asyncio client of that server whose connections
    never retry a failed command (the backends make one for the hub): a
    retry would reconnect and subscribe again behind tenantkv's back.
    """

    def __init__(self, client: aioredis.Redis, url: str) -> None:
        self._client = client
        self._url = url
        #: What the subscriptions want: channel -> their queues.
        self._wanted: dict[str, list[SubscriptionQueue]] = {}
        #: Channels the server has confirmed.
        self._on_server: set[str] = set()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        #: Set when what is wanted changed; the writer wakes up on it.
        self._dirty = asyncio.Event()
        #: Resolved when the writer has made the server match what was wanted
        #: when the future was handed out (or failed trying).
        self._settled: list[asyncio.Future[None]] = []
        #: The server's confirmations the writer waits for, by (kind, channel).
        self._replies: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._failure: BaseException | None = None
        self._closed = False

    @property
    def subscription_count(self) -> int:
        return sum(len(queues) for queues in self._wanted.values())

    # -- what callers do: bookkeeping, then wait for the server ---------------
    async def add(self, channel: str, queue: SubscriptionQueue) -> None:
        """Subscribe ``queue`` to ``channel``; returns once the server has the subscription."""
        if self._failure is not None:
            self._start_over()
        queues = self._wanted.setdefault(channel, [])
        queues.append(queue)
        if channel in self._on_server:
            return
        try:
            await self._settle()
            if channel not in self._on_server:  # the writer failed
                raise self._error("SUBSCRIBE", channel)
        except BaseException:
            # Cancelled, timed out or failed: take the channel back before giving up,
            # so that nothing stays subscribed on the server for nobody.
            self._drop(channel, queue)
            with contextlib.suppress(Exception):
                await _shielded(self._settle())
            raise

    async def remove(self, channel: str, queue: SubscriptionQueue) -> None:
        """Unsubscribe ``queue``; returns once the server has dropped a channel nobody wants."""
        if not self._drop(channel, queue):
            return  # a subscription of a connection that failed and was replaced
        if channel not in self._wanted and self._failure is None:
            await _shielded(self._settle())

    def holds(self, channel: str, queue: SubscriptionQueue) -> bool:
        """Whether messages of ``channel`` still reach ``queue`` (false after a failure)."""
        return queue in self._wanted.get(channel, ())

    def _drop(self, channel: str, queue: SubscriptionQueue) -> bool:
        queues = self._wanted.get(channel)
        if queues is None or queue not in queues:
            return False
        queues.remove(queue)
        if not queues:
            del self._wanted[channel]
            self._dirty.set()
        return True

    def _settle(self) -> Awaitable[None]:
        """A future resolved once the server matches what is wanted now (at once after a
        failure: the failed connection was closed, so the server holds nothing of it)."""
        future = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_result(None)
            return future
        self._ensure_running()
        self._settled.append(future)
        self._dirty.set()
        return future

    def _error(self, command: str, channel: str) -> BaseException:
        if self._failure is not None:
            return self._failure
        return BackendUnavailableError(
            f"{command} {channel!r} was not confirmed by {self._url}",
            url=self._url,
            command=command,
        )

    # -- the connection and its two tasks ---------------------------------------
    def _ensure_running(self) -> None:
        if self._closed:
            raise StoreClosedError("the store was closed")
        if self._pubsub is None:
            self._pubsub = self._client.pubsub()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(self._pubsub))

    def _start_over(self) -> None:
        """After a failure: forget the old connection (already closed) and its state."""
        self._failure = None
        self._pubsub = None
        self._reader = self._writer = None
        self._on_server.clear()
        self._replies.clear()

    async def _write(self, pubsub: PubSub) -> None:
        """Make the server's subscriptions match ``_wanted``, one batch of changes at a time."""
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                settled, self._settled = self._settled, []
                try:
                    await self._sync(pubsub)
                finally:
                    # Done, or failed (then _fail has the error the callers raise).
                    for future in settled:
                        if not future.done():
                            future.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(pubsub, exc)

    async def _sync(self, pubsub: PubSub) -> None:
        """One round trip: SUBSCRIBE what is wanted and UNSUBSCRIBE what is not, confirmed."""
        subscribe = [c for c in self._wanted if c not in self._on_server]
        unsubscribe = [c for c in self._on_server if c not in self._wanted]
        if not (subscribe or unsubscribe):
            return
        confirmations: list[asyncio.Future[None]] = []
        if subscribe:
            confirmations += self._expect("subscribe", subscribe)
            with translate_errors(self._url, "SUBSCRIBE"):
                await pubsub.subscribe(*subscribe)
        if unsubscribe:
            confirmations += self._expect("unsubscribe", unsubscribe)
            with translate_errors(self._url, "UNSUBSCRIBE"):
                await pubsub.unsubscribe(*unsubscribe)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(pubsub))
        try:
            async with asyncio.timeout(_PUBSUB_CONFIRM_S):
                await asyncio.gather(*confirmations)
        except TimeoutError:
            raise BackendUnavailableError(
                f"SUBSCRIBE/UNSUBSCRIBE was not confirmed by {self._url} "
                f"within {_PUBSUB_CONFIRM_S:.0f} s",
                url=self._url,
                command="SUBSCRIBE",
            ) from None
        self._on_server.update(subscribe)
        self._on_server.difference_update(unsubscribe)

    def _expect(self, kind: str, channels: list[str]) -> list[asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        futures = []
        for channel in channels:
            future: asyncio.Future[None] = loop.create_future()
            self._replies.setdefault((kind, channel), deque()).append(future)
            futures.append(future)
        return futures

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
                    for queue in self._wanted.get(channel, ()):
                        queue.put_nowait(message["data"])
                elif kind in ("subscribe", "unsubscribe"):
                    waiting = self._replies.get((kind, channel))
                    if waiting:
                        future = waiting.popleft()
                        if not future.done():
                            future.set_result(None)
                        if not waiting:
                            del self._replies[(kind, channel)]
        except asyncio.CancelledError:
            raise
        except rexc.NoPermissionError as exc:
            # An ACL refused the channel: redis-py's subscribe() only sends SUBSCRIBE,
            # the refusal is the reply this reader gets.
            denied = permission_denied(self._url, "SUBSCRIBE", exc)
            denied.__cause__ = exc
            await self._fail(pubsub, denied)
        except Exception as exc:
            await self._fail(pubsub, exc)

    async def _fail(self, pubsub: PubSub, exc: Exception) -> None:
        """The connection failed: close it, and end every subscription and wait with the error."""
        if pubsub is not self._pubsub or self._failure is not None:
            return
        if isinstance(exc, BackendError):  # unavailable, or refused (PermissionDeniedError)
            failure: BaseException = exc
        else:
            failure = BackendUnavailableError(
                f"subscriber connection to {self._url} failed: {exc}",
                url=self._url,
                command="SUBSCRIBE",
            )
            failure.__cause__ = exc
        self._failure = failure
        for queues in self._wanted.values():
            for queue in queues:
                queue.put_nowait(failure)
        self._wanted.clear()
        for waiting in self._replies.values():
            for future in waiting:
                future.cancel()
        self._replies.clear()
        for future in self._settled:
            if not future.done():
                future.set_result(None)
        self._settled.clear()
        # Closing forgets the channels, so nothing can subscribe them again.
        current = asyncio.current_task()
        for task in (self._reader, self._writer):
            if task is not None and task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        self._closed = True
        tasks = [t for t in (self._reader, self._writer) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        closed = StoreClosedError("the store was closed")
        for queues in self._wanted.values():
            for queue in queues:
                queue.put_nowait(closed)
        self._wanted.clear()
        for future in self._settled:
            if not future.done():
                future.set_result(None)
        self._settled.clear()
        self._pubsub = self._reader = self._writer = None


async def _shielded(awaitable: Awaitable[None]) -> None:
    """Wait for ``awaitable`` even if this task is cancelled meanwhile (then re-raise)."""
    await asyncio.shield(awaitable)


class RedisSubscription(QueueSubscription):
    """One subscription through a :class:`SubscriberHub`."""

    def __init__(self, hub: SubscriberHub, channel: str) -> None:
        super().__init__(channel)
        self._hub = hub

    async def _attach(self) -> None:
        await self._hub.add(self.channel, self.queue)

    async def _detach(self) -> None:
        await self._hub.remove(self.channel, self.queue)

    def _held(self) -> bool:
        return self._hub.holds(self.channel, self.queue)
