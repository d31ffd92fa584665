"""``tenantkv loadtest`` end to end: the quick run CI uses, and a run on a shared database.

The cluster tests run the load test on a private Redis Cluster next to a
private standalone server (``--cluster``), and on the session's cluster by
URL with a sharded tenant; bad cluster options give a one-line error.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tenantkv.cli.app import app
from tenantkv.cli.loadtest.dataset import DistinctCounter, index_of, key_of
from tenantkv.cli.loadtest.report import print_table
from tenantkv.cli.loadtest.results import (
    LatencyStats,
    LoadtestResult,
    Measurement,
    Scenario,
    ServerView,
)

from .cli_checks import assert_one_line_error
from .servers import FixtureCluster, FixtureServer, ServerKind, free_port

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def expected_strategies() -> set[str]:
    return {"keys", "scan", "scan_iter", "index", "keys+del", "clear", "clear-index"}


def test_dataset_keys_map_back_to_their_index() -> None:
    for i in range(2_000):
        assert index_of(key_of(i)) == i
    counter = DistinctCounter(8)
    for key in [key_of(1), key_of(1), "search:elsewhere", key_of(9)]:
        counter.add(key)
    assert (counter.distinct, counter.duplicates, counter.foreign) == (1, 1, 2)
    assert not counter.complete


@pytest.mark.redis
def test_quick_loadtest_on_a_private_server(tmp_path: Path) -> None:
    out, chart = tmp_path / "quick.json", tmp_path / "quick.png"
    result = CliRunner().invoke(
        app, ["loadtest", "--quick", "--json", str(out), "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "KEYS (baseline)" in result.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["correct"] is True
    assert data["environment"]["redis_version"]
    assert data["environment"]["cpu_count"]
    assert [s["tenant_keys"] for s in data["scenarios"]] == [2_000, 20_000]
    for scenario in data["scenarios"]:
        assert scenario["keyspace_keys"] >= scenario["tenant_keys"] + 20_000
        assert scenario["idle_probe"]["samples"] > 100
        strategies = {m["strategy"] for m in scenario["measurements"]}
        assert strategies == expected_strategies()
        counts = {m["count"] for m in scenario["measurements"] if m["strategy"] == "scan"}
        assert counts == {100, 1000}
        for m in scenario["measurements"]:
            assert m["correct"], m["problem"]
            assert m["found"] == m["expected"] == scenario["tenant_keys"]
            assert m["foreign"] == 0
            assert m["wall_ms"] > 0
            assert m["probe"]["samples"] > 0
            assert m["timeline"]
        keys = next(m for m in scenario["measurements"] if m["strategy"] == "keys")
        assert keys["baseline"] is True
        assert keys["server"]["command"] == "KEYS"
    assert data["cleanup"]["leftovers_removed"] == 0
    assert data["cleanup"]["dbsize_after"] == 0
    png = chart.read_bytes()
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 20_000


@pytest.fixture
def shared_server() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.mark.redis
def test_loadtest_leaves_a_shared_database_as_it_found_it(shared_server: FixtureServer) -> None:
    with shared_server.client() as client:
        for i in range(300):
            client.set(f"app:user:{i}", i)
        client.rpush("app:queue", "a", "b")
        client.set("tkv:{someone}:x", "1", px=3_600_000)
        client.config_set("slowlog-log-slower-than", 12345)
        client.config_set("slowlog-max-len", 77)
        before = (client.dbsize(), sorted(client.scan_iter(count=1000)))
        before_ttl = client.pttl("tkv:{someone}:x")
    result = CliRunner().invoke(
        app,
        [
            "loadtest",
            "--url",
            shared_server.url,
            "--allow-nonempty",
            "--keys",
            "300,1200",
            "--noise",
            "400",
            "--count",
            "50",
            "--repeat",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    with shared_server.client() as client:
        after = (client.dbsize(), sorted(client.scan_iter(count=1000)))
        assert after == before
        assert client.get("app:user:7") == "7"
        assert client.lrange("app:queue", 0, -1) == ["a", "b"]
        assert 0 < client.pttl("tkv:{someone}:x") <= before_ttl
        assert client.config_get("slowlog-log-slower-than") == {"slowlog-log-slower-than": "12345"}
        assert client.config_get("slowlog-max-len") == {"slowlog-max-len": "77"}


# -- Redis Cluster -------------------------------------------------------------


def check_measurements(scenario: dict[str, Any], listing: set[str], clearing: set[str]) -> None:
    strategies = {m["strategy"] for m in scenario["measurements"]}
    assert strategies == listing | clearing
    for m in scenario["measurements"]:
        assert m["correct"], m["problem"]
        assert m["found"] == m["expected"] == scenario["tenant_keys"]
        assert m["foreign"] == 0
        assert m["probe"]["samples"] > 0


@pytest.mark.cluster
def test_quick_loadtest_on_a_private_cluster_next_to_a_standalone_server(tmp_path: Path) -> None:
    out, chart = tmp_path / "cluster.json", tmp_path / "cluster.png"
    result = CliRunner().invoke(
        app,
        [
            *("loadtest", "--quick", "--cluster", "--keys", "1000,4000", "--noise", "4000"),
            *("--json", str(out), "--chart", str(chart)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "KEYS on all 3 primaries (baseline)" in result.stdout
    assert "KEYS (baseline)" in result.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["correct"] is True
    assert data["config"]["cluster"] is True
    assert data["config"]["compare_standalone"] is True
    cluster_env = data["environment"]["targets"]["cluster"]
    assert cluster_env["redis_mode"] == "cluster"
    assert cluster_env["cluster"]["primaries"] == 3
    assert cluster_env["cluster"]["replicas"] == 3
    assert data["environment"]["targets"]["standalone"]["redis_mode"] == "standalone"
    assert [(s["tenant_keys"], s["target"]) for s in data["scenarios"]] == [
        (1_000, "standalone"),
        (1_000, "cluster"),
        (4_000, "standalone"),
        (4_000, "cluster"),
    ]
    standalone_keys, cluster_keys = (
        [s["keyspace_keys"] for s in data["scenarios"] if s["target"] == target]
        for target in ("standalone", "cluster")
    )
    # The same data in both, but one probe key per primary instead of one.
    assert [c - s for s, c in zip(standalone_keys, cluster_keys, strict=True)] == [2, 2]
    for scenario in data["scenarios"]:
        assert scenario["keyspace_keys"] >= scenario["tenant_keys"] + 4_000
        check_measurements(scenario, *split(expected_strategies()))
        keys = next(m for m in scenario["measurements"] if m["strategy"] == "keys")
        assert keys["baseline"] is True
        assert keys["server"]["command"] == "KEYS"
    assert data["cleanup"]["leftovers_removed"] == 0
    assert data["cleanup"]["dbsize_after"] == 0
    assert set(data["cleanup"]["targets"]) == {"standalone", "cluster"}
    assert chart.read_bytes().startswith(PNG_MAGIC)


def split(strategies: set[str]) -> tuple[set[str], set[str]]:
    clearing = {"keys+del", "clear", "clear-index"}
    return strategies - clearing, strategies & clearing


@pytest.mark.cluster
def test_loadtest_on_a_cluster_url_with_a_sharded_tenant(
    redis_cluster: FixtureCluster, tmp_path: Path
) -> None:
    primaries = redis_cluster.primaries()

    def state() -> list[tuple[int, str, str]]:
        out = []
        for node in primaries:
            with node.client() as client:
                config = client.config_get("slowlog-*")
                out.append(
                    (
                        client.dbsize(),
                        config["slowlog-log-slower-than"],
                        config["slowlog-max-len"],
                    )
                )
        return out

    before = state()
    out = tmp_path / "sharded.json"
    args = ["loadtest", "--url", redis_cluster.url, "--allow-nonempty", "--shards", "6"]
    args += ["--keys", "800", "--noise", "300", "--count", "50", "--repeat", "1"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "SCAN COUNT 50 (3 primaries)" in result.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["correct"] is True
    assert data["config"]["compare_standalone"] is False
    assert data["config"]["shards"] == 6
    [scenario] = data["scenarios"]
    assert scenario["target"] == "cluster"
    check_measurements(scenario, *split(expected_strategies()))
    assert data["cleanup"]["leftovers_removed"] == 0
    assert state() == before


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["--url", f"redis+cluster://:secret@127.0.0.1:{free_port()}"], id="unreachable"
        ),
        pytest.param(["--url", "redis+cluster://127.0.0.1:notaport"], id="bad-port"),
        pytest.param(["--url", "redis+cluster://127.0.0.1:7000/3"], id="database"),
        pytest.param(["--cluster", "--url", "redis://127.0.0.1:6379/0"], id="not-a-cluster"),
        pytest.param(["--compare-standalone"], id="compare-without-cluster"),
        pytest.param(["--cluster", "--shards", "0"], id="shards-zero"),
        pytest.param(["--cluster", "--shards", "101"], id="shards-too-many"),
    ],
)
def test_loadtest_bad_cluster_input(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["loadtest", "--quick", *args])
    assert_one_line_error(result, secret="secret")


# -- other servers ---------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.matrix
def test_quick_loadtest_with_server_names_the_real_server(
    server_kind: ServerKind, redis_cluster: FixtureCluster, tmp_path: Path
) -> None:
    """``--server PATH``: the private cluster and standalone server run that binary, and
    the table and JSON name the server and its real version (Valkey's, not 7.2.4)."""
    out = tmp_path / "server.json"
    args = ["loadtest", "--quick", "--cluster", "--server", server_kind.binary]
    args += ["--keys", "500", "--noise", "1000", "--count", "1000", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"tenantkv loadtest: {server_kind.label}" in " ".join(result.stdout.split())
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["correct"] is True
    assert data["config"]["server"] == server_kind.binary
    version = ".".join(map(str, server_kind.version))
    for target, mode in (("standalone", "standalone"), ("cluster", "cluster")):
        env = data["environment"]["targets"][target]
        assert env["server_binary"] == server_kind.binary
        assert (env["server_name"], env["server_version"]) == (server_kind.server, version)
        assert env["redis_mode"] == mode
        assert env["server_view"] == {"available": True, "note": None}
    # A cluster node given as a standalone server is refused (Valkey says so in server_mode).
    node = redis_cluster.nodes[0]
    refused = CliRunner().invoke(app, ["loadtest", "--url", f"redis://127.0.0.1:{node.port}/0"])
    assert_one_line_error(refused, secret="hunter2")
    assert "is a Redis Cluster node" in refused.stderr


@pytest.mark.redis
def test_loadtest_without_config_goes_on_without_the_slowlog_view(tmp_path: Path) -> None:
    """A server that refuses CONFIG (renamed away, as managed services do): the run goes
    on, says so, and its JSON and table say that the server's view is missing."""
    out = tmp_path / "noconfig.json"
    with FixtureServer(extra_args=["--rename-command", "CONFIG", ""]) as server:
        args = ["loadtest", "--url", server.url, "--keys", "500", "--noise", "500"]
        args += ["--count", "1000", "--repeat", "1", "--json", str(out)]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "SLOWLOG view unavailable" in result.stderr
    assert "server max is n/a" in " ".join(result.stdout.split())
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["correct"] is True
    view = data["environment"]["server_view"]
    assert view["available"] is False
    assert "CONFIG" in view["note"]
    for m in data["scenarios"][0]["measurements"]:
        assert m["server"]["longest_ms"] is None
        assert m["server"]["complete"] is False


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--server", "/nonexistent/redis-server"], id="missing"),
        pytest.param(["--server", "redis-server", "--url", "redis://127.0.0.1:1/0"], id="url"),
    ],
)
def test_loadtest_bad_server_option(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["loadtest", "--quick", *args])
    assert_one_line_error(result, secret="secret")
    assert result.exit_code == 2


# -- the results table -----------------------------------------------------------


def sample_result(targets: tuple[str | None, ...] = (None,)) -> LoadtestResult:
    """A result shaped like a real run, with figures of every width the table shows."""
    idle = LatencyStats(900, 0.032, 0.081, 0.412, 1.234)
    stall = LatencyStats(800, 0.041, 1_234.5, 2_345.6, 12_345.6)
    rows = [
        ("list", "keys", "KEYS on all 3 primaries (baseline)", None, True),
        ("list", "scan", "SCAN COUNT 1000 (3 primaries)", 1000, False),
        ("list", "index", "index (chunks of 1000, 3 primaries)", None, False),
        ("list", "scan_iter", "redis-py RedisCluster.scan_iter (COUNT 10)", None, False),
        ("clear", "keys+del", "KEYS+DEL on all 3 primaries (baseline)", None, True),
        ("clear", "clear", "clear() (3 primaries)", 1000, False),
    ]
    result = LoadtestResult({"redis_version": "8.2.1", "cpu_count": 2}, {"probe_interval_ms": 1.0})
    for target in targets:
        scenario = Scenario(100_000, 100_000, 200_014, 1.5, idle, [], target=target)
        for kind, strategy, label, count, baseline in rows:
            scenario.measurements.append(
                Measurement(
                    kind=kind,
                    strategy=strategy,
                    label=label,
                    count=count,
                    baseline=baseline,
                    expected=100_000,
                    wall_ms_runs=[12_345.6 if baseline else 0.087],
                    found=100_000,
                    duplicates=0,
                    foreign=0,
                    correct=True,
                    probe=stall if baseline else idle,
                    probe_service=idle,
                    server=ServerView(10, 12_345.6, "EVALSHA", 3, False),
                    timeline=[],
                )
            )
        result.scenarios.append(scenario)
    return result


@pytest.mark.parametrize("targets", [(None,), ("standalone", "cluster")], ids=["one", "two"])
@pytest.mark.parametrize("width", [60, 80, 120])
def test_results_table_never_cuts_a_figure(targets: tuple[str | None, ...], width: int) -> None:
    out = io.StringIO()
    print_table(sample_result(targets), Console(file=out, width=width, highlight=False))
    text = out.getvalue()
    assert "…" not in text
    for figure in ("100,000", "200,014", "12,346", "0.087", "1149.4M", "8k", "0.032", "1,234"):
        assert figure in text, (figure, text)
    assert "EVALSHA" in text
