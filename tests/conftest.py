"""Shared fixtures: the server matrix, private servers, and one store fixture over every backend.

Every test that takes ``store`` or ``open_tenant`` runs once per entry of
:data:`STORE_KINDS`. Servers are private processes on free loopback ports
(never the machine's shared Redis), started once per session and stopped by
PID; tests are isolated by fresh tenant IDs, never by FLUSHALL.

**The server matrix.** ``--servers redis7,redis8,valkey8,valkey9`` (the
default: all four; or ``$TENANTKV_TEST_SERVERS``) names the server kinds to
test (:data:`tests.servers.SERVER_SOURCES`). A kind whose binary is missing is
a usage error that stops the run, never a skip. The first kind is the
*primary*: every test runs on it, and ``$TENANTKV_REDIS_SERVER`` is set to its
binary for the session, so the tests' own servers and the CLI's private
servers use it too. Tests marked ``matrix`` that use a server run once per
kind: they get the ``server_kind`` parameter (ids like ``valkey9-redis+index``),
and the session's server and cluster of that kind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import tenantkv
from tenantkv.cli.loadtest.servers import DEFAULT_ENV_VAR

from .servers import (
    SERVER_SOURCES,
    FixtureCluster,
    FixtureServer,
    ServerKind,
    ServerNotFoundError,
    find_server,
)

#: Server settings for the shared test server: no persistence (the servers add
#: it), a SLOWLOG that records every command over 10 ms.
SERVER_ARGS = ("--slowlog-log-slower-than", "10000", "--slowlog-max-len", "1024")


@dataclass(frozen=True)
class StoreKind:
    """One way of opening a store that the contract suite must hold for."""

    name: str
    #: ``server`` or ``cluster``: what the store needs (``None`` for in-process backends).
    topology: str | None
    options: dict[str, Any] = field(default_factory=dict)
    marks: tuple[pytest.MarkDecorator, ...] = ()


STORE_KINDS: list[StoreKind] = [
    StoreKind("memory", None),
    StoreKind("redis", "server", marks=(pytest.mark.redis,)),
    StoreKind("memory+index", None, {"index": True}),
    StoreKind("redis+index", "server", {"index": True}, marks=(pytest.mark.redis,)),
    StoreKind("cluster", "cluster", marks=(pytest.mark.cluster,)),
    StoreKind("cluster+index", "cluster", {"index": True}, marks=(pytest.mark.cluster,)),
    StoreKind("memory+shards", None, {"shards": 4}),
    StoreKind("cluster+shards", "cluster", {"shards": 8}, marks=(pytest.mark.cluster,)),
    StoreKind("memory+shards+index", None, {"shards": 4, "index": True}),
    StoreKind(
        "redis+shards+index",
        "server",
        {"shards": 4, "index": True},
        marks=(pytest.mark.redis,),
    ),
    StoreKind(
        "cluster+shards+index",
        "cluster",
        {"shards": 8, "index": True},
        marks=(pytest.mark.cluster,),
    ),
]


def new_tenant(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- the server matrix

_KINDS = pytest.StashKey[list[ServerKind]]()
_REPLACED = pytest.StashKey[str | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--servers",
        default=os.environ.get("TENANTKV_TEST_SERVERS", ",".join(SERVER_SOURCES)),
        help=f"server kinds to test, comma-separated, from {','.join(SERVER_SOURCES)} "
        "(default: all, or $TENANTKV_TEST_SERVERS). The first runs every test; every "
        "kind runs the tests marked matrix. A missing binary is an error.",
    )


def pytest_configure(config: pytest.Config) -> None:
    names = [name.strip() for name in str(config.getoption("--servers")).split(",")]
    kinds: list[ServerKind] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            kinds.append(find_server(name))
        except ServerNotFoundError as exc:
            raise pytest.UsageError(f"--servers: {exc}") from None
    if not kinds:
        raise pytest.UsageError("--servers: name at least one server kind")
    config.stash[_KINDS] = kinds
    previous = os.environ.get(DEFAULT_ENV_VAR)
    config.stash[_REPLACED] = previous if previous not in (None, kinds[0].binary) else None
    # Every server a test starts without naming a binary (FixtureServer(), the
    # load test's private servers, a CLI child process) is the primary kind.
    os.environ[DEFAULT_ENV_VAR] = kinds[0].binary


def pytest_report_header(config: pytest.Config) -> list[str]:
    kinds = config.stash[_KINDS]
    lines = ["servers (--servers; the first runs every test, each one the matrix tests):"]
    for i, kind in enumerate(kinds):
        role = f"primary, ${DEFAULT_ENV_VAR}" if i == 0 else "matrix"
        lines.append(f"  {kind.name}: {kind.label} at {kind.binary} ({role})")
    replaced = config.stash[_REPLACED]
    if replaced is not None:
        lines.append(f"  (${DEFAULT_ENV_VAR} was {replaced!r}: use --servers to choose servers)")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each ``matrix`` test that uses a server on every requested server kind.

    With ``store_kind``, the Redis kinds of :data:`STORE_KINDS` are taken once
    per server kind and the memory kinds once. The parameters are added as a
    ``parametrize`` mark (before pytest reads the marks), which takes
    precedence over the ``store_kind`` fixture's own parameters.
    """
    kinds = metafunc.config.stash[_KINDS]
    if metafunc.definition.get_closest_marker("matrix") is None:
        return
    if "server_kind" not in metafunc.fixturenames:
        return
    if "store_kind" not in metafunc.fixturenames:
        ids = [k.name for k in kinds]
        metafunc.definition.add_marker(
            pytest.mark.parametrize("server_kind", kinds, ids=ids, scope="module")
        )
        return
    combos = []
    for kind in STORE_KINDS:
        servers = kinds if kind.topology is not None else kinds[:1]
        combos += [
            pytest.param(
                kind,
                server,
                id=kind.name if kind.topology is None else f"{server.name}-{kind.name}",
                marks=kind.marks,
            )
            for server in servers
        ]
    metafunc.definition.add_marker(
        pytest.mark.parametrize(("store_kind", "server_kind"), combos, scope="module")
    )


@pytest.fixture(scope="module")
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    """The server kind of this test: the primary one, unless the test is a ``matrix`` test."""
    return request.config.stash[_KINDS][0]


class ServerPool:
    """The session's shared servers: per server kind, one standalone server and one
    3x1 cluster, each started on first use and stopped at the end of the session."""

    def __init__(self) -> None:
        self._servers: dict[str, FixtureServer] = {}
        self._clusters: dict[str, FixtureCluster] = {}

    def server(self, kind: ServerKind) -> FixtureServer:
        if kind.name not in self._servers:
            self._servers[kind.name] = FixtureServer(kind.binary, extra_args=SERVER_ARGS).start()
        return self._servers[kind.name]

    def cluster(self, kind: ServerKind) -> FixtureCluster:
        if kind.name not in self._clusters:
            cluster = FixtureCluster(3, 1, binary=kind.binary, extra_args=SERVER_ARGS)
            self._clusters[kind.name] = cluster.start()
        return self._clusters[kind.name]

    def stop(self) -> None:
        for cluster in self._clusters.values():
            cluster.stop()
        for server in self._servers.values():
            server.stop()


@pytest.fixture(scope="session")
def server_pool() -> Iterator[ServerPool]:
    pool = ServerPool()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def redis_server(server_pool: ServerPool, server_kind: ServerKind) -> FixtureServer:
    """The session's standalone server of this test's server kind."""
    return server_pool.server(server_kind)


@pytest.fixture
def redis_cluster(server_pool: ServerPool, server_kind: ServerKind) -> FixtureCluster:
    """The session's cluster of this test's server kind: 3 primaries with 1 replica each.
    Tests must not break it."""
    return server_pool.cluster(server_kind)


@pytest.fixture(params=[pytest.param(k, id=k.name, marks=k.marks) for k in STORE_KINDS])
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    kind: StoreKind = request.param
    return kind


@pytest.fixture
def store_url(store_kind: StoreKind, server_kind: ServerKind, server_pool: ServerPool) -> str:
    """A URL for the kind: one fresh memory keyspace per test, or the session's server
    (or cluster) of the test's server kind."""
    if store_kind.topology is None:
        return f"memory://test-{uuid.uuid4().hex}"
    if store_kind.topology == "cluster":
        return server_pool.cluster(server_kind).url
    return server_pool.server(server_kind).url


OpenTenant = Callable[..., Awaitable[tenantkv.TenantStore]]


@pytest.fixture
async def open_tenant(store_url: str, store_kind: StoreKind) -> AsyncIterator[OpenTenant]:
    """Open stores of any tenant on this test's URL; all are closed at teardown."""
    opened: list[tenantkv.TenantStore] = []

    async def open_(tenant: str | None = None, **options: Any) -> tenantkv.TenantStore:
        merged = {**store_kind.options, **options}
        store = await tenantkv.open_store(store_url, tenant=tenant or new_tenant(), **merged)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        # Leave the shared server as empty as we found it, so that later
        # tests' SCANs walk only their own keys.
        with contextlib.suppress(tenantkv.TenantKVError):
            await store.clear()
        await store.aclose()


@pytest.fixture
async def store(open_tenant: OpenTenant) -> tenantkv.TenantStore:
    """A store of a fresh tenant."""
    return await open_tenant()
