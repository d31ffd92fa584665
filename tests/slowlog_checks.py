"""What SLOWLOG may hold after a walk on a shared 2-vCPU machine.

A walk's commands are bounded in work (COUNT, keys per UNLINK or script), so
none should take long; but the server shares two cores with the client and
the test runner, and a command preempted mid-way shows up in SLOWLOG with the
time it waited. A real defect (an unbounded command, chunks sized wrongly)
shows up as many slow commands, or as one that carries unbounded work; a
preempted one is rare and carries a bounded amount. So: at most
:data:`PREEMPTED` entries over the threshold, each with bounded arguments and
under :data:`CEILING_US`.
"""

from __future__ import annotations

import re
from typing import Any

#: Slow entries tolerated in a run (each one a command preempted mid-way, not a long one).
PREEMPTED = 2
#: No command may take this long, preempted or not (us).
CEILING_US = 100_000
#: The most arguments a walk's command may carry (keys per UNLINK or script, plus its head).
MOST_ARGUMENTS = 10_010

_MORE = re.compile(rb"\.\.\. \((\d+) more arguments\)")


def arguments(entry: dict[str, Any]) -> int:
    """How many arguments the command had (SLOWLOG shows 32 and counts the rest)."""
    command: bytes = entry["command"]
    more = _MORE.search(command)
    shown = len(command.split(b" "))
    return shown + (int(more.group(1)) if more else 0)


def assert_only_preempted(entries: list[dict[str, Any]]) -> None:
    """SLOWLOG ``entries`` (over the server's threshold) look like preemption, not like work."""
    assert len(entries) <= PREEMPTED, entries
    for entry in entries:
        assert entry["duration"] < CEILING_US, entry
        assert arguments(entry) <= MOST_ARGUMENTS, entry
        assert not entry["command"].startswith((b"KEYS", b"FLUSH")), entry
