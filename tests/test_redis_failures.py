"""A Redis that goes away surfaces as the library's error, never as silence."""

from __future__ import annotations

import asyncio

import pytest

import tenantkv
from tenantkv.localredis import RedisServer

from .conftest import new_tenant

pytestmark = pytest.mark.redis


def require_password(server: RedisServer, password: str) -> None:
    with server.client() as client:
        client.config_set("requirepass", password)


async def test_commands_after_the_server_died_raise_unavailable() -> None:
    server = RedisServer().start()
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
    with RedisServer() as server:
        require_password(server, "right")
        url = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        with pytest.raises(tenantkv.BackendError) as info:
            await tenantkv.open_store(url, tenant=new_tenant())
        assert "wrong-pw" not in str(info.value)


async def test_open_subscription_raises_when_the_server_dies() -> None:
    server = RedisServer().start()
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
    with RedisServer() as server:
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
