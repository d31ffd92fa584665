"""The store contract: what every backend (memory, Redis, and every other kind) must do alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import tenantkv
from tenantkv import TenantStore, escape_glob

from .conftest import OpenTenant, new_tenant

#: The contract suite: every test with a server runs on every server kind (conftest).
pytestmark = pytest.mark.matrix


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Poll ``check`` until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("condition did not become true in time")
        await asyncio.sleep(0.01)


JSON_VALUES: list[Any] = [
    0,
    -17,
    2**62,
    3.5,
    "",
    "text with ünïcödé and \x00 and emoji 🚀",
    True,
    False,
    [],
    [1, "two", None, {"x": [3]}],
    {"nested": {"deep": [1, 2, {"k": "v"}]}, "n": None},
]


# -- values -----------------------------------------------------------------


@pytest.mark.parametrize("value", JSON_VALUES, ids=[repr(v)[:20] for v in JSON_VALUES])
async def test_set_get_round_trips_json_values(store: TenantStore, value: Any) -> None:
    await store.set("k", value)
    assert await store.get("k") == value


async def test_get_missing_is_none_and_none_is_a_value(store: TenantStore) -> None:
    assert await store.get("missing") is None
    await store.set("null", None)
    assert await store.exists("null")
    assert await store.get("null") is None


async def test_overwrite_replaces_value_and_drops_ttl(store: TenantStore) -> None:
    await store.set("k", 1, ttl_ms=60_000)
    await store.set("k", 2)
    assert await store.get("k") == 2
    assert await store.get_ttl("k") is None


async def test_ttl_is_set_with_the_value_in_ms(store: TenantStore) -> None:
    await store.set("k", "v", ttl_ms=60_000)
    ttl = await store.get_ttl("k")
    assert ttl is not None
    assert 59_000 < ttl <= 60_000
    assert await store.get_ttl("no-ttl") is None
    await store.set("no-ttl", 1)
    assert await store.get_ttl("no-ttl") is None


async def test_key_expires_after_its_ttl(store: TenantStore) -> None:
    await store.set("short", "v", ttl_ms=50)
    await store.set("long", "v", ttl_ms=60_000)

    async def gone() -> bool:
        return await store.get("short") is None

    await eventually(gone)
    assert not await store.exists("short")
    assert await store.get_ttl("short") is None
    assert await store.keys() == ["long"]
    assert await store.count_keys() == 1


async def test_set_ttl_and_get_ttl(store: TenantStore) -> None:
    assert not await store.set_ttl("missing", 1000)
    await store.set("k", 1)
    assert await store.set_ttl("k", 30_000)
    ttl = await store.get_ttl("k")
    assert ttl is not None
    assert 29_000 < ttl <= 30_000
    assert await store.set_ttl("k", 40)

    async def gone() -> bool:
        return not await store.exists("k")

    await eventually(gone)


async def test_delete_and_exists(store: TenantStore) -> None:
    assert not await store.delete("k")
    await store.set("k", 1)
    assert await store.exists("k")
    assert await store.delete("k")
    assert not await store.exists("k")
    assert await store.get("k") is None
    await store.list_push("l", 1)
    assert await store.delete("l")
    assert await store.list_length("l") == 0


async def test_get_many_and_set_many(store: TenantStore) -> None:
    assert await store.get_many([]) == []
    await store.set_many({})
    await store.set_many({"a": 1, "b": [2], "c": {"x": 3}})
    assert await store.get_many(["c", "missing", "a", "b"]) == [{"x": 3}, None, 1, [2]]
    await store.set_many({"t1": 1, "t2": 2}, ttl_ms=60_000)
    for key in ("t1", "t2"):
        ttl = await store.get_ttl(key)
        assert ttl is not None
        assert 0 < ttl <= 60_000
    assert await store.get_ttl("a") is None


async def test_set_many_of_thousands_of_keys(store: TenantStore) -> None:
    """Batches larger than the backends' internal slices (1,000 keys) are written whole."""
    with_ttl = {f"t{i:04d}": i for i in range(2_500)}
    await store.set_many(with_ttl, ttl_ms=60_000)
    # Overwriting without a TTL drops the TTL, as SET does, in every slice.
    plain = {f"t{i:04d}": -i for i in range(0, 2_500, 2)}
    await store.set_many(plain)
    values = await store.get_many(list(with_ttl))
    assert values == [-i if i % 2 == 0 else i for i in range(2_500)]
    for key in ("t0000", "t1000", "t2498"):
        assert await store.get_ttl(key) is None
    for key in ("t0001", "t1001", "t2499"):
        ttl = await store.get_ttl(key)
        assert ttl is not None
        assert 0 < ttl <= 60_000
    assert await store.count_keys() == 2_500


async def test_get_many_reads_a_list_key_as_missing(store: TenantStore) -> None:
    await store.list_push("l", 1)
    await store.set("v", 1)
    assert await store.get_many(["l", "v"]) == [None, 1]


# -- lists ------------------------------------------------------------------


async def test_list_push_range_length(store: TenantStore) -> None:
    assert await store.list_length("l") == 0
    assert await store.list_range("l", 0, -1) == []
    for i in range(10):
        assert await store.list_push("l", {"i": i}) == i + 1
    assert await store.list_length("l") == 10
    assert await store.list_range("l", 0, 2) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert await store.list_range("l", -2, -1) == [{"i": 8}, {"i": 9}]
    assert await store.list_range("l", 8, 100) == [{"i": 8}, {"i": 9}]
    assert await store.list_range("l", -100, 0) == [{"i": 0}]
    assert await store.list_range("l", 5, 2) == []
    assert await store.list_range("l", 20, 30) == []


async def test_list_get_all_reads_in_slices(store: TenantStore) -> None:
    for i in range(10):
        await store.list_push("l", i)
    assert await store.list_get_all("l", slice_size=3) == list(range(10))
    assert await store.list_get_all("l", slice_size=10) == list(range(10))
    assert await store.list_get_all("l") == list(range(10))
    assert await store.list_get_all("missing") == []


async def test_list_keeps_ttl_of_existing_key(store: TenantStore) -> None:
    await store.list_push("l", 1)
    assert await store.set_ttl("l", 60_000)
    await store.list_push("l", 2)
    ttl = await store.get_ttl("l")
    assert ttl is not None
    assert ttl > 0


async def test_wrong_type_is_a_clear_error(store: TenantStore) -> None:
    await store.list_push("l", 1)
    await store.set("v", 1)
    with pytest.raises(tenantkv.WrongTypeError) as info:
        await store.get("l")
    assert info.value.command == "GET"
    with pytest.raises(tenantkv.WrongTypeError) as info:
        await store.list_push("v", 2)
    assert info.value.command == "RPUSH"
    with pytest.raises(tenantkv.WrongTypeError) as info:
        await store.list_range("v", 0, -1)
    assert info.value.command == "LRANGE"
    with pytest.raises(tenantkv.WrongTypeError) as info:
        await store.list_length("v")
    assert info.value.command == "LLEN"
    assert await store.get("v") == 1
    assert await store.list_get_all("l") == [1]
    # SET replaces any kind of value, as in Redis.
    await store.set("l", "now a value")
    assert await store.get("l") == "now a value"


async def test_bytes_that_are_not_json_raise_decode_error(store: TenantStore) -> None:
    physical = store.namespace.key("foreign")
    await store.backend.set(physical, b"\xffnot json{", None)
    with pytest.raises(tenantkv.DecodeError) as info:
        await store.get("foreign")
    assert info.value.key == "foreign"
    with pytest.raises(tenantkv.DecodeError):
        await store.get_many(["foreign"])


# -- pub/sub ----------------------------------------------------------------


async def next_message(sub: tenantkv.TenantSubscription, timeout_s: float = 5.0) -> Any:
    return await asyncio.wait_for(sub.__anext__(), timeout_s)


async def test_publish_reaches_subscriber_and_unsubscribes_on_exit(store: TenantStore) -> None:
    assert await store.publish("updates", 1) == 0
    async with store.subscribe("updates") as sub:
        assert await store.publish("updates", {"n": 1}) == 1
        assert await store.publish("updates", [2]) == 1
        assert await next_message(sub) == {"n": 1}
        assert await next_message(sub) == [2]
        assert (await store.stats()).subscriptions == 1
    assert await store.publish("updates", 3) == 0
    assert (await store.stats()).subscriptions == 0


async def test_subscriptions_of_one_store_share_one_connection(store: TenantStore) -> None:
    async with store.subscribe("ch") as first, store.subscribe("ch") as second:
        # One subscriber connection: PUBLISH counts it once.
        assert await store.publish("ch", "hello") == 1
        assert await next_message(first) == "hello"
        assert await next_message(second) == "hello"
        async with store.subscribe("other") as third:
            assert await store.publish("other", 7) == 1
            assert await next_message(third) == 7
        assert (await store.stats()).subscriptions == 2
    assert await store.publish("ch", "gone") == 0


async def test_one_subscription_leaving_keeps_the_other(store: TenantStore) -> None:
    async with store.subscribe("ch") as staying:
        async with store.subscribe("ch"):
            pass
        assert await store.publish("ch", "still here") == 1
        assert await next_message(staying) == "still here"


async def test_closing_a_store_ends_its_subscriptions(open_tenant: OpenTenant) -> None:
    listener = await open_tenant()
    publisher = await open_tenant(listener.tenant)
    async with listener.subscribe("ch") as sub:
        await listener.aclose()
        with pytest.raises(tenantkv.StoreClosedError):
            await next_message(sub)

        async def nobody_listens() -> bool:
            return await publisher.publish("ch", "after close") == 0

        await eventually(nobody_listens)
    # A later store starts without subscriptions of its own.
    later = await open_tenant(listener.tenant)
    assert (await later.stats()).subscriptions == 0


async def test_publish_reaches_other_stores_of_the_tenant_only(open_tenant: OpenTenant) -> None:
    tenant = new_tenant()
    publisher = await open_tenant(tenant)
    listener = await open_tenant(tenant)
    stranger = await open_tenant(tenant + "x")
    async with listener.subscribe("ch") as sub, stranger.subscribe("ch") as other:
        assert await publisher.publish("ch", "for tenant") == 1
        assert await next_message(sub) == "for tenant"
        assert await stranger.publish("ch", "for stranger") == 1
        assert await next_message(other) == "for stranger"
        # The listener never sees the other tenant's message.
        assert await publisher.publish("ch", "second") == 1
        assert await next_message(sub) == "second"


# -- enumeration --------------------------------------------------------------


async def test_keys_iter_keys_count_keys(store: TenantStore) -> None:
    assert await store.keys() == []
    assert await store.count_keys() == 0
    await store.set_many({f"search:{i}": i for i in range(25)})
    for i in range(5):
        await store.list_push(f"search:{i}:responses", i)
    await store.set("select:1:m1", 1)
    expected = {f"search:{i}" for i in range(25)} | {f"search:{i}:responses" for i in range(5)}
    assert set(await store.keys("search:*")) == expected
    assert sorted(await store.keys("search:*")) == sorted(expected)  # no repeats
    assert await store.count_keys() == 31
    assert await store.count_keys("select:*") == 1
    assert await store.count_keys("search:?") == 10
    assert await store.keys("search:1?:responses") == []
    streamed = [key async for key in store.iter_keys("search:*", count=3)]
    assert sorted(streamed) == sorted(expected)
    assert sorted(await store.keys("*", count=1)) == sorted(await store.keys())


async def test_glob_rules_match_redis(store: TenantStore) -> None:
    await store.set_many({k: 1 for k in ["a", "b", "c", "ab", "x-1", "x-9", "hello", "hallo"]})
    assert sorted(await store.keys("[a-b]")) == ["a", "b"]
    assert sorted(await store.keys("[b-a]")) == ["a", "b"]
    assert sorted(await store.keys("[^a]")) == ["b", "c"]
    assert sorted(await store.keys("h[ae]llo")) == ["hallo", "hello"]
    assert sorted(await store.keys("x-[0-5]")) == ["x-1"]
    assert await store.keys("?b") == ["ab"]


async def test_glob_characters_in_keys_round_trip_and_match_literally(store: TenantStore) -> None:
    nasty = ["a*b", "a?b", "a[b]c", "back\\slash", "{tag}", "x:y:z", "sp ace", "*", "ümlaut"]
    for key in nasty:
        await store.set(key, key)
    await store.set("axb", "decoy")
    for key in nasty:
        assert await store.get(key) == key
        assert await store.keys(escape_glob(key)) == [key]
    assert sorted(await store.keys()) == sorted([*nasty, "axb"])
    assert sorted(await store.keys("a?b")) == sorted(["a*b", "a?b", "axb"])


async def test_clear_deletes_every_key_of_the_tenant(store: TenantStore) -> None:
    await store.set_many({f"k{i}": i for i in range(50)})
    await store.list_push("list", 1)
    assert await store.clear(count=7) == 51
    assert await store.keys() == []
    assert await store.count_keys() == 0
    assert await store.clear() == 0


async def test_clear_reports_its_progress_batch_by_batch(store: TenantStore) -> None:
    await store.set_many({f"k{i}": i for i in range(3000)})
    seen: list[tenantkv.Progress] = []
    assert await store.clear(count=200, progress=seen.append) == 3000
    assert len(seen) >= 10  # batch by batch, not once at the end
    assert {p.operation for p in seen} == {"clear"}
    done = [p.done for p in seen]
    assert done == sorted(done)
    assert done[-1] == 3000
    elapsed = [p.elapsed_s for p in seen]
    assert elapsed == sorted(elapsed)
    # The index knows its count cheaply; a SCAN does not know what it will find.
    expected_total = 3000 if store.strategy == "index" else None
    assert {p.total for p in seen} == {expected_total}


class StopClearing(Exception):
    """What a progress callback raises to stop the operation."""


async def test_a_progress_callback_that_raises_stops_the_clear(store: TenantStore) -> None:
    await store.set_many({f"k{i}": i for i in range(3000)})

    def stop(progress: tenantkv.Progress) -> None:
        raise StopClearing(progress.done)

    with pytest.raises(StopClearing):
        await store.clear(count=100, progress=stop)
    # What was deleted stays deleted; the next clear finishes the job.
    assert 0 < await store.clear() < 3000
    assert await store.keys() == []
    with pytest.raises(tenantkv.InvalidArgumentTypeError, match="progress"):
        await store.clear(progress="not callable")  # type: ignore[arg-type]


async def test_stats_counts_keys(store: TenantStore) -> None:
    await store.set_many({"a": 1, "b": 2})
    await store.list_push("c", 1)
    stats = await store.stats()
    assert stats.tenant == store.tenant
    assert stats.keys == 3
    assert stats.subscriptions == 0


@pytest.mark.parametrize(
    ("first", "second"), [("a", "a.b"), ("a", "ab"), ("a", "a-"), ("a.b", "a"), ("x_1", "x_")]
)
async def test_tenants_whose_ids_are_prefixes_stay_separate(
    open_tenant: OpenTenant, first: str, second: str
) -> None:
    suffix = new_tenant("")
    one = await open_tenant(first + suffix)
    two = await open_tenant(second + suffix)
    await one.set_many({"k1": 1, "k2": 2, "shared": "one"})
    await two.set_many({"k3": 3, "shared": "two"})
    assert sorted(await one.keys()) == ["k1", "k2", "shared"]
    assert sorted(await two.keys()) == ["k3", "shared"]
    assert await one.count_keys() == 3
    assert await two.count_keys() == 2
    assert await one.get("shared") == "one"
    assert await two.get("k1") is None
    assert await one.clear() == 3
    assert sorted(await two.keys()) == ["k3", "shared"]
    assert await two.get("shared") == "two"


async def test_app_prefix_separates_apps(open_tenant: OpenTenant) -> None:
    tenant = new_tenant()
    app1 = await open_tenant(tenant, prefix="app1")
    app2 = await open_tenant(tenant, prefix="app2")
    await app1.set("k", 1)
    assert await app2.keys() == []
    assert await app2.get("k") is None


async def test_stores_on_one_url_share_a_keyspace(open_tenant: OpenTenant) -> None:
    tenant = new_tenant()
    writer = await open_tenant(tenant)
    reader = await open_tenant(tenant)
    await writer.set("k", "shared")
    assert await reader.get("k") == "shared"
    assert await reader.keys() == ["k"]


async def test_closed_store_refuses_calls(open_tenant: OpenTenant) -> None:
    store = await open_tenant()
    await store.aclose()
    await store.aclose()
    with pytest.raises(tenantkv.StoreClosedError):
        await store.get("k")
    with pytest.raises(tenantkv.StoreClosedError):
        await store.keys()


async def test_get_with_a_timeout_returns_none_and_cancels_nothing(store: TenantStore) -> None:
    async with store.subscribe("updates") as sub:
        assert await sub.get(timeout=0.05) is None
        assert await sub.get(timeout=0) is None
        assert await store.publish("updates", {"n": 1}) == 1
        assert await sub.get(timeout=5) == {"n": 1}
        await store.publish("updates", {"n": 2})
        await asyncio.sleep(0.05)
        assert await sub.get(timeout=0) == {"n": 2}  # already there: no wait at all
        assert await sub.get(timeout=0.01) is None
        assert (await store.stats()).subscriptions == 1  # still subscribed after timeouts
    with pytest.raises(tenantkv.StoreClosedError):
        await sub.get(timeout=0.1)


async def test_subscribe_then_read_misses_no_update(store: TenantStore) -> None:
    """The safe order for "initial state + every update": subscribe, then read. Every
    update is in the state read, or arrives as a message after it (some in both)."""
    stop = asyncio.Event()
    pushed: list[int] = []

    async def callbacks() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            async with store.batch() as b:
                b.list_push("responses", n, ttl_ms=60_000)
                b.publish("updates", n)
            pushed.append(n)
            await asyncio.sleep(0)

    writer = asyncio.create_task(callbacks())
    try:
        for _ in range(5):
            await asyncio.sleep(0.01)
            async with store.subscribe("updates") as sub:
                seen = set(await store.list_get_all("responses"))
                await asyncio.sleep(0.02)
                target = pushed[-1]
                while (message := await sub.get(timeout=5)) is not None:
                    seen.add(message)
                    if message >= target:
                        break
                assert set(range(1, target + 1)) <= seen
    finally:
        stop.set()
        await writer
