"""The example service (examples/ondc_service/) end to end: uvicorn, HTTP over TCP, a real Redis.

The service runs as a child process (``uvicorn ... --factory``, warnings as
errors) on a free loopback port against this module's private redis-server,
and is killed by PID at the end whatever happened. Tests drive it with httpx
and read its server-sent events as a browser would; they check the store's
side through tenantkv or the server itself. The app's log is checked after
every test: a traceback in it fails the test that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

import tenantkv

from .servers import FixtureServer, free_port

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent
#: The service's pool size in these tests: small, so that the bound is reached.
MAX_CONNECTIONS = 4
CLIENT_NAME = "ondc-service"  # examples/ondc_service/app.py names its connections so
THIRTY_MINUTES_MS = 30 * 60 * 1000
DAY_MS = 24 * 60 * 60 * 1000

Json = dict[str, Any]


@dataclass
class Service:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def service_redis() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture(scope="module")
def service(
    service_redis: FixtureServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The example app in uvicorn, in a child process stopped (then killed) by PID."""
    port = free_port()
    log = tmp_path_factory.mktemp("service") / "uvicorn.log"
    env = {
        **os.environ,
        "ONDC_REDIS_URL": f"{service_redis.url}?max_connections={MAX_CONNECTIONS}",
        "PYTHONWARNINGS": "error",
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.ondc_service.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Service(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_healthy(running)
        yield running
    finally:
        stop(process)


def wait_until_healthy(service: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=service.url, timeout=1.0) as client:
        while True:
            if service.process.poll() is not None:
                raise RuntimeError(f"the service exited at startup:\n{service.log_text()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer /health:\n{service.log_text()}")
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # uvicorn shuts down: the app closes its client
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(autouse=True)
def no_traceback_in_the_service_log(service: Service) -> Iterator[None]:
    before = len(service.log_text())
    yield
    assert service.process.poll() is None, service.log_text()
    new = service.log_text()[before:]
    assert "Traceback" not in new, new
    assert "ERROR" not in new, new


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=service.url, timeout=20.0, limits=limits) as client:
        yield client


def subscriber_id(label: str = "buyer") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}.example.com"


# -- the buyer's and the BPPs' side ------------------------------------------------------------


async def post(http: httpx.AsyncClient, path: str, body: Json) -> Json:
    response = await http.post(path, json=body)
    assert response.status_code == 200, response.text
    reply: Json = response.json()
    return reply


async def get(http: httpx.AsyncClient, path: str, **query: str) -> Json:
    response = await http.get(path, params=query)
    assert response.status_code == 200, response.text
    reply: Json = response.json()
    return reply


async def search(http: httpx.AsyncClient, tenant: str, **body: Any) -> str:
    reply = await post(http, f"/{tenant}/search", {"category_code": "HEALTH", **body})
    txn: str = reply["transaction_id"]
    return txn


async def on_search(http: httpx.AsyncClient, tenant: str, txn: str, bpp: str) -> Json:
    body = {
        "context": {"transaction_id": txn, "bpp_id": bpp, "bpp_uri": f"https://{bpp}/ondc"},
        "message": {"catalog": {"descriptor": {"name": bpp}}},
    }
    return await post(http, f"/{tenant}/on_search", body)


def bpp_of(response: Json) -> str:
    bpp: str = response["context"]["bpp_id"]
    return bpp


@dataclass
class Event:
    name: str
    data: Json


class EventStream:
    """The server-sent events of one open response, read one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, within_s: float = 10.0) -> Event:
        name, data = "message", ""
        async with asyncio.timeout(within_s):
            while True:
                line = await anext(self._lines)
                if line.startswith("event:"):
                    name = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data += line.removeprefix("data:").strip()
                elif not line and data:
                    return Event(name, json.loads(data))


@contextlib.asynccontextmanager
async def stream(http: httpx.AsyncClient, tenant: str, txn: str) -> AsyncIterator[EventStream]:
    async with http.stream("GET", f"/{tenant}/search-stream/{txn}") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response)


async def expect_ttl(store: tenantkv.TenantStore, key: str, low_ms: int, high_ms: int) -> None:
    ttl = await store.get_ttl(key)
    assert ttl is not None, f"{key} has no TTL"
    assert low_ms <= ttl <= high_ms, (key, ttl)


async def subscribers(store: tenantkv.TenantStore, channel: str, expected: int) -> int:
    """How many subscribers a publish on ``channel`` reaches, once it is ``expected`` (<= 5 s)."""
    deadline = time.monotonic() + 5.0
    while True:
        reached = await store.publish(channel, {"type": "probe"})
        if reached == expected or time.monotonic() > deadline:
            return reached
        await asyncio.sleep(0.05)


# -- search: callbacks, the stream, tenants --------------------------------------------------------


async def test_every_response_reaches_the_stream_once_and_stays_in_its_tenant(
    http: httpx.AsyncClient, service_redis: FixtureServer
) -> None:
    a, b = subscriber_id("a"), subscriber_id("b")
    window_ms = 4_000  # then the stream says `complete`, with the count it sent
    txn_a, txn_b = await search(http, a, collection_window_ms=window_ms), await search(http, b)
    bpps_a = [f"bpp-a{i}.example.com" for i in range(6)]
    bpps_b = [f"bpp-b{i}.example.com" for i in range(6)]
    async with stream(http, a, txn_a) as events_a, stream(http, b, txn_b) as events_b:
        initial_a, initial_b = await events_a.next(), await events_b.next()
        assert (initial_a.name, initial_a.data["responses"]) == ("initial", [])
        assert (initial_b.name, initial_b.data["responses"]) == ("initial", [])
        assert initial_a.data["entry"]["transactionId"] == txn_a
        acks = await asyncio.gather(
            *(on_search(http, a, txn_a, bpp) for bpp in bpps_a),
            *(on_search(http, b, txn_b, bpp) for bpp in bpps_b),
            # Tenant b answering a's transaction: lands in b's namespace, never in a's stream.
            on_search(http, b, txn_a, "intruder.example.com"),
        )
        assert [ack["known_transaction"] for ack in acks] == [True] * 12 + [False]
        updates_a = [await events_a.next() for _ in bpps_a]
        updates_b = [await events_b.next() for _ in bpps_b]
        assert {event.name for event in updates_a + updates_b} == {"update"}
        assert Counter(bpp_of(e.data["response"]) for e in updates_a) == Counter(bpps_a)
        assert Counter(bpp_of(e.data["response"]) for e in updates_b) == Counter(bpps_b)
        assert [e.data["responseCount"] for e in updates_a] == list(range(1, 7))
        # Nothing more on a's stream until its window closes: no duplicate, no intruder.
        complete = await events_a.next(within_s=window_ms / 1000 + 5)
        assert (complete.name, complete.data["responseCount"]) == ("complete", 6)

    results_a = await get(http, f"/{a}/search-results", transaction_id=txn_a)
    assert sorted(bpp_of(r) for r in results_a["responses"]) == sorted(bpps_a)
    assert results_a["complete"] is True
    foreign = await get(http, f"/{b}/search-results", transaction_id=txn_a)
    assert foreign["entry"] is None
    assert [bpp_of(r) for r in foreign["responses"]] == ["intruder.example.com"]
    async with tenantkv.open_client(service_redis.url) as client:
        store_a, store_b = await client.store(a), await client.store(b)
        for store, txn in ((store_a, txn_a), (store_b, txn_b), (store_b, txn_a)):
            await expect_ttl(store, f"search:{txn}:responses", 1, THIRTY_MINUTES_MS)
        assert sorted(await store_a.keys()) == sorted(
            [f"search:{txn_a}", f"search:{txn_a}:responses"]
        )


async def fire(
    http: httpx.AsyncClient,
    tenant: str,
    txn: str,
    label: str,
    acked: list[str],
    opened: asyncio.Event,
) -> None:
    """on_search callbacks back to back, each BPP named once; stops a little after ``opened``."""
    for n in range(40):
        bpp = f"{label}-{n}.example.com"
        await on_search(http, tenant, txn, bpp)
        acked.append(bpp)
        if opened.is_set() and n >= 2:
            return


async def test_subscribe_then_read_loses_no_update_between_the_read_and_the_first_message(
    http: httpx.AsyncClient,
) -> None:
    """Callbacks fire back to back while each stream opens: every one is in `initial` or in
    exactly one `update`. A stream that read first and subscribed after would miss those
    landing in between (this test fails for such a flow in most runs of it)."""
    tenant = subscriber_id()
    split_rounds = 0
    for round_ in range(12):
        txn = await search(http, tenant)
        acked: list[str] = []
        opened = asyncio.Event()
        firing = [
            asyncio.create_task(fire(http, tenant, txn, f"r{round_}-l{lane}", acked, opened))
            for lane in range(3)
        ]
        try:
            await asyncio.sleep(0.002 * round_)  # the stream opens at a different moment each round
            async with stream(http, tenant, txn) as events:
                initial = await events.next()
                assert initial.name == "initial"
                seen = Counter(bpp_of(r) for r in initial.data["responses"])
                in_initial = len(seen)
                opened.set()
                await asyncio.gather(*firing)
                while missing := set(acked) - set(seen):
                    try:
                        update = await events.next()
                    except TimeoutError:
                        pytest.fail(f"round {round_}: never streamed: {sorted(missing)}")
                    assert update.name == "update"
                    seen[bpp_of(update.data["response"])] += 1
        finally:
            for task in firing:
                task.cancel()
            await asyncio.gather(*firing, return_exceptions=True)
        assert set(seen) == set(acked)
        assert max(seen.values()) == 1, [bpp for bpp, n in seen.items() if n > 1]
        split_rounds += 0 < in_initial < len(acked)
    # The callbacks did straddle the opening: some in `initial`, the rest as updates.
    assert split_rounds >= 3


async def test_the_stream_ends_at_the_window_or_the_entry_s_end_and_leaves_its_channel(
    http: httpx.AsyncClient, service_redis: FixtureServer
) -> None:
    tenant = subscriber_id()
    async with tenantkv.open_client(service_redis.url) as client:
        store = await client.store(tenant)

        short = await search(http, tenant, collection_window_ms=1_000)
        async with stream(http, tenant, short) as events:
            assert (await events.next()).name == "initial"
            assert (await events.next(within_s=5)).name == "complete"
        assert await subscribers(store, f"search:{short}:updates", 0) == 0

        expiring = await search(http, tenant)
        async with stream(http, tenant, expiring) as events:
            assert (await events.next()).name == "initial"
            assert await subscribers(store, f"search:{expiring}:updates", 1) == 1
            assert await store.delete(f"search:{expiring}")  # as if its TTL had run out
            expired = await events.next(within_s=5)  # checked every second
            assert (expired.name, expired.data["error"]) == ("expired", "Transaction expired")
        assert await subscribers(store, f"search:{expiring}:updates", 0) == 0

        unknown = str(uuid.uuid4())
        async with stream(http, tenant, unknown) as events:
            missing = await events.next()
            assert (missing.name, missing.data["error"]) == ("expired", "Transaction not found")

        # The browser goes away mid-stream: the service leaves the channel.
        left = await search(http, tenant)
        async with stream(http, tenant, left) as events:
            assert (await events.next()).name == "initial"
            assert await subscribers(store, f"search:{left}:updates", 1) == 1
        assert await subscribers(store, f"search:{left}:updates", 0) == 0
        await store.clear()


# -- select and status: entries refreshed on their callback -------------------------------------


async def test_select_and_status_callbacks_refresh_the_entry_store_the_response_and_publish(
    http: httpx.AsyncClient, service_redis: FixtureServer
) -> None:
    tenant = subscriber_id()
    txn = await search(http, tenant)
    selected = await post(
        http,
        f"/{tenant}/select",
        {"transaction_id": txn, "item_id": "plan-1", "provider_id": "p1", "bpp_id": "bpp1"},
    )
    msg = selected["message_id"]
    before = await get(http, f"/{tenant}/select-results", transaction_id=txn, message_id=msg)
    assert before["hasResponse"] is False
    assert before["entry"]["item_id"] == "plan-1"

    status_started = await post(
        http, f"/{tenant}/status", {"order_id": "order-1", "transaction_id": txn}
    )
    assert status_started == {"order_id": "order-1"}

    async with tenantkv.open_client(service_redis.url) as client:
        store = await client.store(tenant)
        select_key, status_key = f"select:{txn}:{msg}", "status:order-1"
        for key in (select_key, status_key):
            assert await store.set_ttl(key, 5_000)  # nearly gone: the callback must refresh it
        async with (
            store.subscribe(f"{select_key}:updates") as select_updates,
            store.subscribe(f"{status_key}:updates") as status_updates,
        ):
            on_select = {
                "context": {"transaction_id": txn, "message_id": msg, "bpp_id": "bpp1"},
                "message": {"order": {"quote": {"price": {"value": "1200"}}}},
            }
            assert (await post(http, f"/{tenant}/on_select", on_select))["known_transaction"]
            on_status = {
                "context": {"transaction_id": txn, "message_id": "m2"},
                "message": {"order": {"id": "order-1", "payment": {"status": "PAID"}}},
            }
            assert (await post(http, f"/{tenant}/on_status", on_status))["known_transaction"]
            update = await select_updates.get(timeout=5)
            assert update == {"type": "response_received", "transactionId": txn, "messageId": msg}
            assert await status_updates.get(timeout=5) == {
                "type": "response_received",
                "orderId": "order-1",
            }
        for key, ttl_ms in ((select_key, THIRTY_MINUTES_MS), (status_key, DAY_MS)):
            for stored in (key, f"{key}:response"):
                await expect_ttl(store, stored, ttl_ms - 60_000, ttl_ms)

        after = await get(http, f"/{tenant}/select-results", transaction_id=txn, message_id=msg)
        assert after["hasResponse"] is True
        assert after["response"]["message"] == on_select["message"]
        status_now = await get(http, f"/{tenant}/status-results", order_id="order-1")
        assert status_now["response"]["message"]["order"]["payment"] == {"status": "PAID"}

        # A callback for nothing known is acknowledged, stored with its TTL, and says so.
        stray = {"context": {"transaction_id": "txn-x", "message_id": "m-x"}, "message": {}}
        assert (await post(http, f"/{tenant}/on_select", stray))["known_transaction"] is False
        await expect_ttl(store, "select:txn-x:m-x:response", 1, THIRTY_MINUTES_MS)
        await store.clear()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/bad@tenant/search", {}),
        ("/{tenant}/on_search", {"message": {}}),
        ("/{tenant}/on_select", {"context": {"transaction_id": "t"}}),
        ("/{tenant}/on_status", {"context": {"transaction_id": "t"}, "message": {}}),
        ("/{tenant}/search", {"collection_window_ms": "soon"}),
        ("/{tenant}/select", ["not", "an", "object"]),
    ],
)
async def test_bad_requests_are_400_and_write_nothing(
    http: httpx.AsyncClient, service_redis: FixtureServer, path: str, body: Any
) -> None:
    tenant = subscriber_id()
    response = await http.post(path.format(tenant=tenant), json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    async with tenantkv.open_store(service_redis.url, tenant=tenant) as store:
        assert await store.count_keys() == 0


# -- many tenants, one client --------------------------------------------------------------------


async def test_a_thousand_tenants_share_the_pool_and_one_pubsub_connection(
    http: httpx.AsyncClient, service_redis: FixtureServer
) -> None:
    """1,000 subscriber IDs searching 64 at a time while 20 live streams wait for updates:
    the service never holds more than its pool's size plus the pub/sub connection."""
    tag = uuid.uuid4().hex[:8]
    tenants = [f"buyer-{i:04d}-{tag}.example.com" for i in range(1000)]
    streaming = tenants[::50]
    seen_total: list[int] = []  # the service's connections on the server
    seen_pubsub: list[int] = []  # of which in pub/sub mode
    sampling = True

    async def sample(server: aioredis.Redis) -> None:
        while sampling:
            clients = [c for c in await server.client_list() if c.get("name") == CLIENT_NAME]
            seen_total.append(len(clients))
            seen_pubsub.append(sum("P" in c["flags"] for c in clients))
            await asyncio.sleep(0.01)

    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            aioredis.Redis(host=service_redis.host, port=service_redis.port, decode_responses=True)
        )
        sampler = asyncio.create_task(sample(server))
        try:
            txns = {tenant: await search(http, tenant) for tenant in streaming}
            streams = [
                await stack.enter_async_context(stream(http, tenant, txns[tenant]))
                for tenant in streaming
            ]
            for events in streams:
                assert (await events.next()).name == "initial"

            gate = asyncio.Semaphore(64)

            async def one(tenant: str) -> str:
                async with gate:
                    txn = await search(http, tenant)
                    if tenant in txns:
                        await on_search(http, tenant, txns[tenant], f"bpp-{tenant}")
                    return txn

            searched = await asyncio.gather(*(one(tenant) for tenant in tenants))
            for tenant, events in zip(streaming, streams, strict=True):
                update = await events.next()
                assert bpp_of(update.data["response"]) == f"bpp-{tenant}"

            async def entry(tenant: str, txn: str) -> Any:
                async with gate:
                    return (await get(http, f"/{tenant}/search-results", transaction_id=txn))[
                        "entry"
                    ]

            entries = await asyncio.gather(*map(entry, tenants, searched))
            assert [e["transactionId"] for e in entries] == searched
        finally:
            sampling = False
            await sampler
    assert len(seen_total) > 10
    # The pool, plus the pub/sub connection (which stays open, idle, between subscriptions).
    assert max(seen_total) <= MAX_CONNECTIONS + 1, Counter(seen_total)
    assert max(seen_total) >= 3  # the requests did overlap on the server's side
    assert max(seen_pubsub) == 1, Counter(seen_pubsub)
    async with tenantkv.open_client(service_redis.url) as client:
        for tenant in tenants:
            await (await client.store(tenant)).clear()
