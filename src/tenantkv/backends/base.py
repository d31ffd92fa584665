"""The narrow interface every backend implements.

A backend sees physical keys (the tenant namespace is already applied) and
encoded payloads (``bytes``); it does I/O and translates its own failures
into :mod:`tenantkv.errors`. Validation, namespacing, encoding and
de-duplication belong to :class:`tenantkv.store.TenantStore`, not here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from ..errors import StoreClosedError

__all__ = ["Backend", "BackendBase", "Subscription"]


@runtime_checkable
class Subscription(Protocol):
    """One channel subscription: an async context manager and async iterator of payloads.

    Entering it subscribes (raising if the server refuses); leaving it
    unsubscribes, when it was the last local subscription of that channel.
    """

    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...


class Backend(Protocol):
    """Storage operations on physical keys, with Redis semantics."""

    @property
    def url(self) -> str:
        """The backend's URL with any password removed."""
        ...

    @property
    def subscription_count(self) -> int:
        """Subscriptions currently open through this backend."""
        ...

    async def ping(self) -> None:
        """Check that the backend answers; raise ``BackendUnavailableError`` if not."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values of ``keys`` in order, in one round trip."""
        ...

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        """Store ``value``; with ``ttl_ms`` the key expires, set in the same command."""

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """Store all ``items`` in one round trip, all or none."""

    async def delete(self, key: str) -> bool: ...

    async def exists(self, key: str) -> bool: ...

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        """Set a key's time to live; false when the key does not exist."""
        ...

    async def get_ttl(self, key: str) -> int | None:
        """Remaining time to live in ms; ``None`` when missing or without TTL."""
        ...

    async def list_push(self, key: str, value: bytes) -> int:
        """Append to the list at ``key`` (created if missing); the new length."""
        ...

    async def list_range(self, key: str, start: int, stop: int) -> list[bytes]:
        """``LRANGE`` semantics: inclusive ``stop``, negative indexes from the end."""
        ...

    async def list_length(self, key: str) -> int: ...

    async def publish(self, channel: str, data: bytes) -> int:
        """Send ``data`` on ``channel``; the number of subscriber connections reached."""
        ...

    def subscribe(self, channel: str) -> Subscription: ...

    def scan(self, match: str, count: int) -> AsyncIterator[list[str]]:
        """Walk the keyspace with a cursor, yielding each page of keys matching ``match``.

        Every key present for the whole walk is yielded at least once; a key
        may repeat and a page may be empty. No single call may block the
        server for longer than visiting about ``count`` keys.
        """
        ...

    async def unlink(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (memory reclaimed in the background); how many existed."""
        ...

    async def aclose(self) -> None: ...


class BackendBase:
    """What every backend class shares: its redacted URL and the closed check each call makes."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._closed = False

    @property
    def url(self) -> str:
        """The backend's URL with any password removed."""
        return self._url

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the backend for {self._url} is closed")
