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

    async def _attach(self) -> None:
        raise NotImplementedError

    async def _detach(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> QueueSubscription:
        await self._attach()
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._entered:
            self._entered = False
            await self._detach()

    def __aiter__(self) -> QueueSubscription:
        return self

    async def __anext__(self) -> bytes:
        if not self._entered:
            raise StoreClosedError("the subscription is not active (use 'async with')")
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item
