"""The interface of an enumeration strategy."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from ..progress import ProgressMeter

__all__ = ["KeyEnumerator"]


class KeyEnumerator(Protocol):
    """Lists, counts and clears one tenant's keys without blocking the server.

    Patterns are Redis globs relative to the tenant; keys come back relative
    to the tenant. Each server command stays within the strategy's time
    budget (:mod:`tenantkv.pacing`) and visits at most ``count`` keys
    (``None``: as many as the budget allows).
    """

    #: How it enumerates, as telemetry reports it (``scan``, ``index``).
    strategy: str

    @property
    def budget_ms(self) -> float:
        """Target server time of each of its commands, in ms."""
        ...

    def batches(self, pattern: str, count: int | None) -> AsyncGenerator[list[str], None]:
        """Yield the matching keys in batches; each key at most once."""
        ...

    async def count(self, pattern: str, count: int | None) -> int:
        """How many keys match ``pattern``."""
        ...

    async def clear(self, count: int | None, meter: ProgressMeter | None = None) -> int:
        """Delete every key of the tenant in bounded batches; how many were deleted.

        ``meter`` hears of the keys each batch deleted (and of the total, where
        the strategy knows it cheaply, if anyone listens).
        """
        ...
