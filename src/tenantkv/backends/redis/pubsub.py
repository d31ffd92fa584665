"""Pub/sub on Redis: one subscriber connection per backend (per node on a cluster), shared.

A :class:`SubscriberHub` owns one redis-py ``PubSub`` connection and two
background tasks: a *reader* that receives messages (and the server's
confirmations) and hands them to the subscriptions' queues, and a *writer*
that makes the server's subscriptions match what the subscriptions want.

Subscribing and unsubscribing only change what is wanted, then wait for the
server's confirmation of the command that covers their channel: a
subscription's ``async with`` is entered once the server has it, and left
once the server has dropped it. The writer sends one ``SUBSCRIBE`` (and one
``UNSUBSCRIBE``) for every channel that changed since it last looked, so many
subscriptions opened at once share one command, and it does not wait for the
confirmations of what it sent before sending more: commands are pipelined,
and each confirmation is matched, in order, to the command of its kind and
channel (``SUBSCRIBE c``, ``UNSUBSCRIBE c``, ``SUBSCRIBE c`` may all be in
flight; an entry waits for the last ``SUBSCRIBE`` sent). No lock is held while
waiting for the server. Whatever interrupts a caller (a cancellation, a
timeout) cannot leave a command half done: the caller's own work is
bookkeeping (only the writer task sends), and a caller that gives up on
entering takes its channel back and waits for the server to have dropped it
before it returns, so a failed or cancelled entry leaves nothing subscribed
on the server.

The connection never reconnects by itself (redis-py would silently
subscribe again, and the messages published meanwhile would be lost unseen):
when it fails, or a confirmation does not come within ``_PUBSUB_CONFIRM_S``,
every subscription ends with :class:`~tenantkv.errors.BackendUnavailableError`
(or the :class:`~tenantkv.errors.PermissionDeniedError` of a refused channel),
the connection is closed, and the next subscription starts on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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


class _Reply:
    """The server's confirmation of one channel of one SUBSCRIBE or UNSUBSCRIBE (or of
    one not sent yet), and the callers waiting for it, each on a future of its own (a
    cancelled caller cancels its own future only)."""

    __slots__ = ("_waiters", "done")

    def __init__(self) -> None:
        self.done = False
        self._waiters: list[asyncio.Future[None]] = []

    def waiter(self) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        if self.done:
            future.set_result(None)
        else:
            self._waiters.append(future)
        return future

    def resolve(self) -> None:
        """Confirmed, or no longer to wait for (the connection failed, no command was needed)."""
        self.done = True
        for future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()


class _Link:
    """One subscriber connection and what was sent on it."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self.reader: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None
        #: Why the connection ended (it is closed then); what its waiters raise.
        self.failure: BaseException | None = None
        #: Channels whose last command sent was SUBSCRIBE, with its confirmation.
        self.subscribed: dict[str, _Reply] = {}
        #: Channels whose last command sent was UNSUBSCRIBE, until it is confirmed.
        self.unsubscribing: dict[str, _Reply] = {}
        #: What entries (exits) wait for that the writer has not sent yet.
        self.next_subscribe: dict[str, _Reply] = {}
        self.next_unsubscribe: dict[str, _Reply] = {}
        #: Channels whose wanting changed since the writer last looked.
        self.changed: set[str] = set()
        #: Set when ``changed`` has something (or a confirmation is due); wakes the writer.
        self.dirty = asyncio.Event()
        #: Confirmations to come, in the order the server sends them, by (kind, channel).
        self.replies: dict[tuple[str, str], deque[_Reply]] = {}
        #: Each command sent and not confirmed yet: (deadline, its last channel's reply).
        self.in_flight: deque[tuple[float, _Reply]] = deque()

    def every_reply(self) -> list[_Reply]:
        replies = [reply for waiting in self.replies.values() for reply in waiting]
        for pending in (self.next_subscribe, self.next_unsubscribe, self.unsubscribing):
            replies += pending.values()
        return replies


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
        self._link: _Link | None = None
        self._closed = False

    @property
    def subscription_count(self) -> int:
        return sum(len(queues) for queues in self._wanted.values())

    # -- what callers do: bookkeeping, then wait for the server ---------------
    async def add(self, channel: str, queue: SubscriptionQueue) -> None:
        """Subscribe ``queue`` to ``channel``; returns once the server has the subscription."""
        link = self._running_link()
        self._wanted.setdefault(channel, []).append(queue)
        reply = link.subscribed.get(channel)
        if reply is None:  # not sent yet, or UNSUBSCRIBE was sent last: the next SUBSCRIBE
            reply = link.next_subscribe.get(channel)
            if reply is None:
                reply = link.next_subscribe[channel] = _Reply()
                self._changed(link, channel)
        if reply.done:
            return
        try:
            await reply.waiter()
            if link.failure is not None:
                raise link.failure
        except BaseException:
            # Cancelled, timed out or failed: take the channel back before giving up,
            # so that nothing stays subscribed on the server for nobody.
            self._drop(channel, queue)
            with contextlib.suppress(Exception):
                await self._dropped(link, channel)
            raise

    async def remove(self, channel: str, queue: SubscriptionQueue) -> None:
        """Unsubscribe ``queue``; returns once the server has dropped a channel nobody wants."""
        link = self._link
        if self._drop(channel, queue) and link is not None:
            await self._dropped(link, channel)

    def holds(self, channel: str, queue: SubscriptionQueue) -> bool:
        """Whether messages of ``channel`` still reach ``queue`` (false after a failure)."""
        return queue in self._wanted.get(channel, ())

    def _drop(self, channel: str, queue: SubscriptionQueue) -> bool:
        """Forget ``queue``; false if it was not there (its connection failed and was replaced)."""
        queues = self._wanted.get(channel)
        if queues is None or queue not in queues:
            return False
        queues.remove(queue)
        if not queues:
            del self._wanted[channel]
            if self._link is not None:
                self._changed(self._link, channel)
        return True

    async def _dropped(self, link: _Link, channel: str) -> None:
        """Wait until the server no longer has ``channel``, unless somebody wants it (at once
        after a failure: the failed connection was closed, so the server holds nothing of it)."""
        if channel in self._wanted or link.failure is not None:
            return
        if channel in link.subscribed:  # the writer has still to send its UNSUBSCRIBE
            reply = link.next_unsubscribe.get(channel)
            if reply is None:
                reply = link.next_unsubscribe[channel] = _Reply()
                self._changed(link, channel)
        else:  # never sent, or UNSUBSCRIBE sent last (perhaps not confirmed yet)
            reply = link.unsubscribing.get(channel) or _RESOLVED
        if not reply.done:
            await reply.waiter()

    @staticmethod
    def _changed(link: _Link, channel: str) -> None:
        link.changed.add(channel)
        link.dirty.set()

    # -- the connection and its two tasks ---------------------------------------
    def _running_link(self) -> _Link:
        """The current connection (a new one after a failure), its writer running."""
        if self._closed:
            raise StoreClosedError("the store was closed")
        link = self._link
        if link is None or link.failure is not None:
            # After a failure, the old connection is closed and its state forgotten.
            link = self._link = _Link(self._client.pubsub())
            link.writer = asyncio.create_task(self._write(link))
        return link

    async def _write(self, link: _Link) -> None:
        """Make the server's subscriptions match ``_wanted``: send what changed as soon as it
        changed, without waiting for what was sent before to be confirmed."""
        pubsub = link.pubsub
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._next_change(link)
                link.dirty.clear()
                subscribe, unsubscribe = self._commands(link)
                deadline = loop.time() + _PUBSUB_CONFIRM_S
                if subscribe:
                    link.in_flight.append((deadline, link.subscribed[subscribe[-1]]))
                    with translate_errors(self._url, "SUBSCRIBE"):
                        await pubsub.subscribe(*subscribe)
                if unsubscribe:
                    link.in_flight.append(
                        (deadline, link.replies[("unsubscribe", unsubscribe[-1])][-1])
                    )
                    with translate_errors(self._url, "UNSUBSCRIBE"):
                        await pubsub.unsubscribe(*unsubscribe)
                if link.reader is None and (subscribe or unsubscribe):
                    link.reader = asyncio.create_task(self._read(link))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(link, exc)

    async def _next_change(self, link: _Link) -> None:
        """Wait for a change; raise if the oldest command in flight is not confirmed in time
        (the server confirms in order: once a command's last channel is, all earlier are)."""
        loop = asyncio.get_running_loop()
        while True:
            while link.in_flight and link.in_flight[0][1].done:
                link.in_flight.popleft()
            if link.in_flight and loop.time() >= link.in_flight[0][0]:
                raise BackendUnavailableError(
                    f"SUBSCRIBE/UNSUBSCRIBE was not confirmed by {self._url} "
                    f"within {_PUBSUB_CONFIRM_S:.0f} s",
                    url=self._url,
                    command="SUBSCRIBE",
                )
            if link.dirty.is_set():
                return
            if not link.in_flight:
                await link.dirty.wait()
                continue
            timer = loop.call_at(link.in_flight[0][0], link.dirty.set)
            try:
                await link.dirty.wait()
            finally:
                timer.cancel()

    def _commands(self, link: _Link) -> tuple[list[str], list[str]]:
        """The channels to SUBSCRIBE and UNSUBSCRIBE now, their confirmations expected."""
        subscribe: list[str] = []
        unsubscribe: list[str] = []
        changed, link.changed = link.changed, set()
        for channel in changed:
            wanted = channel in self._wanted
            if wanted and channel not in link.subscribed:
                reply = _taken(link.next_subscribe, channel)
                link.subscribed[channel] = reply
                if channel in link.unsubscribing:  # its UNSUBSCRIBE is not confirmed yet
                    del link.unsubscribing[channel]
                link.replies.setdefault(("subscribe", channel), deque()).append(reply)
                subscribe.append(channel)
            elif not wanted and channel in link.subscribed:
                reply = _taken(link.next_unsubscribe, channel)
                del link.subscribed[channel]
                link.unsubscribing[channel] = reply
                link.replies.setdefault(("unsubscribe", channel), deque()).append(reply)
                unsubscribe.append(channel)
            # What was waited for but needs no command now: a channel wanted again before
            # its UNSUBSCRIBE went out, or dropped (its entries gave up) before its SUBSCRIBE.
            for stale in (
                link.next_subscribe.pop(channel, None),
                link.next_unsubscribe.pop(channel, None),
            ):
                if stale is not None:
                    stale.resolve()
        return subscribe, unsubscribe

    async def _read(self, link: _Link) -> None:
        pubsub = link.pubsub
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
                    waiting = link.replies.get((kind, channel))
                    if waiting:
                        reply = waiting.popleft()
                        if not waiting:
                            del link.replies[(kind, channel)]
                        if link.unsubscribing.get(channel) is reply:
                            del link.unsubscribing[channel]
                        reply.resolve()
        except asyncio.CancelledError:
            raise
        except rexc.NoPermissionError as exc:
            # An ACL refused the channel: redis-py's subscribe() only sends SUBSCRIBE,
            # the refusal is the reply this reader gets.
            denied = permission_denied(self._url, "SUBSCRIBE", exc)
            denied.__cause__ = exc
            await self._fail(link, denied)
        except Exception as exc:
            await self._fail(link, exc)

    async def _fail(self, link: _Link, exc: Exception) -> None:
        """The connection failed: close it, and end every subscription and wait with the error."""
        if link.failure is not None:
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
        self._end(link, failure)
        # Closing forgets the channels, so nothing can subscribe them again.
        current = asyncio.current_task()
        for task in (link.reader, link.writer):
            if task is not None and task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await link.pubsub.aclose()  # type: ignore[no-untyped-call]

    def _end(self, link: _Link, failure: BaseException) -> None:
        """Every subscription ends with ``failure``, and every caller waiting wakes up to it."""
        link.failure = failure
        for queues in self._wanted.values():
            for queue in queues:
                queue.put_nowait(failure)
        self._wanted.clear()
        for reply in link.every_reply():
            reply.resolve()
        link.replies.clear()
        link.next_subscribe.clear()
        link.next_unsubscribe.clear()
        link.unsubscribing.clear()
        link.in_flight.clear()

    async def aclose(self) -> None:
        self._closed = True
        link, self._link = self._link, None
        if link is None:
            return
        tasks = [t for t in (link.reader, link.writer) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await link.pubsub.aclose()  # type: ignore[no-untyped-call]
        if link.failure is None:
            self._end(link, StoreClosedError("the store was closed"))


def _taken(pending: dict[str, _Reply], channel: str) -> _Reply:
    """The reply that callers already wait for on ``channel``, or a new one."""
    return pending.pop(channel, None) or _Reply()


#: A confirmation with nothing to wait for.
_RESOLVED = _Reply()
_RESOLVED.done = True


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
