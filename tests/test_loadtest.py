"""``tenantkv loadtest`` end to end: the quick run CI uses, and a run on a shared database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tenantkv.cli.app import app
from tenantkv.cli.loadtest.config import index_available
from tenantkv.cli.loadtest.dataset import DistinctCounter, index_of, key_of
from tenantkv.localredis import RedisServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def expected_strategies() -> set[str]:
    listing = {"keys", "scan", "scan_iter"} | ({"index"} if index_available() else set())
    clearing = {"keys+del", "clear"} | ({"clear-index"} if index_available() else set())
    return listing | clearing


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
def shared_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.mark.redis
def test_loadtest_leaves_a_shared_database_as_it_found_it(shared_server: RedisServer) -> None:
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
