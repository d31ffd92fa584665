"""Benchmark: what a multi-tenant service saves with one client and one batch per callback.

Runs everything side by side on one private ``redis-server`` (started here, stopped at
the end; never the machine's shared server), with the ONDC buyer app's flows
(``examples/ondc_service/``):

(a) ``callbacks``: one on_search callback, the predecessor's calls ported one for one
    (GET the entry, GET it again, RPUSH the response, PUBLISH; and with the list TTL
    the predecessor lacked, a separate EXPIRE) against one tenantkv batch (the entry
    read, the push with its TTL and the publish: one script). At each concurrency
    (callbacks in flight at once), the variants run in alternating blocks on the same
    stores. Reported: client-observed latency per callback (p50/p99/max), the server's
    commands per callback (INFO commandstats, the commands a script runs included)
    and round trips per callback (a separate, untimed MONITOR pass: commands the
    client sent, not those a script ran).
(b) ``connections``: server connections (CLIENT LIST) while serving 1,000 tenants, each
    writing a key: one ``open_store`` per tenant (a naive port) against one
    ``open_client`` with 1,000 stores; then with one subscription per tenant.
(c) ``subscriptions``: 50 concurrent subscribers repeatedly entering and leaving
    ``store.subscribe(...)`` (entered = confirmed by the server), each on a new channel
    as a new SSE stream would be, while long-lived subscriptions stay open (800: the
    replay's 700-870 SSE streams) and messages flow to them at a steady rate (400/s:
    its 40 journeys/s with several BPP callbacks each), all on one client. Reported:
    entry and exit times, p50/p99/max; the issue's target is an entry p99 <= 2 ms.
    Beside it, under the same load in alternating blocks, the baseline: the same churn
    on a bare redis-py ``PubSub`` (one shared connection, each SUBSCRIBE/UNSUBSCRIBE
    confirmed by its reply), which is what the library's own work adds to. And the bench
    process's own state meanwhile: how long a ready task waits for the event loop, the
    garbage collector's pauses, the process's CPU share.

``os.getloadavg()`` before and after goes into the JSON: on a busy machine the tails
say more about the machine than about the code.

Usage::

    .venv/bin/python bench/bench_service.py --json docs/bench_service.json
    .venv/bin/python bench/bench_service.py --quick --json results/bench_service.json
    .venv/bin/python bench/bench_service.py --only subscriptions --json /tmp/subs.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

import tenantkv
from tenantkv.cli.loadtest.servers import PrivateServer
from tenantkv.cli.loadtest.target import describe_machine

ENTRY_TTL_MS = 30 * 60 * 1000
TENANTS = 4  # the replay's
RESPONSES_PER_TXN = 10  # callbacks per transaction: lists stay short, as BPP answers do
#: An on_search body: a catalog of about 1 KB.
RESPONSE = {
    "context": {"bpp_id": "bpp-1.example.com", "bpp_uri": "https://bpp-1.example.com/ondc"},
    "message": {"catalog": {"providers": [{"id": f"p{i}", "name": "x" * 80} for i in range(8)]}},
}


@dataclass(frozen=True)
class Settings:
    concurrencies: tuple[int, ...] = (1, 16, 64)
    callbacks: int = 6000  # per variant and concurrency
    block: int = 300  # callbacks per block; the variants alternate block by block
    monitor_callbacks: int = 20
    tenants_served: int = 1000
    subscribers: int = 50
    long_lived: int = 800
    publish_per_s: int = 400
    subscribe_seconds: float = 20.0


QUICK = Settings(
    concurrencies=(1, 16),
    callbacks=600,
    block=100,
    monitor_callbacks=5,
    tenants_served=200,
    subscribers=50,
    long_lived=100,
    publish_per_s=200,
    subscribe_seconds=3.0,
)


def summary_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered) * 1000, 3),
        "p99": round(p99 * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
    }


def command_calls(server: redis.Redis) -> Counter[str]:
    stats: dict[str, Any] = server.info("commandstats")
    return Counter(
        {
            name.removeprefix("cmdstat_"): int(entry["calls"])
            for name, entry in stats.items()
            if name != "cmdstat_info"
        }
    )


# -- (a) one on_search callback, two ways ------------------------------------------------------

Callback = Callable[[tenantkv.TenantStore, str], Awaitable[None]]


async def predecessor(store: tenantkv.TenantStore, txn: str) -> None:
    """``server/src/routes/ondc-compat.ts`` + ``addSearchResponse``, call for call."""
    await store.get(f"search:{txn}")  # the route: traceparent for the span link
    await store.get(f"search:{txn}")  # addSearchResponse: re-create the entry if missing
    await store.list_push(f"search:{txn}:responses", RESPONSE)
    await store.publish(f"search:{txn}:updates", {"type": "response_added", "transactionId": txn})


async def predecessor_with_ttl(store: tenantkv.TenantStore, txn: str) -> None:
    """The same, giving the list the TTL it lacked: one more round trip, not atomic."""
    await store.get(f"search:{txn}")
    await store.get(f"search:{txn}")
    await store.list_push(f"search:{txn}:responses", RESPONSE)
    await store.set_ttl(f"search:{txn}:responses", ENTRY_TTL_MS)
    await store.publish(f"search:{txn}:updates", {"type": "response_added", "transactionId": txn})


async def batched(store: tenantkv.TenantStore, txn: str) -> None:
    """examples/ondc_service/flows.py's on_search: one batch."""
    async with store.batch() as b:
        b.get(f"search:{txn}")
        b.list_push(f"search:{txn}:responses", RESPONSE, ttl_ms=ENTRY_TTL_MS)
        b.publish(f"search:{txn}:updates", {"type": "response_added", "transactionId": txn})


VARIANTS: dict[str, Callback] = {
    "predecessor: GET, GET, RPUSH, PUBLISH": predecessor,
    "predecessor + list TTL: GET, GET, RPUSH, EXPIRE, PUBLISH": predecessor_with_ttl,
    "tenantkv batch: one script": batched,
}


class Transactions:
    """Live transactions of the tenants: a search entry each, RESPONSES_PER_TXN callbacks each."""

    def __init__(self, stores: list[tenantkv.TenantStore]) -> None:
        self.stores = stores
        self._current: list[tuple[tenantkv.TenantStore, str]] = []
        self._used = 0

    async def take(self, count: int) -> list[tuple[tenantkv.TenantStore, str]]:
        """Where the next ``count`` callbacks go (new transactions are written first)."""
        return [await self._next() for _ in range(count)]

    async def _next(self) -> tuple[tenantkv.TenantStore, str]:
        if not self._current or self._used >= RESPONSES_PER_TXN * len(self._current):
            self._current = []
            self._used = 0
            for store in self.stores:
                txn = str(uuid.uuid4())
                await store.set(f"search:{txn}", {"transactionId": txn}, ttl_ms=ENTRY_TTL_MS)
                self._current.append((store, txn))
        self._used += 1
        return self._current[self._used % len(self._current)]


Targets = list[tuple[tenantkv.TenantStore, str]]


async def run_block(callback: Callback, targets: Targets, concurrency: int) -> list[float]:
    """Every callback of ``targets``, ``concurrency`` at a time; the latency of each."""
    latencies: list[float] = []

    async def worker(mine: Targets) -> None:
        for store, txn in mine:
            start = time.perf_counter()
            await callback(store, txn)
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(targets[i::concurrency]) for i in range(concurrency)))
    return latencies


#: Commands a new pooled connection sends once: not part of any callback.
_HANDSHAKE = frozenset({"HELLO", "AUTH", "CLIENT", "SELECT"})


def round_trips(server: PrivateServer, run: Callable[[], None], callbacks: int) -> float:
    """Commands the client sent per callback, as MONITOR sees them (not those of scripts)."""
    sentinel = f"bench-monitor-end-{uuid.uuid4().hex}"
    sent = 0
    ready = threading.Event()

    def watch() -> None:
        nonlocal sent
        with server.client() as client, client.monitor() as monitor:
            ready.set()
            while True:
                command = monitor.next_command()
                if sentinel in command["command"]:
                    return
                name = command["command"].split(" ", 1)[0].upper()
                if command["client_type"] != "lua" and name not in _HANDSHAKE:
                    sent += 1

    watcher = threading.Thread(target=watch)
    watcher.start()
    ready.wait(10)  # entering monitor() has the server's confirmation
    try:
        run()
    finally:
        with server.client() as client:
            client.echo(sentinel)
        watcher.join(30)
    return sent / callbacks


async def bench_callbacks(server: PrivateServer, settings: Settings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with tenantkv.open_client(server.url, max_connections=128) as client:
        stores = [await client.store(f"bench-cb-{i}.example.com") for i in range(TENANTS)]
        transactions = Transactions(stores)
        with server.client() as admin:
            for concurrency in settings.concurrencies:
                latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
                commands: dict[str, Counter[str]] = {name: Counter() for name in VARIANTS}
                order = list(VARIANTS)
                while min(map(len, latencies.values())) < settings.callbacks:
                    for name in order:
                        targets = await transactions.take(settings.block)
                        before = command_calls(admin)
                        latencies[name] += await run_block(VARIANTS[name], targets, concurrency)
                        commands[name] += command_calls(admin) - before
                    order.reverse()  # ABC CBA: a drifting machine hits every variant alike
                for name in VARIANTS:
                    done = len(latencies[name])
                    rows.append(
                        {
                            "variant": name,
                            "concurrency": concurrency,
                            "latency_ms": summary_ms(latencies[name]),
                            "server_commands_per_callback": {
                                command: round(calls / done, 2)
                                for command, calls in sorted(commands[name].items())
                                if calls / done >= 0.005  # not a script load, a handshake
                            },
                        }
                    )
        loop = asyncio.get_running_loop()
        for name, callback in VARIANTS.items():
            targets = await transactions.take(settings.monitor_callbacks)

            def run(callback: Callback = callback, targets: Targets = targets) -> None:
                asyncio.run_coroutine_threadsafe(run_block(callback, targets, 1), loop).result(60)

            trips = await asyncio.to_thread(round_trips, server, run, settings.monitor_callbacks)
            for row in rows:
                if row["variant"] == name:
                    row["round_trips_per_callback"] = trips
        for store in stores:
            await store.clear()
    return rows


# -- (b) connections for many tenants ----------------------------------------------------------


def connections(server: PrivateServer, name: str) -> int:
    with server.client() as admin:
        return sum(1 for entry in admin.client_list() if entry.get("name") == name)


async def bench_connections(server: PrivateServer, settings: Settings) -> dict[str, Any]:
    tenants = [f"bench-conn-{i:04d}.example.com" for i in range(settings.tenants_served)]
    result: dict[str, Any] = {"tenants": len(tenants)}

    name = "bench-open-store"
    stores: list[tenantkv.TenantStore] = []
    start = time.perf_counter()
    try:
        for tenant in tenants:
            store = await tenantkv.open_store(server.url, tenant=tenant, client_name=name)
            stores.append(store)
            await store.set("search:txn-1", {"transactionId": "txn-1"}, ttl_ms=ENTRY_TTL_MS)
        opened = time.perf_counter() - start
        plain = connections(server, name)
        async with _subscribed(stores):
            subscribed = connections(server, name)
    finally:
        for store in stores:
            await store.clear()
            await store.aclose()
    result["open_store per tenant"] = {
        "connections": plain,
        "connections with a subscription per tenant": subscribed,
        "seconds to open and write": round(opened, 2),
    }

    name, pool = "bench-open-client", 16
    async with tenantkv.open_client(server.url, client_name=name, max_connections=pool) as client:
        gate = asyncio.Semaphore(pool)  # redis-py's pool refuses, not waits, past its size

        async def serve(tenant: str) -> tenantkv.TenantStore:
            async with gate:
                store = await client.store(tenant)
                await store.set("search:txn-1", {"transactionId": "txn-1"}, ttl_ms=ENTRY_TTL_MS)
                return store

        start = time.perf_counter()
        stores = await asyncio.gather(*map(serve, tenants))
        opened = time.perf_counter() - start
        plain = connections(server, name)
        async with _subscribed(stores):
            subscribed = connections(server, name)
        for store in stores:
            await store.clear()
    result[f"one open_client (max_connections={pool}), a store per tenant"] = {
        "connections": plain,
        "connections with a subscription per tenant": subscribed,
        "seconds to open and write": round(opened, 2),
    }
    return result


@contextlib.asynccontextmanager
async def _subscribed(stores: list[tenantkv.TenantStore]) -> AsyncIterator[None]:
    """One subscription per store, entered at once, left at the end."""
    subs = [store.subscribe("search:txn-1:updates") for store in stores]
    await asyncio.gather(*(sub.__aenter__() for sub in subs))
    try:
        yield
    finally:
        await asyncio.gather(*(sub.__aexit__(None, None, None) for sub in subs))


# -- (c) subscription confirmation under load -------------------------------------------------

#: Churn: one subscriber's entry and exit of a new channel, then the times of both.
Churn = Callable[[str, float], Awaitable[tuple[float, float]]]


class RawPubSub:
    """The baseline: a bare redis-py ``PubSub`` shared by the churning subscribers, each
    SUBSCRIBE/UNSUBSCRIBE confirmed by its reply (read by one reader task), nothing else."""

    def __init__(self, url: str) -> None:
        self._client = redis.asyncio.Redis.from_url(url)
        self._pubsub = self._client.pubsub()
        self._replies: dict[tuple[str, bytes], asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawPubSub:
        await self._pubsub.connect()  # type: ignore[no-untyped-call]
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._client.aclose()

    async def _read(self) -> None:
        while True:
            message = await self._pubsub.get_message(timeout=None)
            if message is not None and message["type"] in ("subscribe", "unsubscribe"):
                self._replies.pop((message["type"], message["channel"])).set_result(None)

    async def _confirmed(self, kind: str, channel: str, send: Awaitable[Any]) -> None:
        reply = asyncio.get_running_loop().create_future()
        self._replies[(kind, channel.encode())] = reply
        await send
        await reply

    async def churn(self, channel: str, stay_s: float) -> tuple[float, float]:
        start = time.perf_counter()
        await self._confirmed("subscribe", channel, self._pubsub.subscribe(channel))
        entered = time.perf_counter()
        queue: asyncio.Queue[bytes] = asyncio.Queue()  # what a short-lived stream waits on
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(stay_s):
                await queue.get()
        left_at = time.perf_counter()
        await self._confirmed("unsubscribe", channel, self._pubsub.unsubscribe(channel))
        return entered - start, time.perf_counter() - left_at


def tenantkv_churn(store: tenantkv.TenantStore) -> Churn:
    async def churn(channel: str, stay_s: float) -> tuple[float, float]:
        start = time.perf_counter()
        async with store.subscribe(channel) as sub:
            entered = time.perf_counter()
            await sub.get(timeout=stay_s)  # a short-lived stream
            left_at = time.perf_counter()
        return entered - start, time.perf_counter() - left_at

    return churn


class LoopWatch:
    """The bench process's own state meanwhile: how long a ready task waits for the event
    loop (one ``sleep(0)``, sampled every 5 ms), and the garbage collector's pauses."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_start = 0.0

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._gc_start)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        async def probe() -> None:
            while True:
                start = time.perf_counter()
                await asyncio.sleep(0)
                self.waits.append(time.perf_counter() - start)
                await asyncio.sleep(0.005)

        gc.callbacks.append(self._gc)
        task = asyncio.create_task(probe())
        try:
            yield
        finally:
            task.cancel()
            gc.callbacks.remove(self._gc)

    def report(self, seconds: float) -> dict[str, Any]:
        return {
            "ready_task_wait_ms": summary_ms(self.waits),
            "gc_pauses": {
                f"gen{gen}": {
                    "count": len(pauses),
                    "total_ms": round(sum(pauses) * 1000, 1),
                    "max_ms": round(max(pauses, default=0.0) * 1000, 2),
                }
                for gen, pauses in self.pauses.items()
            },
            "process_cpu_share": round(time.process_time() / seconds, 2),
        }


async def bench_subscriptions(server: PrivateServer, settings: Settings) -> dict[str, Any]:
    """The churn of tenantkv subscriptions and, in alternating blocks under the same load,
    of bare redis-py subscriptions (``RawPubSub``): what the library itself adds."""
    async with (
        tenantkv.open_client(server.url, max_connections=64) as client,
        RawPubSub(server.url) as raw,
    ):
        stores = [
            await client.store(f"bench-sub-{i:02d}.example.com")
            for i in range(settings.subscribers)
        ]
        streams = [f"search:{uuid.uuid4()}:updates" for _ in range(settings.long_lived)]
        long_lived = [stores[i % len(stores)].subscribe(ch) for i, ch in enumerate(streams)]
        await asyncio.gather(*(sub.__aenter__() for sub in long_lived))
        received = 0
        stop = asyncio.Event()

        async def drain(sub: tenantkv.TenantSubscription) -> None:
            nonlocal received
            while not stop.is_set():
                if await sub.get(timeout=0.2) is not None:
                    received += 1

        async def publish() -> int:
            interval, sent = 1.0 / settings.publish_per_s, 0
            next_at = time.perf_counter()
            while not stop.is_set():
                i = sent % len(long_lived)
                await stores[i % len(stores)].publish(streams[i], {"type": "response_added"})
                sent += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            return sent

        ways: dict[str, list[Churn]] = {
            "tenantkv": [tenantkv_churn(store) for store in stores],
            "redis-py PubSub": [raw.churn] * settings.subscribers,
        }
        enter: dict[str, list[float]] = {way: [] for way in ways}
        leave: dict[str, list[float]] = {way: [] for way in ways}
        blocks = max(1, round(settings.subscribe_seconds / 2.5))
        block_s = settings.subscribe_seconds / blocks
        # AB BA AB ...: a drifting machine hits both ways alike.
        schedule = [way for block in range(blocks) for way in list(ways)[:: 1 - 2 * (block % 2)]]
        now: dict[str, str] = {"way": schedule[0]}
        churning = asyncio.Event()

        async def subscriber(i: int, rng: random.Random) -> None:
            # Each subscriber goes on the way of the current block as its next stream opens:
            # a block starts without 50 entries at once.
            while churning.is_set():
                way = now["way"]
                entry, exit_ = await ways[way][i](
                    f"search:{uuid.uuid4()}:updates", rng.uniform(0.005, 0.05)
                )
                enter[way].append(entry)
                leave[way].append(exit_)

        drains = [asyncio.create_task(drain(sub)) for sub in long_lived]
        publisher = asyncio.create_task(publish())
        order = " ".join("A" if way == "tenantkv" else "B" for way in schedule)
        watch = LoopWatch()
        cpu_start, started = time.process_time(), time.perf_counter()
        async with watch.watching():
            churning.set()
            subscribers = [
                asyncio.create_task(subscriber(i, random.Random(i)))
                for i in range(settings.subscribers)
            ]
            for way in schedule:
                now["way"] = way
                await asyncio.sleep(block_s)
            churning.clear()
            await asyncio.gather(*subscribers)
        elapsed = time.perf_counter() - started
        process = watch.report(elapsed)
        process["process_cpu_share"] = round((time.process_time() - cpu_start) / elapsed, 2)
        stop.set()
        await asyncio.gather(*drains)
        published = await publisher
        await asyncio.gather(*(sub.__aexit__(None, None, None) for sub in long_lived))
    return {
        "subscribers": settings.subscribers,
        "long_lived_subscriptions": settings.long_lived,
        "publish_per_s": settings.publish_per_s,
        "seconds": settings.subscribe_seconds,
        "blocks": f"{blocks} of {block_s:.1f} s per way: {order} (A: tenantkv, B: bare redis-py)",
        "published": published,
        "received": received,
        "enter_ms": summary_ms(enter["tenantkv"]),
        "exit_ms": summary_ms(leave["tenantkv"]),
        "baseline: bare redis-py PubSub": {
            "enter_ms": summary_ms(enter["redis-py PubSub"]),
            "exit_ms": summary_ms(leave["redis-py PubSub"]),
        },
        "bench_process": process,
        "target": "enter p99 <= 2 ms",
        "target_met": summary_ms(enter["tenantkv"])["p99"] <= 2.0,
    }


# -- the run ------------------------------------------------------------------------------------


SECTIONS: dict[str, Callable[[PrivateServer, Settings], Awaitable[Any]]] = {
    "callbacks": bench_callbacks,
    "connections": bench_connections,
    "subscriptions": bench_subscriptions,
}


async def bench(server: PrivateServer, settings: Settings, sections: list[str]) -> dict[str, Any]:
    return {name: await SECTIONS[name](server, settings) for name in sections}


def print_report(result: dict[str, Any]) -> None:
    print(f"load average before {result['loadavg_before']}, after {result['loadavg_after']}")
    if "callbacks" in result:
        print("\n(a) one on_search callback")
    for row in result.get("callbacks", ()):
        lat = row["latency_ms"]
        print(
            f"  c={row['concurrency']:>3}  {row['variant']:<58} round trips "
            f"{row['round_trips_per_callback']:.1f}  p50 {lat['p50']:.3f}  p99 {lat['p99']:.3f}"
            f"  max {lat['max']:.3f} ms  server {row['server_commands_per_callback']}"
        )
    if "connections" in result:
        print("\n(b) server connections")
    for way, figures in result.get("connections", {}).items():
        print(f"  {way}: {figures}")
    subs = result.get("subscriptions")
    if subs is None:
        return
    raw = subs["baseline: bare redis-py PubSub"]
    print(
        f"\n(c) subscribe: enter {subs['enter_ms']}, exit {subs['exit_ms']}, "
        f"published {subs['published']}, received {subs['received']}, "
        f"target met: {subs['target_met']}\n"
        f"    bare redis-py PubSub: enter {raw['enter_ms']}, exit {raw['exit_ms']}\n"
        f"    bench process: {subs['bench_process']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, default=Path("docs/bench_service.json"))
    parser.add_argument("--quick", action="store_true", help="small settings (a smoke run)")
    parser.add_argument(
        "--only",
        choices=list(SECTIONS),
        action="append",
        help="run this section only (repeatable; default: all)",
    )
    args = parser.parse_args()
    sections = args.only or list(SECTIONS)
    settings = QUICK if args.quick else Settings()
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    with PrivateServer() as server:
        results = asyncio.run(bench(server, settings, sections))
        version = server.version
    result = {
        "settings": asdict(settings),
        "quick": args.quick,
        "redis_version": version,
        "machine": describe_machine(),
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "cpus": os.cpu_count(),
        "loadavg_before": loadavg_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        **results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
