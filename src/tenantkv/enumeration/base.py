"""The interface of an enumeration strategy."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

__all__ = ["KeyEnumerator"]


class KeyEnumerator(Protocol):
    """Lists, counts and clears one tenant's keys without blocking the server.

    Patterns are Redis globs relative to the tenant; keys come back relative
    to the tenant. Each server command stays within the strategy's time
    budget (:mod:`tenantkv.pacing`) and visits at most ``count`` keys
    (``None``: as many as the budget allows).
    """

    def batches(self, pattern: str, count: int | None) -> AsyncGenerator[list[str], None]:
        """Yield the matching keys in batches; each key at most once."""
        ...

    async def count(self, pattern: str, count: int | None) -> int:
        """How many keys match ``pattern``."""
        ...

    async def clear(self, count: int | None) -> int:
        """Delete every key of the tenant in bounded batches; how many were deleted."""
        ...
