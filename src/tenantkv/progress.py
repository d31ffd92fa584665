"""Progress of a long operation, for a service (or the command line) to show.

``clear``, ``reindex``, ``verify_index`` and ``migrate_from`` take
``progress=callback``: the callback gets a :class:`Progress` after every
batch of server calls, in the task running the operation (keep it quick: it
runs between two server calls). It may raise to stop the operation, as a
Ctrl-C would; what was done so far stays done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback"]


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
