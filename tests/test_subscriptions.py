"""What a store says of its subscriptions is what the server has: after a cancelled entry,
and after the subscriber connection failed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

import tenantkv
from tenantkv import TenantStore

from .conftest import STORE_KINDS, OpenTenant, StoreKind, new_tenant
from .servers import FixtureCluster, FixtureServer, free_port

SERVER_KINDS = [
    pytest.param(kind, id=kind.name, marks=kind.marks)
    for kind in STORE_KINDS
    if kind.topology and not kind.options
]


def server_subscribers(kind: StoreKind, request: pytest.FixtureRequest, channel: str) -> int:
    """``PUBSUB NUMSUB`` of a physical channel, added up over every node."""
    fixture = "redis_cluster" if kind.topology == "cluster" else "redis_server"
    server: FixtureServer | FixtureCluster = request.getfixturevalue(fixture)
    nodes = server.nodes if isinstance(server, FixtureCluster) else [server]
    total = 0
    for node in nodes:
        with node.client() as client:
            reply: Any = client.execute_command("PUBSUB", "NUMSUB", channel)
            total += int(reply[1]) if isinstance(reply, list) else int(dict(reply)[channel])
    return total


@pytest.mark.parametrize("store_kind", SERVER_KINDS, indirect=True)
async def test_a_cancelled_subscription_entry_leaves_nothing_subscribed(
    open_tenant: OpenTenant, store_kind: StoreKind, request: pytest.FixtureRequest
) -> None:
    store = await open_tenant()
    channel = store.namespace.key("c")
    entered_anyway = 0
    for steps in range(40):
        entered = asyncio.Event()

        async def enter(entered: asyncio.Event = entered) -> None:
            async with store.subscribe("c"):
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(enter())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        entered_anyway += entered.is_set()
        assert store.backend.subscription_count == 0
        assert server_subscribers(store_kind, request, channel) == 0, f"cut after {steps} steps"
        assert await store.publish("c", "nobody") == 0
    assert entered_anyway < 40  # the cut did land inside the entry most of the time
    # Deadlines instead of cancels, as a request handler would set them.
    for timeout_s in (0, 0.0001, 0.0003, 0.001):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(timeout_s), store.subscribe("c") as sub:
                await sub.__anext__()
        assert server_subscribers(store_kind, request, channel) == 0
    async with store.subscribe("c") as sub:  # and it still works
        assert await store.publish("c", "hello") == 1
        assert await asyncio.wait_for(sub.__anext__(), 5) == "hello"


@pytest.mark.parametrize("store_kind", SERVER_KINDS, indirect=True)
async def test_concurrent_entries_of_one_channel_share_one_server_subscription(
    open_tenant: OpenTenant, store_kind: StoreKind, request: pytest.FixtureRequest
) -> None:
    store: TenantStore = await open_tenant()
    channel = store.namespace.key("c")
    subs = [store.subscribe("c") for _ in range(20)]
    await asyncio.gather(*(sub.__aenter__() for sub in subs))
    assert store.backend.subscription_count == 20
    assert server_subscribers(store_kind, request, channel) == 1
    assert await store.publish("c", "all") == 1
    for sub in subs:
        assert await asyncio.wait_for(sub.__anext__(), 5) == "all"
    await asyncio.gather(*(sub.__aexit__(None, None, None) for sub in subs[:10]))
    assert server_subscribers(store_kind, request, channel) == 1
    await asyncio.gather(*(sub.__aexit__(None, None, None) for sub in subs[10:]))
    assert server_subscribers(store_kind, request, channel) == 0


def subscriber_connections(server: FixtureServer) -> int:
    with server.client() as client:
        return sum(1 for c in client.client_list() if int(c.get("sub", 0)) > 0)


@pytest.mark.redis
async def test_a_failed_subscriber_is_not_subscribed_again_behind_the_store() -> None:
    """Server killed and restarted on the same port: the subscription ended with an error,
    so the server must not have it back (redis-py's PubSub would reconnect and resubscribe)."""
    server = FixtureServer(port=free_port()).start()
    try:
        store = await tenantkv.open_store(server.url, tenant=new_tenant(), socket_timeout=2)
        async with store.subscribe("ch") as sub:
            server.kill()
            with pytest.raises(tenantkv.BackendUnavailableError):
                await asyncio.wait_for(sub.__anext__(), 30)
            assert store.backend.subscription_count == 0
            server.start()
            await store.set("k", 1)  # the store works again...
            await asyncio.sleep(0.5)
            # ...but what the store reports is what the server has: nothing subscribed.
            assert subscriber_connections(server) == 0
            assert await store.publish("ch", "lost") == 0
            assert (await store.stats()).subscriptions == 0
        assert subscriber_connections(server) == 0
        async with store.subscribe("ch") as again:  # a new subscription starts afresh
            assert subscriber_connections(server) == 1
            assert await store.publish("ch", "hello") == 1
            assert await asyncio.wait_for(again.__anext__(), 5) == "hello"
        await store.aclose()
    finally:
        server.stop()


@pytest.mark.redis
async def test_the_subscriber_connection_never_retries_on_its_own() -> None:
    """A killed subscriber connection (CLIENT KILL) ends the subscription with an error at
    once, instead of a silent reconnect that would drop the messages sent meanwhile."""
    with FixtureServer() as server:
        async with tenantkv.open_store(server.url, tenant=new_tenant()) as store:
            async with store.subscribe("ch") as sub:
                with server.client() as client:
                    killed = client.client_kill_filter(_type="pubsub")
                assert killed == 1
                with pytest.raises(tenantkv.BackendUnavailableError):
                    await asyncio.wait_for(sub.__anext__(), 10)
            await asyncio.sleep(0.3)
            assert subscriber_connections(server) == 0
            with redis.Redis(host=server.host, port=server.port) as raw:
                assert raw.publish(store.namespace.key("ch"), "x") == 0
