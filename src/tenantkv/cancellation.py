"""Cancellation that a server call, or a long loop of them, does not lose.

On Python 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives
while the call it wraps has just completed (CPython gh-86296; 3.12 rebuilt
``wait_for`` on ``asyncio.timeout``). redis-py wraps every send in it when a
``socket_timeout`` is set, so a ``task.cancel()`` (or ``asyncio.timeout``,
or Ctrl-C) was lost most of the time: the call, and the code after it, ran
on. The task still counts the request (:meth:`asyncio.Task.cancelling`), so
every Redis command checks it when it completes (the error translation of
``tenantkv.backends.redis.errors``, and the cluster walk's own node
commands), and loops check it between server calls.

A loop sees only requests made after it started: one swallowed before (say,
while the store was opening) looks the same as cleanup code running under a
cancellation, which must be left to run. On 3.11 a caller who must stop
whatever happens cancels again until the task ends (the CLI does).
"""

from __future__ import annotations

import asyncio

__all__ = ["CancellationCheck"]


class CancellationCheck:
    """Create it where a loop starts; call it between steps.

    A call raises :class:`asyncio.CancelledError` if the running task has been
    asked to cancel since the check was made (a loop started by cleanup code
    that is itself handling a cancellation runs on, until asked again).
    """

    __slots__ = ("_baseline", "_task")

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self._baseline = 0 if self._task is None else self._task.cancelling()

    def __call__(self) -> None:
        if self._task is not None and self._task.cancelling() > self._baseline:
            raise asyncio.CancelledError
