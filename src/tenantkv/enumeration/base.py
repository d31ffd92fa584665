"""The interface of an enumeration strategy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

__all__ = ["KeyEnumerator"]


class KeyEnumerator(Protocol):
    """Lists, counts and clears one tenant's keys without blocking the server.

    Patterns are Redis globs relative to the tenant; keys come back relative
    to the tenant. ``count`` bounds the work of each server command.
    """

    #: How it enumerates, as telemetry reports it (``scan``, ``index``).
    strategy: str

    def batches(self, pattern: str, count: int) -> AsyncIterator[list[str]]:
        """Yield the matching keys in batches; each key at most once."""
        ...

    async def count(self, pattern: str, count: int) -> int:
        """How many keys match ``pattern``."""
        ...

    async def clear(self, count: int) -> int:
        """Delete every key of the tenant in bounded batches; how many were deleted."""
        ...
