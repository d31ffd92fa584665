"""What every backend's subscription shares: messages (or the failure that ended it) on a queue."""

from __future__ import annotations

import asyncio

from ..errors import StoreClosedError

__all__ = ["QueueSubscription", "SubscriptionQueue"]

#: Where a subscription's messages arrive; an exception put there ends the
#: subscription with that error (its connection failed, its store closed).
SubscriptionQueue = asyncio.Queue[bytes | BaseException]


class QueueSubscription:
    """One channel subscription fed through a queue by its backend.

    Subclasses say how to attach the queue to the channel (:meth:`_attach`,
    which must raise if the server refuses) and how to detach it
    (:meth:`_detach`); this class is the context manager and the async
    iterator of :class:`~tenantkv.backends.base.Subscription`.
    """

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.queue: SubscriptionQueue = asyncio.Queue()
        self._entered = False
        self._attached = False

    async def _attach(self) -> None:
        raise NotImplementedError

    def _held(self) -> bool:
        """Whether the backend still delivers to this subscription's queue."""
        raise NotImplementedError

    @property
    def active(self) -> bool:
        """Entered, and still subscribed (its connection has not failed, its store is open)."""
        return self._attached and self._held()

    async def _detach(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> QueueSubscription:
        await self._attach()
        self._entered = self._attached = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._entered = False
        if self._attached:
            self._attached = False
            await self._detach()

    async def close(self, reason: BaseException) -> None:
        """End the subscription from outside (its store is closing): leave the channel now;
        a reader waiting for the next message, or asking later, gets ``reason``."""
        if self._attached:
            self._attached = False
            await self._detach()
        self.queue.put_nowait(reason)

    async def get(self, timeout: float | None) -> bytes | None:  # noqa: ASYNC109 - on purpose
        """The next message, or ``None`` after ``timeout`` seconds without one."""
        if not self._entered:
            raise StoreClosedError("the subscription is not active (use 'async with')")
        if self.queue.empty() and timeout is not None and timeout <= 0:
            return None
        try:
            async with asyncio.timeout(timeout):
                item = await self.queue.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def __aiter__(self) -> QueueSubscription:
        return self

    async def __anext__(self) -> bytes:
        if not self._entered:
            raise StoreClosedError("the subscription is not active (use 'async with')")
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item
