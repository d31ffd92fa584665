"""One client for many tenants: shared connections, cheap stores, one lifetime."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

import tenantkv
from tenantkv import TenantClient

from .conftest import StoreKind, new_tenant
from .servers import FixtureCluster, FixtureServer


@pytest.fixture
async def client(store_url: str, store_kind: StoreKind) -> Any:
    async with tenantkv.open_client(store_url, **store_kind.options) as opened:
        yield opened


async def test_stores_of_many_tenants_share_the_client_and_stay_apart(
    client: TenantClient,
) -> None:
    tenants = [new_tenant() for _ in range(20)]
    stores = [await client.store(tenant) for tenant in tenants]
    for i, store in enumerate(stores):
        await store.set("k", i)
        await store.list_push("l", i, ttl_ms=60_000)
    for i, store in enumerate(stores):
        assert await store.get("k") == i
        assert sorted(await store.keys()) == ["k", "l"]
        assert store.backend is client.backend
    async with stores[0].subscribe("ch") as sub, stores[1].subscribe("ch") as other:
        assert await stores[0].publish("ch", "zero") == 1
        assert await sub.get(timeout=5) == "zero"
        assert await other.get(timeout=0.05) is None  # another tenant's channel
    for store in stores:
        await store.clear()


async def test_closing_the_client_closes_every_store_it_made(client: TenantClient) -> None:
    store = await client.store(new_tenant())
    other = await client.store(new_tenant())
    async with store.subscribe("ch") as sub:
        await client.aclose()
        with pytest.raises(tenantkv.StoreClosedError):
            await sub.get(timeout=5)
    for closed in (store, other):
        with pytest.raises(tenantkv.StoreClosedError):
            await closed.get("k")
    with pytest.raises(tenantkv.StoreClosedError):
        await client.store(new_tenant())


async def test_closing_a_store_of_a_client_leaves_the_client_and_its_other_stores(
    client: TenantClient,
) -> None:
    tenant = new_tenant()
    leaving = await client.store(tenant)
    staying = await client.store(tenant)
    async with staying.subscribe("ch") as kept, leaving.subscribe("ch") as ended:
        await leaving.aclose()
        with pytest.raises(tenantkv.StoreClosedError):
            await ended.get(timeout=5)
        assert await staying.publish("ch", "still") == 1
        assert await kept.get(timeout=5) == "still"
        assert (await staying.stats()).subscriptions == 1
    await staying.set("k", 1)
    again = await client.store(tenant)
    assert await again.get("k") == 1
    await again.clear()


async def test_store_options_default_to_the_clients_and_can_be_given_per_store(
    store_url: str, store_kind: StoreKind
) -> None:
    options = {**store_kind.options, "prefix": "app", "count": 50}
    async with tenantkv.open_client(store_url, **options) as client:
        assert client.defaults.prefix == "app"
        default = await client.store(new_tenant())
        assert default.namespace.prefix == "app"
        assert default.count == 50
        chosen = await client.store(new_tenant(), prefix="other", count=7, shards=2, index=True)
        assert (chosen.namespace.prefix, chosen.count, chosen.namespace.shards) == ("other", 7, 2)
        await chosen.set("k", 1)
        assert await chosen.keys() == ["k"]
        with pytest.raises(tenantkv.InvalidValueError):
            await client.store(new_tenant(), count=0)
        with pytest.raises(tenantkv.InvalidTenantError):
            await client.store("not a tenant!")
        await chosen.clear()


async def test_a_plain_store_of_a_client_writes_through_the_tenants_index(
    client: TenantClient,
) -> None:
    tenant = new_tenant()
    indexed = await client.store(tenant, index=True)
    await indexed.set_many({"a": 1, "b": 2})
    plain = await client.store(tenant, index=False)
    await plain.delete("a")
    await plain.set("c", 3)
    assert sorted(await indexed.keys()) == ["b", "c"]
    assert (await indexed.verify_index()).clean
    await indexed.clear()


@pytest.mark.redis
async def test_stores_after_a_tenants_first_make_no_server_call() -> None:
    with FixtureServer() as server:
        async with tenantkv.open_client(server.url) as client:
            tenant = new_tenant()
            await client.store(tenant)
            await client.store(tenant, index=True)
            await client.store(tenant)
            with redis.Redis(host=server.host, port=server.port) as raw:
                raw.config_resetstat()
                for _ in range(100):
                    await client.store(tenant)
                    await client.store(tenant, index=True)
                stats: dict[str, Any] = raw.info("commandstats")
    assert set(stats) <= {"cmdstat_config|resetstat"}


def connections(nodes: list[FixtureServer]) -> int:
    """Client connections the servers hold, our own inspecting one excepted."""
    total = 0
    for node in nodes:
        with node.client() as raw:
            total += len(raw.client_list()) - 1
    return total


@pytest.mark.parametrize("topology", ["server", pytest.param("cluster", marks=pytest.mark.cluster)])
@pytest.mark.redis
async def test_a_thousand_tenants_stay_within_the_pool(topology: str) -> None:
    max_connections = 8
    servers: FixtureServer | FixtureCluster = (
        FixtureServer() if topology == "server" else FixtureCluster(3, 0)
    )
    with servers as started:
        nodes = started.nodes if isinstance(started, FixtureCluster) else [started]
        async with tenantkv.open_client(started.url, max_connections=max_connections) as client:
            stores = [await client.store(f"tenant-{i}") for i in range(1000)]

            async def serve(i: int) -> None:
                store = stores[i]
                async with store.batch() as b:
                    b.set("search:txn", {"i": i}, ttl_ms=60_000)
                    b.list_push("search:txn:responses", i, ttl_ms=60_000)
                    b.publish("search:txn:updates", {"n": 1})
                assert await store.get("search:txn") == {"i": i}

            subscriptions = [stores[i].subscribe("search:txn:updates") for i in range(0, 1000, 10)]
            await asyncio.gather(*(sub.__aenter__() for sub in subscriptions))
            gate = asyncio.Semaphore(max_connections)  # redis-py's pool fails, not waits, when full

            async def gated(i: int) -> None:
                async with gate:
                    await serve(i)

            await asyncio.gather(*(gated(i) for i in range(1000)))
            for sub in subscriptions:
                assert await sub.get(timeout=5) == {"n": 1}
            held = connections(nodes)
            await asyncio.gather(*(sub.__aexit__(None, None, None) for sub in subscriptions))
    # Per server: the pool and one pub/sub connection (on a cluster, per node: the
    # cluster client's pool, the node's own client for publishes and walks, and one
    # pub/sub connection): never a connection per tenant.
    per_node = 2 * max_connections + 1 if topology == "cluster" else max_connections + 1
    assert held <= per_node * len(nodes)
