"""Ctrl-C that is never lost: run a command's coroutine and remember SIGINT.

``asyncio.run`` turns the first SIGINT into a cancellation of the main task
and reports it as ``KeyboardInterrupt`` only if that cancellation comes back
out of the task. On CPython 3.11 ``asyncio.wait_for`` (used inside redis-py
when a socket timeout is set) can swallow a cancellation, so a command could
run to its end and exit 0 as if nobody had pressed Ctrl-C.

:func:`run` installs its own SIGINT handler instead: the first SIGINT is
recorded and cancels the main task; a second one raises ``KeyboardInterrupt``
at once, like Python's default. With ``insist``, the task is cancelled again
every 50 ms until it ends: the library's loops stop at the next cancellation
they see (:mod:`tenantkv.cancellation`), but one swallowed while the store was
still opening would be lost before any loop started. When the loop is done, a
recorded SIGINT raises ``KeyboardInterrupt`` whatever the task returned, which
:func:`~tenantkv.cli.errors.reported_errors` reports as ``error: interrupted``
with exit status 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

__all__ = ["SigintRecord", "recording_sigint", "run"]

T = TypeVar("T")

_RECANCEL_S = 0.05


@dataclass
class SigintRecord:
    """How many SIGINTs arrived while :func:`recording_sigint` was watching."""

    received: int = 0


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def run(main: Coroutine[Any, Any, T], *, insist: bool = False) -> T:
    """``asyncio.run(main)``, but any SIGINT meanwhile ends in ``KeyboardInterrupt``.

    With ``insist``, the first SIGINT cancels the task again every 50 ms until it
    ends: right for work with nothing to clean up (a listing, a clear), wrong
    for a coroutine whose ``finally`` must finish (the load test deletes what
    it wrote), which gets one cancellation.
    """
    if not _in_main_thread():  # signals reach the main thread only
        return asyncio.run(main)
    task: asyncio.Task[T] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    presses = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt  # pressed again: stop now, like Python's default
        if loop is not None:
            # Also wakes the loop if it is blocked in select().
            loop.call_soon_threadsafe(cancel_until_done)

    def cancel_until_done() -> None:
        # With insist, asked again every 50 ms: a cancellation swallowed inside
        # redis-py is delivered anew at the next await.
        if loop is not None and task is not None and not task.done():
            task.cancel()
            if insist:
                loop.call_later(_RECANCEL_S, cancel_until_done)

    async def watched() -> T:
        nonlocal task
        task = asyncio.current_task()
        if presses:  # SIGINT before the task existed
            raise asyncio.CancelledError
        return await main

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        # asyncio.Runner installs no handler of its own when SIGINT is not Python's default.
        with asyncio.Runner() as runner:
            loop = runner.get_loop()
            try:
                result = runner.run(watched())
            except (Exception, asyncio.CancelledError):
                if presses:  # whatever the cancellation turned into, it was Ctrl-C
                    raise KeyboardInterrupt from None
                raise
    finally:
        _restore(previous)
        main.close()  # never awaited if SIGINT came first; a no-op otherwise
    if presses:  # the cancellation was swallowed on the way (see the module's doc)
        raise KeyboardInterrupt
    return result


@contextlib.contextmanager
def recording_sigint() -> Iterator[SigintRecord]:
    """For blocking, synchronous code (a prompt): SIGINT is counted, then interrupts as usual."""
    record = SigintRecord()
    if not _in_main_thread():
        yield record
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        record.received += 1
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield record
    finally:
        _restore(previous)


def _restore(previous: Any) -> None:
    # None: the handler was not installed from Python; Python's default is the best guess.
    signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
