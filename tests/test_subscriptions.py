"""What a store says of its subscriptions is what the server has: after a cancelled entry,
and after the subscriber connection failed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import tenantkv
from tenantkv import TenantStore
from tenantkv.backends.redis import pubsub

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


# -- pipelined SUBSCRIBE/UNSUBSCRIBE: what the server ends with --------------------------------


def server_channels(
    kind: StoreKind, request: pytest.FixtureRequest, store: TenantStore
) -> set[str]:
    """The store's channels that the server has subscribed (``PUBSUB CHANNELS``, every node)."""
    fixture = "redis_cluster" if kind.topology == "cluster" else "redis_server"
    server: FixtureServer | FixtureCluster = request.getfixturevalue(fixture)
    nodes = server.nodes if isinstance(server, FixtureCluster) else [server]
    prefix = store.namespace.key_prefix
    channels: set[str] = set()
    for node in nodes:
        with node.client() as client:
            reply: list[bytes | str] = client.execute_command("PUBSUB", "CHANNELS")
            names = (c.decode() if isinstance(c, bytes) else c for c in reply)
            channels.update(name for name in names if name.startswith(prefix))
    return channels


async def _steps(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.mark.parametrize("store_kind", SERVER_KINDS, indirect=True)
async def test_concurrent_entries_and_exits_leave_exactly_the_held_channels_on_the_server(
    open_tenant: OpenTenant, store_kind: StoreKind, request: pytest.FixtureRequest
) -> None:
    """Many entries and exits of the same and different channels at once, so that
    SUBSCRIBE c, UNSUBSCRIBE c, SUBSCRIBE c ... are in flight together: the server ends with
    what is held, each held subscription gets its messages, and leaving drops everything."""
    store = await open_tenant()
    names = [f"c{i}" for i in range(6)]
    rng = random.Random(12)

    async def churn(rounds: int, seed: int) -> None:
        mine = random.Random(seed)
        for _ in range(rounds):
            async with store.subscribe(mine.choice(names)):
                await _steps(mine.randrange(4))
            await _steps(mine.randrange(3))

    for round_ in range(6):
        kept = rng.sample(names, 3)
        holders = [store.subscribe(name) for name in kept]

        async def hold(sub: tenantkv.TenantSubscription, delay: int) -> None:
            await _steps(delay)
            await sub.__aenter__()

        await asyncio.gather(
            *(churn(15, round_ * 100 + i) for i in range(10)),
            *(hold(sub, rng.randrange(20)) for sub in holders),
        )
        assert store.backend.subscription_count == len(kept)
        expected = {store.namespace.key(name) for name in kept}
        assert server_channels(store_kind, request, store) == expected
        for name in names:
            held = 1 if name in kept else 0
            assert server_subscribers(store_kind, request, store.namespace.key(name)) == held
        for name, sub in zip(kept, holders, strict=True):
            assert await store.publish(name, f"to {name}") == 1
            assert await asyncio.wait_for(sub.__anext__(), 5) == f"to {name}"
            assert await sub.get(timeout=0) is None  # nothing else: the churn published nothing
        await asyncio.gather(*(sub.__aexit__(None, None, None) for sub in holders))
        assert server_channels(store_kind, request, store) == set()
        assert store.backend.subscription_count == 0


@pytest.mark.parametrize("store_kind", SERVER_KINDS, indirect=True)
async def test_entries_and_exits_cancelled_at_any_point_among_others_leave_nothing_subscribed(
    open_tenant: OpenTenant, store_kind: StoreKind, request: pytest.FixtureRequest
) -> None:
    """Entries and exits cut by a cancel after 0, 1, 2 ... event-loop steps, while other
    entries and exits of the same channels are in flight: nothing stays on the server."""
    store = await open_tenant()
    rng = random.Random(7)
    names = ["a", "b", "c"]
    cut = 0

    async def use(name: str, hold: int) -> None:
        async with store.subscribe(name):
            await _steps(hold)

    for steps in range(60):
        tasks = [asyncio.create_task(use(rng.choice(names), rng.randrange(6))) for _ in range(8)]
        victims = rng.sample(tasks, 4)
        await _steps(steps % 15)
        for task in victims:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cut += sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert [r for r in results if isinstance(r, BaseException)] == [
            r for r in results if isinstance(r, asyncio.CancelledError)
        ]
        assert store.backend.subscription_count == 0
        assert server_channels(store_kind, request, store) == set(), f"cut after {steps} steps"
    assert cut > 60  # the cancels did land inside entries and exits
    for timeout_s in (0, 0.0001, 0.0003, 0.001, 0.003):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(timeout_s):
                # return_exceptions: wait for every entry to end, not only the first.
                await asyncio.gather(
                    *(use(name, 10**6) for name in names * 3), return_exceptions=True
                )
        assert server_channels(store_kind, request, store) == set()
    async with store.subscribe("a") as sub:  # and it still works
        assert await store.publish("a", "hello") == 1
        assert await asyncio.wait_for(sub.__anext__(), 5) == "hello"


@contextlib.contextmanager
def frozen(server: FixtureServer) -> Iterator[None]:
    """The server process stopped (SIGSTOP): it reads and answers nothing until the end."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGCONT)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``condition`` holds (the hub's writer has sent something)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.redis
async def test_subscribe_unsubscribe_subscribe_of_one_channel_in_flight_ends_subscribed() -> None:
    """The three commands are all sent before the server answers any (it is stopped): the
    second entry waits for the second SUBSCRIBE's confirmation, not the first's, and the
    server ends with the channel subscribed once."""
    server = FixtureServer(port=free_port()).start()
    try:
        store = await tenantkv.open_store(server.url, tenant=new_tenant())
        channel = store.namespace.key("c")
        entered = asyncio.Event()

        async def first() -> None:
            async with store.subscribe("c"):
                entered.set()
                await asyncio.Event().wait()

        async def second() -> Any:
            async with store.subscribe("c") as sub:
                return await sub.__anext__()

        async with store.subscribe("warm"):  # the connection and its reader are up
            link = store.backend._hub._link  # type: ignore[attr-defined]
            with frozen(server):
                one = asyncio.create_task(first())
                await until(lambda: channel in link.subscribed, "SUBSCRIBE c sent")
                one.cancel()  # its entry takes c back: UNSUBSCRIBE c
                await until(lambda: channel in link.unsubscribing, "UNSUBSCRIBE c sent")
                two = asyncio.create_task(second())
                await until(lambda: channel in link.subscribed, "SUBSCRIBE c sent again")
                assert len(link.replies[("subscribe", channel)]) == 2
                assert not one.done()  # waits for its UNSUBSCRIBE's confirmation
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(one, 10)
            assert not entered.is_set()
            await until(lambda: server_subscriptions(server, channel) == 1, "c subscribed")
            assert await store.publish("c", "after") == 1
            assert await asyncio.wait_for(two, 10) == "after"
        assert server_subscriptions(server, channel) == 0
        await store.aclose()
    finally:
        server.stop()


def server_subscriptions(server: FixtureServer, channel: str) -> int:
    with server.client() as client:
        reply: Any = client.execute_command("PUBSUB", "NUMSUB", channel)
        return int(reply[1])


@pytest.mark.redis
async def test_a_connection_lost_with_commands_in_flight_ends_every_waiter() -> None:
    """Entries and exits waiting for confirmations when the server dies: every entry raises
    BackendUnavailableError, every exit returns, every open subscription ends with the
    error, and the server restarted on the same port gets nothing subscribed back."""
    server = FixtureServer(port=free_port()).start()
    try:
        store = await tenantkv.open_store(server.url, tenant=new_tenant())
        async with contextlib.AsyncExitStack() as stack:
            staying = await stack.enter_async_context(store.subscribe("staying"))
            leaving = [store.subscribe(name) for name in ("x", "y", "y")]
            await asyncio.gather(*(sub.__aenter__() for sub in leaving))
            with frozen(server):
                # New channels wait for their SUBSCRIBE; x and "staying" are confirmed
                # already: their entries return at once (and x's exit then sends nothing).
                entries: dict[str, asyncio.Task[Any]] = {
                    f"{name}{i}": asyncio.create_task(store.subscribe(name).__aenter__())
                    for i, name in enumerate(("a", "b", "a", "x", "staying", "new"))
                }
                exits = [asyncio.create_task(sub.__aexit__(None, None, None)) for sub in leaving]
                hub = store.backend._hub  # type: ignore[attr-defined]
                await until(
                    lambda: (
                        exits[1].done() and entries["staying4"].done() and not hub._link.changed
                    ),
                    "everything sent",
                )
                assert {name for name, task in entries.items() if task.done()} == {"x3", "staying4"}
                assert [task.done() for task in exits] == [True, True, False]  # the last y waits
                server.kill()
            _, pending = await asyncio.wait([*entries.values(), *exits], timeout=10)
            assert not pending
            for name, task in entries.items():
                if name in ("x3", "staying4"):
                    with pytest.raises(tenantkv.BackendUnavailableError):
                        await asyncio.wait_for(task.result().__anext__(), 5)
                else:
                    assert isinstance(task.exception(), tenantkv.BackendUnavailableError), name
            for exit_ in exits:
                assert exit_.exception() is None
            with pytest.raises(tenantkv.BackendUnavailableError):
                await asyncio.wait_for(staying.__anext__(), 5)
            assert store.backend.subscription_count == 0
        server.start()
        await asyncio.sleep(0.3)
        assert subscriber_connections(server) == 0  # not subscribed again behind the store
        async with store.subscribe("a") as again:
            assert await store.publish("a", "hello") == 1
            assert await asyncio.wait_for(again.__anext__(), 5) == "hello"
        await store.aclose()
    finally:
        server.stop()


@pytest.mark.redis
async def test_confirmations_that_do_not_come_in_time_fail_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that stops answering (SIGSTOP): past _PUBSUB_CONFIRM_S the connection fails
    like a lost one (while new entries keep the writer busy), and is closed."""
    monkeypatch.setattr(pubsub, "_PUBSUB_CONFIRM_S", 0.5)
    server = FixtureServer(port=free_port()).start()
    try:
        store = await tenantkv.open_store(server.url, tenant=new_tenant())
        async with store.subscribe("staying") as staying:
            with frozen(server):
                loop = asyncio.get_running_loop()
                started = loop.time()
                entry = asyncio.create_task(store.subscribe("a").__aenter__())
                # New entries keep the writer busy for most of the 0.5 s (all of them on
                # this connection: none starts a new one after it failed).
                storm: list[asyncio.Task[Any]] = []
                while loop.time() - started < 0.3:
                    name = f"s{len(storm)}"
                    storm.append(asyncio.create_task(store.subscribe(name).__aenter__()))
                    await asyncio.sleep(0.002)
                with pytest.raises(tenantkv.BackendUnavailableError, match="not confirmed"):
                    await asyncio.wait_for(entry, 10)
                assert loop.time() - started < 5
                _, pending = await asyncio.wait(storm, timeout=5)
                assert not pending
                assert all(
                    isinstance(t.exception(), tenantkv.BackendUnavailableError) for t in storm
                )
                with pytest.raises(tenantkv.BackendUnavailableError):
                    await asyncio.wait_for(staying.__anext__(), 5)
        # The server, running again, reads what was sent and then the closed connection.
        await until(lambda: subscriber_connections(server) == 0, "the connection closed")
        async with store.subscribe("a") as again:
            assert await store.publish("a", "hello") == 1
            assert await asyncio.wait_for(again.__anext__(), 5) == "hello"
        await store.aclose()
    finally:
        server.stop()


@pytest.mark.parametrize("topology", ["server", "cluster"])
async def test_subscriptions_work_with_a_health_check_interval(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """With ``health_check_interval`` set, the subscriber connection still never sends a
    PING of its own: one would read its reply while the hub's reader is reading."""
    fixture = "redis_cluster" if topology == "cluster" else "redis_server"
    server: FixtureServer | FixtureCluster = request.getfixturevalue(fixture)
    async with tenantkv.open_store(
        server.url, tenant=new_tenant(), health_check_interval=0.02
    ) as store:
        for n in range(8):
            async with store.subscribe(f"hc-{n}") as sub:
                await store.publish(f"hc-{n}", n)
                assert await sub.get(timeout=5) == n
            await asyncio.sleep(0.05)  # idle, nothing subscribed: a health check is due
