"""Shared fixtures: private Redis servers and one store fixture parametrized over every backend.

Every test that takes ``store`` or ``open_tenant`` runs once per entry of
:data:`STORE_KINDS`. Servers are private ``redis-server`` processes on free
loopback ports (never the machine's shared Redis), started once per session
and stopped by PID; tests are isolated by fresh tenant IDs, never by FLUSHALL.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import tenantkv

from .servers import FixtureCluster, FixtureServer

#: Server settings for the shared test server: no persistence (the servers add
#: it), a SLOWLOG that records every command over 10 ms.
SERVER_ARGS = ("--slowlog-log-slower-than", "10000", "--slowlog-max-len", "1024")


@dataclass(frozen=True)
class StoreKind:
    """One way of opening a store that the contract suite must hold for."""

    name: str
    #: Fixture name giving the server (``None`` for in-process backends).
    server_fixture: str | None
    options: dict[str, Any] = field(default_factory=dict)
    marks: tuple[pytest.MarkDecorator, ...] = ()


STORE_KINDS: list[StoreKind] = [
    StoreKind("memory", None),
    StoreKind("redis", "redis_server", marks=(pytest.mark.redis,)),
    StoreKind("memory+index", None, {"index": True}),
    StoreKind("redis+index", "redis_server", {"index": True}, marks=(pytest.mark.redis,)),
    StoreKind("cluster", "redis_cluster", marks=(pytest.mark.cluster,)),
    StoreKind("cluster+index", "redis_cluster", {"index": True}, marks=(pytest.mark.cluster,)),
    StoreKind("memory+shards", None, {"shards": 4}),
    StoreKind("cluster+shards", "redis_cluster", {"shards": 8}, marks=(pytest.mark.cluster,)),
    StoreKind("memory+shards+index", None, {"shards": 4, "index": True}),
    StoreKind(
        "redis+shards+index",
        "redis_server",
        {"shards": 4, "index": True},
        marks=(pytest.mark.redis,),
    ),
    StoreKind(
        "cluster+shards+index",
        "redis_cluster",
        {"shards": 8, "index": True},
        marks=(pytest.mark.cluster,),
    ),
]


def new_tenant(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[FixtureServer]:
    with FixtureServer(extra_args=SERVER_ARGS) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[FixtureCluster]:
    """The session's cluster: 3 primaries with 1 replica each. Tests must not break it."""
    with FixtureCluster(3, 1, extra_args=SERVER_ARGS) as cluster:
        yield cluster


@pytest.fixture(params=[pytest.param(k, id=k.name, marks=k.marks) for k in STORE_KINDS])
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    kind: StoreKind = request.param
    return kind


@pytest.fixture
def store_url(store_kind: StoreKind, request: pytest.FixtureRequest) -> str:
    """A URL for the kind: one fresh memory keyspace per test, or the session's server."""
    if store_kind.server_fixture is None:
        return f"memory://test-{uuid.uuid4().hex}"
    server = request.getfixturevalue(store_kind.server_fixture)
    url: str = server.url
    return url


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
