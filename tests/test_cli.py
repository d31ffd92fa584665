"""The ``tenantkv`` command line, driven for real against a private redis-server.

Ops commands run through typer's CliRunner on data seeded through the
library; bad input is checked for a one-line error, a non-zero exit status
and an untouched server; the load tests run in their quick shapes (see
``test_loadtest.py`` for the load test itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import tenantkv
from tenantkv.cli.app import app
from tenantkv.cli.ops import StoreTarget

from .cli_checks import assert_one_line_error
from .servers import FixtureServer, free_port

pytestmark = pytest.mark.redis

TENANT = "shop-1"
OTHER = "shop-10"
PASSWORD = "hunter2-secret"


@pytest.fixture(scope="module")
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def seeded(server: FixtureServer) -> dict[str, str]:
    """Tenant ``shop-1`` (index on) with 120 ``order:`` and 30 ``cart:`` keys; ``shop-10`` too."""

    async def seed() -> None:
        async with tenantkv.open_store(server.url, tenant=TENANT, index=True) as store:
            await store.set_many({f"order:{i}": {"n": i} for i in range(120)})
            await store.set_many({f"cart:{i}": [i] for i in range(30)}, ttl_ms=3_600_000)
        async with tenantkv.open_store(server.url, tenant=OTHER) as other:
            await other.set_many({f"order:{i}": i for i in range(50)})

    asyncio.run(seed())
    return {"url": server.url}


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def snapshot(server: FixtureServer) -> tuple[int, set[str]]:
    """DBSIZE and every key, by SCAN."""
    with server.client() as client:
        return client.dbsize(), set(client.scan_iter(count=1000))


# -- ops commands -----------------------------------------------------------


def test_keys_streams_the_tenants_keys(seeded: dict[str, str]) -> None:
    result = invoke("keys", "--url", seeded["url"], "--tenant", TENANT)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(set(lines)) == 150
    assert set(lines) == {f"order:{i}" for i in range(120)} | {f"cart:{i}" for i in range(30)}


def test_keys_with_pattern_and_count(seeded: dict[str, str]) -> None:
    result = invoke("keys", "--url", seeded["url"], "-t", TENANT, "cart:*", "--count", "7")
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.splitlines()) == sorted(f"cart:{i}" for i in range(30))


def test_keys_prints_any_key() -> None:
    """Newlines in keys, with --null; bytes that are not UTF-8, as they are.

    A server of its own: the module's server is read back as UTF-8 by other tests.
    """
    tenant = "odd-keys"
    odd = ["line\nbreak", "caf\udce9", "é"]  # "\udce9": the lone byte 0xE9 in Redis

    async def seed(url: str) -> None:
        async with tenantkv.open_store(url, tenant=tenant) as store:
            await store.set_many(dict.fromkeys(odd, 1))

    with FixtureServer() as own:
        asyncio.run(seed(own.url))
        result = invoke("keys", "--url", own.url, "-t", tenant, "--null")
        plain = invoke("keys", "--url", own.url, "-t", tenant)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.endswith(b"\0")
    assert set(result.stdout_bytes.split(b"\0")[:-1]) == {b"line\nbreak", b"caf\xe9", "é".encode()}
    assert plain.exit_code == 0, plain.output
    assert b"caf\xe9\n" in plain.stdout_bytes


def test_count_and_stats(seeded: dict[str, str]) -> None:
    assert invoke("count", "--url", seeded["url"], "-t", TENANT).stdout.strip() == "150"
    assert invoke("count", "--url", seeded["url"], "-t", TENANT, "order:1*").stdout.strip() == "31"
    assert invoke("count", "--url", seeded["url"], "-t", OTHER).stdout.strip() == "50"
    stats = invoke("stats", "--url", seeded["url"], "-t", TENANT)
    assert stats.exit_code == 0, stats.output
    assert "keys: 150" in stats.stdout.splitlines()
    assert f"tenant: {TENANT}" in stats.stdout.splitlines()


def test_clear_asks_first_and_deletes_only_the_tenant(server: FixtureServer) -> None:
    async def seed() -> None:
        async with tenantkv.open_store(server.url, tenant="to-clear") as store:
            await store.set_many({f"k{i}": i for i in range(40)})

    asyncio.run(seed())
    before = snapshot(server)
    refused = invoke("clear", "--url", server.url, "-t", "to-clear", input="n\n")
    assert refused.exit_code == 1
    assert "Delete all 40 keys of tenant 'to-clear'" in refused.stderr  # the prompt
    assert refused.stderr.endswith("error: not confirmed; nothing was deleted\n")
    assert snapshot(server) == before
    agreed = invoke("clear", "--url", server.url, "-t", "to-clear", input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert agreed.stdout.strip().endswith("deleted 40 keys")
    assert snapshot(server)[0] == before[0] - 40
    assert invoke("count", "--url", server.url, "-t", OTHER).stdout.strip() == "50"
    again = invoke("clear", "--url", server.url, "-t", "to-clear", "--yes")
    assert again.stdout.strip() == "deleted 0 keys"


def test_verify_index_finds_drift_and_reindex_repairs_it(server: FixtureServer) -> None:
    async def seed() -> None:
        async with tenantkv.open_store(server.url, tenant="drifty", index=True) as store:
            await store.set_many({f"k{i}": i for i in range(20)})

    asyncio.run(seed())
    with server.client() as client:  # behind the store's back
        client.set(tenantkv.Namespace("drifty").key("sneaked-in"), "1")
    found = invoke("verify-index", "--url", server.url, "-t", "drifty")
    assert found.exit_code == 1, found.output
    assert "sneaked-in" in found.stdout
    assert found.stderr.startswith("error: ")
    repaired = invoke("reindex", "--url", server.url, "-t", "drifty")
    assert repaired.exit_code == 0, repaired.output
    clean = invoke("verify-index", "--url", server.url, "-t", "drifty", "--count", "5")
    assert clean.exit_code == 0, clean.output
    listed = invoke("keys", "--url", server.url + "?index=1", "-t", "drifty")
    assert "sneaked-in" in listed.stdout.splitlines()


# -- bad input --------------------------------------------------------------


def closed_port_url() -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["loadtest", "--keys", "0"], id="size-zero"),
        pytest.param(["loadtest", "--keys", "1000,-5"], id="size-negative"),
        pytest.param(["loadtest", "--keys", "lots"], id="size-not-a-number"),
        pytest.param(["loadtest", "--count", "0"], id="count-zero"),
        pytest.param(["loadtest", "--strategies", "keys,flushall"], id="unknown-strategy"),
        pytest.param(["loadtest", "--chart", "/nonexistent-dir/chart.png"], id="chart-dir"),
        pytest.param(["loadtest", "--json", "/nonexistent-dir/out.json"], id="json-dir"),
        pytest.param(["loadtest", "--noise", "-1"], id="noise-negative"),
    ],
)
def test_loadtest_bad_input(server: FixtureServer, args: list[str]) -> None:
    before = snapshot(server)
    result = invoke(*args, "--url", server.url)
    assert_one_line_error(result, secret=PASSWORD)
    assert result.exit_code == 2
    assert snapshot(server) == before


@pytest.mark.parametrize(
    "query",
    ["index=1", "shards=4", "count=50", "prefix=other", "index=0&foo=1"],
)
def test_loadtest_refuses_store_options_in_its_url(server: FixtureServer, query: str) -> None:
    """The load test opens plain and indexed stores itself: ?index=1 must not change them."""
    before = snapshot(server)
    url = server.url.replace("redis://", f"redis://:{PASSWORD}@") + "?" + query
    result = invoke("loadtest", "--quick", "--url", url)
    assert_one_line_error(result, secret=PASSWORD)
    assert result.exit_code == 2
    assert "store options" in result.stderr
    assert query.split("=")[0] + "=" in result.stderr
    assert snapshot(server) == before


@pytest.mark.parametrize("url", ["memory://", "memory://x", "mongodb://localhost/0", "redis://h:x"])
def test_loadtest_url_that_is_not_redis_is_bad_input(url: str) -> None:
    result = invoke("loadtest", "--quick", "--url", url)
    assert_one_line_error(result, secret=PASSWORD)
    assert result.exit_code == 2


def test_loadtest_url_with_a_misspelt_option_is_bad_input(server: FixtureServer) -> None:
    url = server.url.replace("redis://", f"redis://:{PASSWORD}@") + "?socket_timout=1"
    result = invoke("loadtest", "--quick", "--url", url)
    assert_one_line_error(result, secret=PASSWORD)
    assert result.exit_code == 2
    assert "did you mean 'socket_timeout'" in result.stderr


def test_loadtest_unreachable_url_hides_the_password() -> None:
    result = invoke("loadtest", "--quick", "--url", closed_port_url())
    assert_one_line_error(result, secret=PASSWORD)
    assert "***" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"rediss://127.0.0.1:{free_port()}/0?ssl_password={PASSWORD}",
        f"redis://127.0.0.1:{free_port()}/0?passwd={PASSWORD}",
        f"redis://:ab/{PASSWORD}@127.0.0.1:{free_port()}/0",
        f"redis://:{PASSWORD}@127.0.0.1:notaport/0",
    ],
    ids=["ssl_password", "misspelt-passwd", "unencoded-slash", "bad-port"],
)
@pytest.mark.parametrize("command", ["keys", "stats", "loadtest"])
def test_no_secret_of_a_url_is_ever_printed(command: str, url: str) -> None:
    args = ["loadtest", "--quick", "--url", url] if command == "loadtest" else [command]
    if command != "loadtest":
        args += ["--url", url, "-t", TENANT]
    result = invoke(*args)
    assert_one_line_error(result, secret=PASSWORD)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@127.0.0.1:1/0",
        f"redis://127.0.0.1:1/0?ssl_password={PASSWORD}",
        f"redis://:ab/{PASSWORD}@127.0.0.1:1/0",
    ],
    ids=["password", "ssl_password", "unencoded-slash"],
)
def test_the_target_of_an_ops_command_never_shows_its_password(url: str) -> None:
    # A traceback or a log line of the CLI shows the target's repr.
    shown = repr(StoreTarget(url=url, tenant=TENANT, index=True))
    assert PASSWORD not in shown
    assert TENANT in shown
    assert "index=True" in shown


@pytest.mark.parametrize("command", ["keys", "count", "stats", "clear", "verify-index"])
def test_ops_unreachable_url(command: str) -> None:
    extra = ["--yes"] if command == "clear" else []
    result = invoke(command, "--url", closed_port_url(), "-t", TENANT, *extra)
    assert_one_line_error(result, secret=PASSWORD)


@pytest.mark.parametrize(
    ("args", "status"),
    [
        pytest.param(["--tenant", "a*b"], 2, id="bad-tenant"),
        pytest.param(["--tenant", TENANT, "--prefix", "no spaces"], 2, id="bad-prefix"),
        pytest.param(["--tenant", TENANT, "--count", "0"], 2, id="bad-count"),
    ],
)
def test_ops_bad_input(seeded: dict[str, str], args: list[str], status: int) -> None:
    result = invoke("keys", "--url", seeded["url"], *args)
    assert_one_line_error(result, secret=PASSWORD)
    assert result.exit_code == status


def test_ops_unknown_scheme() -> None:
    result = invoke("count", "--url", "mongodb://localhost/0", "-t", TENANT)
    assert_one_line_error(result, secret=PASSWORD)


def test_console_script_has_no_traceback_even_for_usage_errors(server: FixtureServer) -> None:
    """The real entry point (not the test runner) turns typer's usage errors into one line too."""
    code = "from tenantkv.cli.app import main; main()"
    for args in (
        ["loadtest", "--no-such-option"],
        ["count", "--url", closed_port_url(), "-t", "x"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("error: ")
        assert PASSWORD not in done.stderr


def test_no_arguments_prints_the_help_and_no_empty_error() -> None:
    code = "from tenantkv.cli.app import main; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Usage: tenantkv" in done.stdout + done.stderr
    assert "loadtest" in done.stdout + done.stderr
    assert "error:" not in done.stdout + done.stderr


def test_loadtest_help_at_80_columns_shows_every_option_whole() -> None:
    result = CliRunner().invoke(app, ["loadtest", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert "<bool>" not in text
    for name in (
        "--compare-standalone / --no-compare-standalone",
        "--slowlog-threshold-us",
        "--probe-interval-ms",
        "--allow-nonempty",
        "--clear / --no-clear",
    ):
        assert name in text, name
    for flag in ("--cluster", "--quick", "--allow-nonempty"):
        [line] = [ln for ln in text.splitlines() if ln.strip().startswith(flag + " ")]
        assert line.split()[1][0].isupper(), line  # the help text, not a value's type
    assert "needs 1" not in text  # --shards works with the index too


def test_loadtest_refuses_a_nonempty_database(
    server: FixtureServer, seeded: dict[str, str]
) -> None:
    before = snapshot(server)
    result = invoke("loadtest", "--quick", "--url", server.url)
    assert_one_line_error(result, secret=PASSWORD)
    assert "--allow-nonempty" in result.stderr
    assert snapshot(server) == before


def test_loadtest_refuses_its_prefix_in_use(server: FixtureServer, seeded: dict[str, str]) -> None:
    before = snapshot(server)
    result = invoke(
        "loadtest", "--quick", "--url", server.url, "--allow-nonempty", "--prefix", "tkv"
    )
    assert_one_line_error(result, secret=PASSWORD)
    assert snapshot(server) == before


def test_paths_are_checked_before_the_server_is_touched(tmp_path: Path) -> None:
    result = invoke("loadtest", "--chart", str(tmp_path / "chart.svg"))
    assert_one_line_error(result, secret=PASSWORD)


# -- Ctrl-C -------------------------------------------------------------------

BIG_TENANT = "big"
BIG_KEYS = 20_000


@pytest.fixture
def big_server() -> Iterator[FixtureServer]:
    """A private server whose tenant ``big`` holds 20,000 keys (fresh for each test)."""
    with FixtureServer() as srv:
        with srv.client() as client:
            pipe = client.pipeline(transaction=False)
            namespace = tenantkv.Namespace(BIG_TENANT)
            for i in range(BIG_KEYS):
                pipe.set(namespace.key(f"k{i}"), i)
            pipe.execute()
        yield srv


@contextlib.contextmanager
def cli_process(*args: str, **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """The real console entry point as a child process, killed if it is still running after."""
    code = "from tenantkv.cli.app import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def interrupt_cli(server: FixtureServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI; send SIGINT once it is talking to ``server``."""
    with cli_process(*args, text=True) as proc:
        with server.client() as client:
            deadline = time.monotonic() + 30
            # Our own connection is one client; the command's is the other.
            while len(client.client_list()) < 2 and proc.poll() is None:
                assert time.monotonic() < deadline, "the command never connected"
                time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["count", "--count", "10"], id="count"),
        pytest.param(["clear", "--yes", "--count", "10"], id="clear"),
        pytest.param(["keys", "--count", "10"], id="keys"),
    ],
)
@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_exits_130(big_server: FixtureServer, args: list[str], attempt: int) -> None:
    """SIGINT always ends in exit status 130, even when asyncio swallowed the cancellation."""
    command, *options = args
    done = interrupt_cli(big_server, command, "--url", big_server.url, "-t", BIG_TENANT, *options)
    assert done.returncode == 130, (done.returncode, done.stdout[-300:], done.stderr)
    assert done.stderr.splitlines()[-1:] == ["error: interrupted"], done.stderr
    assert "Traceback" not in done.stderr
    if command == "count":
        assert done.stdout == ""  # no half-made count
    if command == "clear":
        # It stopped deleting: at 10 keys per call, 20,000 keys take far longer than a Ctrl-C.
        with big_server.client() as client:
            assert client.dbsize() > 0


def test_ctrl_c_at_the_clear_prompt_exits_130_and_deletes_nothing(
    big_server: FixtureServer,
) -> None:
    args = ["clear", "--url", big_server.url, "-t", BIG_TENANT]
    with cli_process(*args, stdin=subprocess.PIPE) as proc:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"Delete all" not in seen:  # the question, without a newline
            assert proc.poll() is None, seen
            assert time.monotonic() < deadline, seen
            if select.select([proc.stderr], [], [], 0.1)[0]:
                seen += os.read(proc.stderr.fileno(), 4096)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (seen + stderr).decode()
    assert (seen + stderr).decode().rstrip().endswith("error: interrupted")
    assert stdout.strip() == b""  # (click prompts with input(" "))
    with big_server.client() as client:
        assert client.dbsize() == BIG_KEYS
