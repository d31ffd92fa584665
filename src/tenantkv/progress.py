"""Progress of a long operation, for a service (or the command line) to show.

``clear``, ``reindex``, ``verify_index`` and ``migrate_from`` take
``progress=callback``: the callback gets a :class:`Progress` after every
batch of server calls, in the task running the operation (keep it quick: it
runs between two server calls). It may raise to stop the operation, as a
Ctrl-C would; what was done so far stays done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback", "ProgressMeter"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a running operation is."""

    #: ``clear``, ``reindex``, ``verify_index`` or ``migrate_from``.
    operation: str
    #: Keys handled so far (deleted, checked, scanned).
    done: int
    #: Keys to handle in all, where known cheaply (an indexed count); else ``None``.
    total: int | None
    #: Seconds since the operation started.
    elapsed_s: float
    #: ``migrate_from``: keys moved so far.
    moved: int = 0


ProgressCallback = Callable[[Progress], None]


class ProgressMeter:
    """Counts what a running operation did, and tells its callback after each step.

    The store makes one per operation; the layer doing the steps (an
    enumerator, a key index) calls :meth:`add` with the keys each step handled.
    """

    __slots__ = ("_callback", "_operation", "_started", "done", "moved", "total")

    def __init__(
        self, operation: str, callback: ProgressCallback | None, total: int | None = None
    ) -> None:
        self._operation = operation
        self._callback = callback
        self._started = time.perf_counter()
        self.done = 0
        self.moved = 0
        self.total = total

    @property
    def wanted(self) -> bool:
        """Whether anyone listens (a total worth a server call to learn, for instance)."""
        return self._callback is not None

    def add(self, keys: int, *, moved: int = 0) -> None:
        """One step handled ``keys`` more keys (and moved ``moved`` more, for a migration)."""
        self.done += keys
        self.moved += moved
        if self._callback is not None:
            elapsed = time.perf_counter() - self._started
            self._callback(Progress(self._operation, self.done, self.total, elapsed, self.moved))
