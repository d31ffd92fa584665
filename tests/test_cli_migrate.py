"""``tenantkv migrate``, ``inspect`` and the ops commands' progress and ``--json`` reports."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from typer.testing import CliRunner

from tenantkv.cli.app import app

from .conftest import new_tenant
from .servers import FixtureServer

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


def seed_old_layout(server: FixtureServer, tenant: str, n: int) -> str:
    prefix = f"tenant:{tenant}:"
    with redis.Redis(host=server.host, port=server.port) as raw:
        pipe = raw.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"{prefix}search:{i:05d}", json.dumps({"txn": i}), px=1_800_000)
            pipe.rpush(f"{prefix}search:{i:05d}:responses", json.dumps({"bpp": i}))
        pipe.set(f"{prefix}broken", "not json")
        pipe.execute()
    return prefix


def test_migrate_through_a_pipe_prints_a_json_report_and_no_progress(
    server: FixtureServer,
) -> None:
    tenant = new_tenant("buyer.example")
    old = seed_old_layout(server, tenant, 3000)
    args = ["migrate", "--url", server.url, "-t", tenant, "--from", old, "--json"]
    done = subprocess.run(
        [sys.executable, "-c", "from tenantkv.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # one key was left behind: exit status 1
    report = json.loads(done.stdout)
    assert report["moved"] == 6000
    assert report["not_json"] == [f"{old}broken"]
    assert report["duration_s"] > 0
    # Not a terminal: nothing but the one error line on stderr.
    assert done.stderr.strip().splitlines() == [
        "error: 1 keys were left behind (conflicts, not JSON, other types, or still "
        "changing): see the report"
    ]
    again = CliRunner().invoke(app, [*args[:-1], "--dry-run", "--json"])
    assert json.loads(again.stdout)["moved"] == 0


def run_in_terminal(args: list[str]) -> tuple[str, str]:
    """Run the CLI with stderr on a pseudo-terminal: what the terminal showed, and stdout."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tenantkv.cli.app import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the child closed its end
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
    return shown.decode("utf-8", "replace"), out.decode()


def test_migrate_in_a_terminal_shows_its_progress(server: FixtureServer) -> None:
    tenant = new_tenant("buyer.example")
    old = seed_old_layout(server, tenant, 20_000)
    args = ["migrate", "--url", server.url, "-t", tenant, "--from", old, "--count", "500"]
    shown, out = run_in_terminal(args)
    assert "migrate" in shown
    assert "keys/s" in shown
    assert "moved: 40000" in out


def test_a_json_report_goes_to_stdout_while_the_terminal_shows_progress(
    server: FixtureServer,
) -> None:
    """`tenantkv migrate --json > report.json` in a terminal: the bar on the terminal, the
    report in the file, and not the other way round."""
    tenant = new_tenant("buyer.example")
    old = seed_old_layout(server, tenant, 5_000)
    args = ["migrate", "--url", server.url, "-t", tenant, "--from", old, "--count", "200"]
    shown, out = run_in_terminal([*args, "--json"])
    assert "keys/s" in shown
    assert '"moved"' not in shown
    assert json.loads(out)["moved"] == 10_000


def test_reindex_verify_and_clear_in_a_terminal_show_their_progress(
    server: FixtureServer,
) -> None:
    tenant = new_tenant()
    with redis.Redis(host=server.host, port=server.port) as raw:
        pipe = raw.pipeline(transaction=False)
        for i in range(20_000):
            pipe.set(f"tkv:{{{tenant}}}:k{i}", json.dumps(i))
        pipe.execute()
    base = ["--url", server.url + "?index=1", "-t", tenant, "--count", "500"]
    shown, out = run_in_terminal(["reindex", *base])
    assert "reindex" in shown
    assert "keys/s" in shown
    assert "missing_count: 20000" in out
    shown, out = run_in_terminal(["verify-index", *base])
    assert "verify-index" in shown
    assert "keys/s" in shown
    assert "missing_count: 0" in out
    assert "stale_count: 0" in out
    shown, out = run_in_terminal(["clear", *base, "--yes"])
    # The indexed count is the total: a bar that ends full.
    assert "clear" in shown
    assert "20000/20000" in shown.replace(",", "")
    assert "deleted 20000 keys" in out


def test_inspect_shows_one_key(server: FixtureServer) -> None:
    tenant = new_tenant()
    with redis.Redis(host=server.host, port=server.port) as raw:
        raw.set(f"tkv:{{{tenant}}}:search:t1", json.dumps({"status": "open"}), px=60_000)
        raw.rpush(f"tkv:{{{tenant}}}:search:t1:responses", *(json.dumps(i) for i in range(25)))
        raw.set(f"tkv:{{{tenant}}}:raw", b"\xff not json")
    base = ["inspect", "--url", server.url, "-t", tenant]
    value = CliRunner().invoke(app, [*base, "search:t1"])
    assert value.exit_code == 0, value.output
    assert "type: value" in value.stdout
    assert '"status": "open"' in value.stdout
    assert "ttl: " in value.stdout
    assert "ms" in value.stdout
    listed = CliRunner().invoke(app, [*base, "search:t1:responses", "--items", "3"])
    assert "length: 25 items" in listed.stdout
    assert "[2] 2" in listed.stdout
    assert "... 22 more" in listed.stdout
    raw_value = CliRunner().invoke(app, [*base, "raw", "--json"])
    info = json.loads(raw_value.stdout)
    assert (info["kind"], info["json"]) == ("value", False)
    missing = CliRunner().invoke(app, [*base, "nothing"])
    assert "type: missing" in missing.stdout


def test_clear_reindex_and_verify_index_print_json_reports(server: FixtureServer) -> None:
    tenant = new_tenant()
    with redis.Redis(host=server.host, port=server.port) as raw:
        for i in range(50):
            raw.set(f"tkv:{{{tenant}}}:k{i}", json.dumps(i))
    url = server.url + "?index=1"
    reindexed = CliRunner().invoke(app, ["reindex", "--url", url, "-t", tenant, "--json"])
    assert json.loads(reindexed.stdout)["missing_count"] == 50
    verified = CliRunner().invoke(app, ["verify-index", "--url", url, "-t", tenant, "--json"])
    assert verified.exit_code == 0
    assert json.loads(verified.stdout)["index_entries"] == 50
    cleared = CliRunner().invoke(app, ["clear", "--url", url, "-t", tenant, "--yes", "--json"])
    assert json.loads(cleared.stdout)["deleted"] == 50
