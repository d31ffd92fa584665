"""A deadline or a cancel stops every call of the store, on Python 3.11 as on 3.12.

On 3.11, redis-py's ``asyncio.wait_for`` (used whenever a ``socket_timeout``
is set) swallows a cancellation that arrives as its I/O completes (CPython
gh-86296): the call, and the code after it, ran on past an
``asyncio.timeout`` as if nothing had happened. Stores here are opened with a
socket timeout, as production code does, so that the lost cancellation would
show.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tenantkv import TenantStore

from .conftest import STORE_KINDS, OpenTenant, StoreKind

Call = Callable[[TenantStore], Awaitable[Any]]


async def _subscribe_and_wait(store: TenantStore) -> None:
    async with store.subscribe("updates") as sub:
        await sub.__anext__()  # nobody publishes: only the deadline ends this


async def _enter_subscription(store: TenantStore) -> None:
    async with store.subscribe("updates"):
        pass


async def _first_key(store: TenantStore) -> None:
    async for _ in store.iter_keys():
        break


#: Every public coroutine of a store, and of a subscription (entering it, waiting for a message).
CALLS: dict[str, Call] = {
    "set": lambda s: s.set("k", 1, ttl_ms=60_000),
    "get": lambda s: s.get("k"),
    "get_many": lambda s: s.get_many(["k", "l"]),
    "set_many": lambda s: s.set_many({"a": 1, "b": 2}),
    "delete": lambda s: s.delete("a"),
    "exists": lambda s: s.exists("k"),
    "set_ttl": lambda s: s.set_ttl("k", 60_000),
    "get_ttl": lambda s: s.get_ttl("k"),
    "list_push": lambda s: s.list_push("l", 1),
    "list_range": lambda s: s.list_range("l", 0, -1),
    "list_get_all": lambda s: s.list_get_all("l"),
    "list_length": lambda s: s.list_length("l"),
    "publish": lambda s: s.publish("updates", {"n": 1}),
    "keys": lambda s: s.keys(),
    "iter_keys": _first_key,
    "count_keys": lambda s: s.count_keys(),
    "count_keys(pattern)": lambda s: s.count_keys("k*"),
    "stats": lambda s: s.stats(),
    "clear": lambda s: s.clear(),
    "subscribe (entry)": _enter_subscription,
    "subscription message wait": _subscribe_and_wait,
}
INDEX_CALLS: dict[str, Call] = {
    "reindex": lambda s: s.reindex(),
    "verify_index": lambda s: s.verify_index(),
    "prune_index": lambda s: s.prune_index(),
}


def _options(kind: StoreKind) -> dict[str, Any]:
    return {} if kind.topology is None else {"socket_timeout": 5.0}


def _calls(kind: StoreKind) -> dict[str, Call]:
    return {**CALLS, **INDEX_CALLS} if kind.options.get("index") else CALLS


async def _seed(store: TenantStore) -> None:
    await store.set_many({f"k{i}": i for i in range(50)})
    await store.list_push("l", 1)


#: The kinds whose calls wait on a server (memory:// calls never suspend: nothing to cut).
SERVER_KINDS = [
    pytest.param(kind, id=kind.name, marks=kind.marks) for kind in STORE_KINDS if kind.topology
]


@pytest.mark.parametrize("store_kind", SERVER_KINDS, indirect=True)
async def test_every_call_raises_timeout_error_at_a_deadline(
    open_tenant: OpenTenant, store_kind: StoreKind
) -> None:
    store = await open_tenant(**_options(store_kind))
    ran_past: list[str] = []
    for name, call in _calls(store_kind).items():
        for _ in range(5):
            await _seed(store)
            try:
                async with asyncio.timeout(0):
                    await call(store)
            except TimeoutError:
                continue
            ran_past.append(name)
    assert ran_past == []
    # A cancelled command leaves no reply behind on a pooled connection.
    await store.set("after", "ok")
    assert await store.get("after") == "ok"
    assert store.backend.subscription_count == 0


async def test_a_loop_of_calls_stops_when_cancelled(
    open_tenant: OpenTenant, store_kind: StoreKind
) -> None:
    store = await open_tenant(**_options(store_kind))
    await _seed(store)
    calls = list(_calls(store_kind).values())
    rng = random.Random(9)
    for _ in range(25):
        done: list[int] = [0]

        async def work(done: list[int] = done) -> None:
            while True:
                await rng.choice(calls)(store)
                done[0] += 1
                await asyncio.sleep(0)  # memory:// calls never suspend: let the cancel in

        task = asyncio.create_task(work())
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
        completed_at_cancel = done[0]
        finished, _ = await asyncio.wait([task], timeout=5)
        assert finished, "the cancelled task went on running"
        assert task.cancelled()
        assert done[0] <= completed_at_cancel + 1  # at most the call in flight completed
    await _seed(store)
    assert await store.get("k1") == 1
