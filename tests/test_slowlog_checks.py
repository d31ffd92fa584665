"""The SLOWLOG rule of the walk tests lets preemption through, and nothing else."""

from __future__ import annotations

import pytest

from .slowlog_checks import assert_only_preempted


def entry(duration: int, command: bytes = b"SCAN 0 MATCH x* COUNT 500") -> dict[str, object]:
    return {"duration": duration, "command": command}


def test_a_preempted_command_or_two_pass() -> None:
    assert_only_preempted([])
    assert_only_preempted([entry(11_000), entry(31_000)])


@pytest.mark.parametrize(
    "entries",
    [
        [entry(11_000), entry(12_000), entry(13_000)],  # many: the commands are long
        [entry(150_000)],  # far too long for preemption
        [entry(11_000, b"UNLINK k1 k2 ... (20000 more arguments)")],  # unbounded work
        [entry(11_000, b"KEYS tkv:{t}:*")],
    ],
    ids=["many", "too-long", "unbounded", "keys"],
)
def test_long_commands_fail(entries: list[dict[str, object]]) -> None:
    with pytest.raises(AssertionError):
        assert_only_preempted(entries)
