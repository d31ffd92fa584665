"""A Redis that goes away surfaces as the library's error, never as silence."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import tenantkv

from .conftest import new_tenant
from .servers import FixtureCluster, FixtureServer, free_port

pytestmark = pytest.mark.redis


def require_password(server: FixtureServer, password: str) -> None:
    with server.client() as client:
        client.config_set("requirepass", password)


async def test_commands_after_the_server_died_raise_unavailable() -> None:
    server = FixtureServer().start()
    require_password(server, "hunter2")
    url = f"redis://:hunter2@127.0.0.1:{server.port}/0"
    store = await tenantkv.open_store(url, tenant=new_tenant(), socket_timeout=2)
    try:
        await store.set("k", 1)
        server.stop()
        with pytest.raises(tenantkv.BackendUnavailableError) as info:
            await store.get("k")
        assert "hunter2" not in str(info.value)
        assert info.value.url == f"redis://:***@127.0.0.1:{server.port}/0"
        with pytest.raises(tenantkv.BackendUnavailableError):
            await store.keys()
        with pytest.raises(tenantkv.BackendUnavailableError):
            async with store.subscribe("ch"):
                pass
    finally:
        await store.aclose()
        server.stop()


async def test_wrong_password_is_a_backend_error_without_the_password() -> None:
    with FixtureServer() as server:
        require_password(server, "right")
        url = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        with pytest.raises(tenantkv.BackendError) as info:
            await tenantkv.open_store(url, tenant=new_tenant())
        assert "wrong-pw" not in str(info.value)
        assert "refused the credentials" in str(info.value)
        with pytest.raises(tenantkv.BackendError, match="refused the credentials"):
            await tenantkv.open_store(server.url, tenant=new_tenant())  # no password at all


async def test_open_subscription_raises_when_the_server_dies() -> None:
    server = FixtureServer().start()
    store = await tenantkv.open_store(server.url, tenant=new_tenant())
    try:
        async with store.subscribe("ch") as sub:
            assert await store.publish("ch", 1) == 1
            assert await asyncio.wait_for(sub.__anext__(), 5) == 1
            server.kill()
            with pytest.raises(tenantkv.BackendUnavailableError):
                await asyncio.wait_for(sub.__anext__(), 30)
    finally:
        await store.aclose()
        server.stop()


async def test_subscription_is_gone_from_the_server_after_exit() -> None:
    with FixtureServer() as server:
        client = server.client()
        async with tenantkv.open_store(server.url, tenant="t1") as store:
            physical = store.namespace.key("ch")
            async with store.subscribe("ch"), store.subscribe("ch"):
                assert client.pubsub_numsub(physical) == [(physical, 1)]
            assert client.pubsub_numsub(physical) == [(physical, 0)]
            # A store's subscriptions share one connection: one client on the server.
            async with store.subscribe("a"), store.subscribe("b"):
                clients = client.client_list(_type="pubsub")
                assert len(clients) == 1
        client.close()


@pytest.mark.parametrize("index", [False, True], ids=["plain", "index"])
@pytest.mark.parametrize("ttl_ms", [None, 60_000], ids=["no-ttl", "ttl"])
async def test_set_many_refused_for_memory_writes_nothing(index: bool, ttl_ms: int | None) -> None:
    """A set_many the server refuses (maxmemory reached) raises and leaves no partial batch."""
    with FixtureServer() as server, server.client() as client:
        async with tenantkv.open_store(server.url, tenant=new_tenant(), index=index) as store:
            await store.set("before", 1)
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", 1)
            try:
                with pytest.raises(tenantkv.BackendError) as info:
                    await store.set_many({f"k{i}": i for i in range(2_500)}, ttl_ms=ttl_ms)
                assert "maxmemory" in str(info.value)
                assert client.dbsize() == (2 if index else 1)  # "before" (and its index)
            finally:
                client.config_set("maxmemory", 0)
            assert await store.keys() == ["before"]
            await store.set_many({"after": 2}, ttl_ms=ttl_ms)
            assert sorted(await store.keys()) == ["after", "before"]


@pytest.mark.parametrize("index", [False, True], ids=["plain", "index"])
@pytest.mark.parametrize("ttl_ms", [None, 60_000], ids=["no-ttl", "ttl"])
async def test_set_many_reaching_maxmemory_midway_is_all_or_none(
    index: bool, ttl_ms: int | None
) -> None:
    """The limit falls inside the batch: either all of it is written or none, never a part."""
    with FixtureServer() as server, server.client() as client:
        async with tenantkv.open_store(server.url, tenant=new_tenant(), index=index) as store:
            client.config_set("maxmemory-policy", "noeviction")
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used + 1_000_000)
            batch = {f"k{i}": "x" * 1_000 for i in range(2_500)}  # about 2.5 MB
            refused: tenantkv.BackendError | None = None
            try:
                await store.set_many(batch, ttl_ms=ttl_ms)
            except tenantkv.BackendError as exc:
                refused = exc
            finally:
                client.config_set("maxmemory", 0)
            if refused is None:
                assert await store.count_keys() == len(batch)
                assert await store.get("k2499") == "x" * 1_000
            else:
                assert "maxmemory" in str(refused)
                assert client.dbsize() == 0  # no data key, no index entry


@pytest.mark.parametrize("index", [False, True], ids=["plain", "index"])
async def test_a_tenant_at_maxmemory_can_still_be_read_and_freed(index: bool) -> None:
    """At maxmemory only writes that grow memory are refused (whole); listing, counting,
    expiring, deleting and clearing still work, so a tenant can free memory."""
    with FixtureServer() as server, server.client() as client:
        async with tenantkv.open_store(server.url, tenant=new_tenant(), index=index) as store:
            await store.set_many({f"k{i}": i for i in range(50)})
            await store.list_push("list", "a")
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", 1)
            try:
                with pytest.raises(tenantkv.BackendError, match="maxmemory"):
                    await store.set("new", 1)
                with pytest.raises(tenantkv.BackendError, match="maxmemory"):
                    await store.list_push("list", "b")
                assert await store.get("k1") == 1
                assert await store.count_keys() == 51
                assert len(await store.keys()) == 51
                assert await store.count_keys("k1*") == 11
                assert (await store.stats()).keys == 51
                assert await store.set_ttl("k2", 60_000)
                assert await store.delete("k1")
                if index:
                    assert (await store.verify_index()).drift == 0
                    assert (await store.reindex()).drift == 0
                    assert await store.prune_index() == 0
                assert await store.clear() == 50
                assert await store.count_keys() == 0
            finally:
                client.config_set("maxmemory", 0)
            assert not await store.exists("new")
            assert client.dbsize() == 0


async def receive_one(store: tenantkv.TenantStore, channel: str) -> object:
    async with store.subscribe(channel) as sub:
        assert await store.publish(channel, "hello") == 1
        return await asyncio.wait_for(sub.__anext__(), 5)


@pytest.mark.parametrize("topology", ["server", pytest.param("cluster", marks=pytest.mark.cluster)])
async def test_connections_the_server_closed_while_idle_are_replaced(topology: str) -> None:
    """A Redis with ``timeout 1`` closes idle connections; the next call must not fail."""
    idle_s = 2.2
    servers: contextlib.AbstractContextManager[FixtureServer | FixtureCluster] = (
        FixtureServer() if topology == "server" else FixtureCluster(3, 0)
    )
    with servers as server:
        for node in server.nodes if isinstance(server, FixtureCluster) else [server]:
            with node.client() as client:
                client.config_set("timeout", 1)
        async with tenantkv.open_store(server.url, tenant=new_tenant(), index=True) as store:
            await store.set("k", 1)
            await asyncio.sleep(idle_s)
            assert await store.get("k") == 1
            assert await store.keys() == ["k"]
            assert await receive_one(store, "ch") == "hello"
            await asyncio.sleep(idle_s)  # the subscriber connection idles too, unsubscribed
            assert await receive_one(store, "ch") == "hello"
            assert await store.count_keys() == 1


async def test_subscribing_works_again_after_the_server_came_back() -> None:
    server = FixtureServer(port=free_port()).start()  # the same port after a restart
    try:
        async with tenantkv.open_store(server.url, tenant=new_tenant()) as store:
            async with store.subscribe("ch") as sub:
                server.kill()
                with pytest.raises(tenantkv.BackendUnavailableError):
                    await asyncio.wait_for(sub.__anext__(), 30)
            with pytest.raises(tenantkv.BackendUnavailableError):
                await receive_one(store, "ch")
            server.start()
            await asyncio.sleep(0.1)
            assert await receive_one(store, "other") == "hello"
            assert await receive_one(store, "ch") == "hello"
            await store.set("k", 1)
            assert await store.get("k") == 1
    finally:
        server.stop()
