"""Assertions shared by the CLI and load-test tests."""

from __future__ import annotations

from typer.testing import Result


def assert_one_line_error(result: Result, *, secret: str) -> None:
    """A failed command: non-zero exit, one ``error: ...`` line, no traceback, ``secret`` unseen."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert secret not in result.output
