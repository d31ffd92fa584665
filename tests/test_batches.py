"""Batches and list TTLs: the contract every backend kind keeps (index and shards included)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

import tenantkv
from tenantkv import TenantStore

from .conftest import new_tenant
from .servers import FixtureServer


def same_shard(store: TenantStore, *names: str) -> list[str]:
    """``names`` with a suffix each, so that all of them live in one shard of ``store``."""
    namespace = store.namespace
    target = namespace.shard_of(names[0])
    out = [names[0]]
    for name in names[1:]:
        n = 0
        while namespace.shard_of(f"{name}{n}") != target:
            n += 1
        out.append(f"{name}{n}")
    return out


async def test_a_batch_applies_its_calls_in_order_and_returns_each_result(
    store: TenantStore,
) -> None:
    await store.set("entry", {"status": "open"})
    async with store.batch() as b:
        before = b.get("entry")
        b.set("entry", {"status": "answered"}, ttl_ms=60_000)
        after = b.get("entry")
        length = b.list_push("responses", {"bpp": 1}, ttl_ms=60_000)
        again = b.list_push("responses", {"bpp": 2})
        reached = b.publish("updates", {"count": 2})
        missing = b.delete("nothing-here")
        present = b.exists("entry")
        refreshed = b.set_ttl("entry", 120_000)
        many = b.set_many({"a": 1, "b": 2}, ttl_ms=60_000)
        gone = b.delete("a")
    assert before.value == {"status": "open"}
    assert after.value == {"status": "answered"}
    assert (length.value, again.value, reached.value) == (1, 2, 0)
    assert (missing.value, present.value, refreshed.value, many.value, gone.value) == (
        False,
        True,
        True,
        None,
        True,
    )
    assert b.results == [
        {"status": "open"},
        None,
        {"status": "answered"},
        1,
        2,
        0,
        False,
        True,
        True,
        None,
        None,
        True,
    ]
    assert await store.get("entry") == {"status": "answered"}
    ttl = await store.get_ttl("entry")
    assert ttl is not None
    assert 60_000 < ttl <= 120_000
    assert await store.list_get_all("responses") == [{"bpp": 1}, {"bpp": 2}]
    assert await store.get_ttl("responses") is not None
    assert sorted(await store.keys()) == ["b", "entry", "responses"]


async def test_an_exception_in_the_block_sends_nothing(store: TenantStore) -> None:
    b = store.batch()

    async def handler() -> None:
        async with b:
            b.set("k", 1)
            b.list_push("l", 1)
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await handler()
    assert await store.keys() == []
    with pytest.raises(LookupError):
        _ = b.results


async def test_a_bad_call_raises_when_queued_and_nothing_is_sent(store: TenantStore) -> None:
    async with store.batch() as b:
        b.set("k", 1)
        with pytest.raises(tenantkv.InvalidValueError):
            b.set("bad", float("nan"))
        with pytest.raises(tenantkv.InvalidKeyError):
            b.delete("")
        with pytest.raises(tenantkv.InvalidValueError):
            b.list_push("l", 1, ttl_ms=0)
        with pytest.raises(tenantkv.InvalidArgumentTypeError):
            b.set_many([("a", 1)])  # type: ignore[arg-type]
        assert await store.keys() == []  # nothing is sent before the block exits
    assert await store.keys() == ["k"]


async def test_a_wrong_type_stops_the_whole_batch_before_any_write(store: TenantStore) -> None:
    listed, value, fresh = same_shard(store, "list", "value", "fresh")
    await store.list_push(listed, 1)
    await store.set(value, "v")

    async def mistyped(wrong: str) -> None:
        async with store.batch() as b:
            b.set(fresh, 1)
            b.delete(value)
            if wrong == "get":
                b.get(listed)
            else:
                b.set(value, "again")
                b.list_push(value, 2)

    for wrong in ("get", "list_push"):
        with pytest.raises(tenantkv.WrongTypeError):
            await mistyped(wrong)
        assert not await store.exists(fresh)
        assert await store.get(value) == "v"
    # The types an earlier call leaves count: delete then push is fine.
    async with store.batch() as b:
        b.delete(value)
        pushed = b.list_push(value, 1)
    assert pushed.value == 1


async def test_a_batch_is_one_round_trip_and_its_publish_follows_its_writes(
    store: TenantStore,
) -> None:
    async with store.subscribe("updates") as sub:
        async with store.batch() as b:
            b.list_push("responses", "r1", ttl_ms=60_000)
            b.set("entry", {"n": 1}, ttl_ms=60_000)
            reached = b.publish("updates", {"n": 1})
        assert reached.value == 1
        message = await sub.get(timeout=5)
        assert message == {"n": 1}
        # What the subscriber reads on the message already holds the batch's writes.
        assert await store.get("entry") == {"n": 1}
        assert await store.list_length("responses") == 1


async def test_a_batch_is_sent_once(store: TenantStore) -> None:
    async with store.batch() as b:
        b.set("k", 1)
    with pytest.raises(tenantkv.StoreClosedError):
        b.set("k", 2)
    with pytest.raises(tenantkv.StoreClosedError):
        await b.send()
    empty = store.batch()
    await empty.send()
    assert empty.results == []


async def test_results_are_there_only_once_the_batch_was_sent(store: TenantStore) -> None:
    b = store.batch()
    many = b.set_many({"a": 1, "b": 2})
    one = b.set("c", 3)
    assert not many.done
    with pytest.raises(LookupError):
        _ = many.value
    with pytest.raises(LookupError):
        _ = b.results
    await b.send()
    assert many.done
    assert one.done
    assert many.value is None
    assert await store.get_many(["a", "b", "c"]) == [1, 2, 3]


@pytest.mark.redis
async def test_a_value_that_is_not_json_fails_its_own_result_only() -> None:
    """A get in a batch meets a value another program wrote: the batch was applied, the
    other results are there, and only that call's value raises."""
    with FixtureServer() as server:
        async with tenantkv.open_store(server.url, tenant=new_tenant()) as store:
            with redis.Redis(host=server.host, port=server.port) as client:
                client.set(store.namespace.key("legacy"), b"<xml/>")
            async with store.batch() as b:
                legacy = b.get("legacy")
                b.set("entry", {"n": 1})
                pushed = b.list_push("responses", "r1")
            assert pushed.value == 1
            assert await store.get("entry") == {"n": 1}
            assert legacy.done
            with pytest.raises(tenantkv.DecodeError):
                _ = legacy.value


@pytest.mark.redis
async def test_a_sharded_batch_publishes_after_every_earlier_call() -> None:
    """Over several shards the parts of a batch run side by side; a publish still goes out
    only after every call queued before it (SLOWLOG ids are the order the server ran them)."""
    with FixtureServer(extra_args=("--slowlog-log-slower-than", "0")) as server:
        async with tenantkv.open_store(
            server.url, tenant=new_tenant(), shards=8, index=True
        ) as store:
            namespace = store.namespace
            channel = "updates"
            home = namespace.shard_of(channel)
            names = [f"entry-{n}" for n in range(40)]
            mine = next(name for name in names if namespace.shard_of(name) == home)
            others = [name for name in names if namespace.shard_of(name) != home][:6]
            async with store.batch() as b:  # loads the script
                b.set("warm-up", 1)
            with redis.Redis(host=server.host, port=server.port) as client:
                client.slowlog_reset()
                async with store.batch() as b:
                    b.set(mine, 1)
                    for name in others:
                        b.set(name, 1)
                    b.publish(channel, "written")
                entries = client.slowlog_get(1_000)
    scripts = sorted(
        (entry for entry in entries if entry["command"].startswith(b"EVALSHA")),
        key=lambda entry: entry["id"],
    )
    physical_channel = namespace.key(channel).encode()
    last = scripts[-1]["command"]
    assert physical_channel in last
    # The publish's call carries no set, and the sets' calls all ran before it.
    assert not any(namespace.key(name).encode() in last for name in [mine, *others])
    assert len(scripts) >= 1 + len({namespace.shard_of(name) for name in [mine, *others]})


async def test_list_push_with_a_ttl_sets_and_refreshes_it(store: TenantStore) -> None:
    assert await store.list_push("l", 1, ttl_ms=5_000) == 1
    first = await store.get_ttl("l")
    assert first is not None
    assert 4_000 < first <= 5_000
    assert await store.list_push("l", 2, ttl_ms=60_000) == 2
    refreshed = await store.get_ttl("l")
    assert refreshed is not None
    assert refreshed > 50_000
    assert await store.list_push("l", 3) == 3  # without ttl_ms: the TTL stays
    kept = await store.get_ttl("l")
    assert kept is not None
    assert kept > 50_000
    assert await store.list_push("short", 1, ttl_ms=30) == 1
    await asyncio.sleep(0.1)
    assert await store.list_length("short") == 0
    assert sorted(await store.keys()) == ["l"]
    with pytest.raises(tenantkv.InvalidValueError):
        await store.list_push("l", 4, ttl_ms=-1)


@pytest.mark.redis
async def test_a_batch_on_redis_is_one_script_call() -> None:
    with FixtureServer() as server:
        async with tenantkv.open_store(server.url, tenant=new_tenant()) as store:
            async with store.batch() as b:  # loads the script
                b.set("warm-up", 1)
            with redis.Redis(host=server.host, port=server.port) as client:
                client.config_resetstat()
                async with store.batch() as b:
                    b.get("entry")
                    b.set("entry", 1, ttl_ms=60_000)
                    b.list_push("responses", 1, ttl_ms=60_000)
                    b.publish("updates", 1)
                stats: dict[str, Any] = client.info("commandstats")
    calls = {name: int(stat["calls"]) for name, stat in stats.items()}
    # One command from the client; the calls of the batch ran inside it.
    assert calls["cmdstat_evalsha"] == 1
    assert calls["cmdstat_publish"] == calls["cmdstat_rpush"] == calls["cmdstat_get"] == 1
