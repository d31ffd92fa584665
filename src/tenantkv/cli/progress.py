"""A progress display on stderr for the long ops commands, when stderr is a terminal.

Through a pipe or into a file the commands stay quiet (their output is for
machines: one key per line, or the ``--json`` report); on a terminal they
show keys done, the rate and the elapsed time, and the total where the
library knows it cheaply (then a bar and the share done).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

import tenantkv

__all__ = ["Display", "progress_display"]


class _RateColumn(ProgressColumn):
    """Keys per second, as rich measures it over the last updates."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("" if speed is None else f"{speed:,.0f} keys/s")


class Display:
    """Feeds a progress bar from the library's :class:`tenantkv.Progress` callbacks
    (or does nothing, when stderr is not a terminal)."""

    def __init__(self, bar: Progress | None, description: str) -> None:
        self._bar = bar
        self._task = None if bar is None else bar.add_task(description, total=None)

    def __call__(self, progress: tenantkv.Progress) -> None:
        self.update(progress.done, progress.total)

    def update(self, done: int, total: int | None = None) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def progress_display(description: str, *, stream: TextIO | None = None) -> Iterator[Display]:
    """A :class:`Display`: a live bar on ``stream`` (stderr) if it is a terminal, else none."""
    target = sys.stderr if stream is None else stream
    if not _is_terminal(target):
        yield Display(None, description)
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=Console(file=target, highlight=False),
        refresh_per_second=8,
        # Leave stdout alone: it carries the command's output (keys, the --json report),
        # which must not be routed to the terminal the bar is drawn on.
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with bar:
        yield Display(bar, description)
