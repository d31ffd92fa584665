"""The per-tenant key index (``index=True``): consistency, expiry, repair and cost.

The contract suite already runs with the index on (the ``*+index`` kinds of
:data:`tests.conftest.STORE_KINDS`, sharded ones included); these tests cover
what only the index has, on every indexed kind. Tests that change server-wide
settings (active expiry, statistics, SLOWLOG) use a private server of this
module alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import tenantkv
from tenantkv import TenantStore
from tenantkv.backends.memory import MemoryBackend, MemoryKeyspace
from tenantkv.backends.redis import RedisBackend, RedisClusterBackend
from tenantkv.codec import encode_key
from tenantkv.index import IndexEnumerator, IndexStatus, prefix_successor, shard_index_keys
from tenantkv.pacing import Pace

from .conftest import SERVER_ARGS, STORE_KINDS, OpenTenant, StoreKind, new_tenant
from .servers import FixtureCluster, FixtureServer
from .slowlog_checks import assert_only_preempted
from .test_contract import eventually

INDEX_KINDS = [kind for kind in STORE_KINDS if kind.options.get("index")]


@pytest.fixture(params=[pytest.param(k, id=k.name, marks=k.marks) for k in INDEX_KINDS])
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    """Overrides conftest's: every ``store``/``open_tenant`` here has the index on."""
    kind: StoreKind = request.param
    return kind


@pytest.fixture(scope="module")
def debug_server() -> Iterator[FixtureServer]:
    """A private server this module may reconfigure (DEBUG, CONFIG RESETSTAT, SLOWLOG)."""
    args = (*SERVER_ARGS, "--enable-debug-command", "yes")
    with FixtureServer(extra_args=args) as server:
        yield server


def debug(client: redis.Redis, *args: str | int) -> Any:
    """Send ``DEBUG <args>`` (enabled on the module's private server only)."""
    return client.execute_command("DEBUG", *args)  # type: ignore[no-untyped-call]


@pytest.fixture
def debug_client(debug_server: FixtureServer) -> Iterator[redis.Redis]:
    with debug_server.client() as client:
        debug(client, "SET-ACTIVE-EXPIRE", "1")
        yield client
        debug(client, "SET-ACTIVE-EXPIRE", "1")


async def shard_index_sizes(store: TenantStore) -> list[tuple[int, int]]:
    """(entries, entries with an expiry) of each shard's index, read from the backend."""
    backend = store.backend
    sizes: list[tuple[int, int]] = []
    for keys in shard_index_keys(store.namespace):
        if isinstance(backend, MemoryBackend):
            sets = backend.keyspace.indexes.get(keys.index)
            sizes.append((0, 0) if sets is None else (len(sets.names), len(sets.expire_at)))
            continue
        assert isinstance(backend, RedisBackend | RedisClusterBackend)
        entries: int = await backend.client.zcard(keys.index)
        expiring: int = await backend.client.zcard(keys.expiry)
        sizes.append((entries, expiring))
    return sizes


async def index_sizes(store: TenantStore) -> tuple[int, int]:
    """(entries, entries with an expiry) of the store's index (all shards), from the backend."""
    sizes = await shard_index_sizes(store)
    return sum(n for n, _ in sizes), sum(e for _, e in sizes)


async def assert_clean(store: TenantStore) -> None:
    report = await store.verify_index()
    assert report.clean, report


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


# -- opening ---------------------------------------------------------------------------------


def test_prefix_successor() -> None:
    assert prefix_successor(b"ab") == b"ac"
    assert prefix_successor(b"a\xff\xff") == b"b"
    assert prefix_successor(b"\xff") is None
    assert prefix_successor(b"") is None


@pytest.mark.parametrize("query", ["index=1", "index=true", "index=YES", "index=on"])
async def test_index_is_turned_on_by_url(query: str) -> None:
    async with tenantkv.open_store(f"memory://idx-{new_tenant()}?{query}", tenant="t") as store:
        assert "IndexEnumerator" in repr(store)


@pytest.mark.parametrize("value", [False, "0", "false", "off"])
async def test_index_off(value: object) -> None:
    async with tenantkv.open_store(f"memory://{new_tenant()}", tenant="t", index=value) as store:
        assert "ScanEnumerator" in repr(store)
        with pytest.raises(tenantkv.IndexNotEnabledError):
            await store.reindex()
        with pytest.raises(tenantkv.IndexNotEnabledError):
            await store.verify_index()
        with pytest.raises(tenantkv.IndexNotEnabledError):
            await store.prune_index()


@pytest.mark.parametrize("value", ["maybe", 2, None])
async def test_bad_index_option_is_rejected(value: object) -> None:
    with pytest.raises(tenantkv.InvalidURLError):
        await tenantkv.open_store("memory://", tenant="t", index=value)
    with pytest.raises(tenantkv.InvalidURLError):
        await tenantkv.open_store(f"memory://?index={value}", tenant="t")


async def test_store_uses_the_index(store: TenantStore) -> None:
    assert "IndexEnumerator" in repr(store)


# -- consistency -------------------------------------------------------------------------------


async def test_every_write_keeps_the_index(store: TenantStore) -> None:
    await store.set("a", 1)
    await store.set("b", 2, ttl_ms=60_000)
    await store.set_many({"c": 3, "d": 4})
    await store.set_many({"e": 5}, ttl_ms=60_000)
    await store.list_push("l", 1)
    assert await index_sizes(store) == (6, 2)
    await assert_clean(store)
    assert await store.set_ttl("a", 60_000)
    assert await index_sizes(store) == (6, 3)
    await store.set("b", 2)  # overwriting without a TTL drops the expiry entry
    assert await index_sizes(store) == (6, 2)
    assert await store.delete("c")
    assert not await store.delete("c")
    assert not await store.set_ttl("c", 1000)
    assert await index_sizes(store) == (5, 2)
    await assert_clean(store)
    assert await store.clear(count=2) == 5
    assert await index_sizes(store) == (0, 0)
    await assert_clean(store)


async def test_index_keys_are_not_user_keys(open_tenant: OpenTenant) -> None:
    tenant = new_tenant()
    indexed = await open_tenant(tenant)
    scanning = await open_tenant(tenant, index=False)
    await indexed.set("k", 1, ttl_ms=60_000)
    assert await indexed.keys() == ["k"]
    assert await scanning.keys() == ["k"]
    assert await scanning.count_keys() == 1
    assert (await indexed.stats()).keys == 1


async def test_failed_write_changes_neither_data_nor_index(store: TenantStore) -> None:
    await store.set("v", 1)
    await store.list_push("l", "x")
    with pytest.raises(tenantkv.WrongTypeError):
        await store.list_push("v", 2)
    assert await store.get("v") == 1
    assert sorted(await store.keys()) == ["l", "v"]
    assert await index_sizes(store) == (2, 0)
    await assert_clean(store)


async def test_patterns_read_only_their_range(store: TenantStore) -> None:
    keys = ["a", "a\x00", "ab", "a\U0001f680", "aé", "b", "search:1", "search:2", "searcher"]
    await store.set_many(dict.fromkeys(keys, 1))
    assert sorted(await store.keys("a*")) == sorted(k for k in keys if k.startswith("a"))
    assert await store.keys("a") == ["a"]
    assert await store.keys("search") == []
    assert sorted(await store.keys("search:*", count=1)) == ["search:1", "search:2"]
    assert await store.count_keys("search*") == 3
    assert sorted(await store.keys("?")) == ["a", "b"]


@pytest.mark.parametrize("seed", range(4))
async def test_random_workload_leaves_no_drift(open_tenant: OpenTenant, seed: int) -> None:
    rng = random.Random(seed)
    tenant = new_tenant()
    store = await open_tenant(tenant)
    scanning = await open_tenant(tenant, index=False)
    names = [f"k{i}" for i in range(25)] + ["a*b", "x:{y}", "ü"]

    def ttl() -> int | None:
        return rng.choice([None, None, 60_000, rng.randint(1, 30)])

    for _ in range(300):
        op = rng.choices(
            ["set", "set_many", "delete", "set_ttl", "push", "clear", "read"],
            weights=[30, 8, 15, 12, 12, 1, 5],
        )[0]
        key = rng.choice(names)
        if op == "set":
            await store.set(key, rng.random(), ttl_ms=ttl())
        elif op == "set_many":
            await store.set_many({k: 1 for k in rng.sample(names, 4)}, ttl_ms=ttl())
        elif op == "delete":
            await store.delete(key)
        elif op == "set_ttl":
            await store.set_ttl(key, rng.choice([60_000, rng.randint(1, 30)]))
        elif op == "push":
            with contextlib.suppress(tenantkv.WrongTypeError):
                await store.list_push(key, 1)
        elif op == "clear":
            await store.clear(count=rng.randint(1, 10))
        else:
            await store.keys(count=rng.randint(1, 10))
            await store.count_keys()
    await assert_clean(store)

    async def settled() -> bool:
        # Once the short TTLs have run out, index, SCAN and counts agree and,
        # after pruning, the index holds exactly the live keys.
        await store.prune_index(count=3)
        entries, _ = await index_sizes(store)
        listed = sorted(await store.keys(count=7))
        return (
            listed == sorted(await scanning.keys())
            and await store.count_keys() == len(listed) == entries
        )

    await eventually(settled)
    await assert_clean(store)


# -- repair ----------------------------------------------------------------------------------


async def test_drift_behind_the_store_is_found_and_repaired(store: TenantStore) -> None:
    await store.set_many({"kept": 1, "gone": 2, "persisted": 3})
    await store.set("expiring", 4, ttl_ms=60_000)
    key, backend = store.namespace.key, store.backend
    # Behind the store's back: the backend's own writes bypass the index.
    await backend.set(key("foreign"), b"5", None)
    await backend.delete(key("gone"))
    await backend.set_ttl(key("persisted"), 60_000)
    await backend.set(key("expiring"), b"4", None)

    report = await store.verify_index()
    assert not report.repaired
    assert report.missing_from_index == ["foreign"]
    assert report.stale_in_index == ["gone"]
    assert sorted(report.ttl_mismatch) == ["expiring", "persisted"]
    assert (report.missing_count, report.stale_count, report.ttl_mismatch_count) == (1, 1, 2)
    assert report.drift == 4
    assert report.scanned_keys == 4
    assert await store.verify_index() == report  # verify changes nothing

    repaired = await store.reindex(count=2)
    assert repaired.repaired
    assert repaired.drift == 4
    await assert_clean(store)
    assert sorted(await store.keys()) == ["expiring", "foreign", "kept", "persisted"]
    assert await index_sizes(store) == (4, 1)


async def test_reindex_adopts_existing_data(open_tenant: OpenTenant) -> None:
    tenant = new_tenant()
    plain = await open_tenant(tenant, index=False)
    await plain.set_many({f"k{i}": i for i in range(50)})
    await plain.set_many({f"t{i}": i for i in range(5)}, ttl_ms=60_000)
    indexed = await open_tenant(tenant)
    assert await indexed.keys() == []  # nothing indexed yet
    report = await indexed.reindex(count=7, max_reported=10)
    assert report.missing_count == 55
    assert len(report.missing_from_index) == 10
    assert await indexed.count_keys() == 55
    assert sorted(await indexed.keys()) == sorted(await plain.keys())
    await assert_clean(indexed)


async def test_clear_removes_what_the_index_knows(store: TenantStore) -> None:
    await store.set_many({"a": 1, "b": 2})
    await store.backend.set(store.namespace.key("foreign"), b"1", None)
    assert await store.clear() == 2
    assert await store.backend.exists(store.namespace.key("foreign"))
    await store.reindex()
    assert await store.clear() == 1
    assert await index_sizes(store) == (0, 0)


# -- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shards", [1, 4])
async def test_expired_keys_are_not_listed_and_are_pruned_in_memory(shards: int) -> None:
    now = [1_000_000]
    name = f"clock-{new_tenant()}"
    MemoryKeyspace.shared(name).clock = lambda: now[0]
    async with tenantkv.open_store(
        f"memory://{name}", tenant="t", index=True, shards=shards
    ) as store:
        await store.set_many({f"short{i}": i for i in range(30)}, ttl_ms=50)
        await store.set_many({f"long{i}": i for i in range(10)}, ttl_ms=60_000)
        await store.set("plain", 1)
        now[0] += 100
        assert await index_sizes(store) == (41, 40)
        assert await store.count_keys("short*") == 0
        assert await index_sizes(store) == (11, 10)  # the walk pruned what it passed
        now[0] += 60_000
        assert await store.count_keys() == 1
        assert await store.keys() == ["plain"]
        assert await store.prune_index(count=3) == 0
        assert await index_sizes(store) == (1, 0)


async def test_a_key_that_expires_as_it_is_checked_is_not_a_stale_entry_in_memory() -> None:
    """The in-memory check compares a key and its entry at one time. It read the clock once
    for the entries and again for each key, so a key whose expiry fell between the two
    readings was reported stale: verify_index failed now and then on a healthy tenant."""
    now, ticking = [1_000_000], [False]

    def clock() -> int:
        now[0] += ticking[0]  # a millisecond per reading, once turned on
        return now[0]

    name = f"clock-{new_tenant()}"
    MemoryKeyspace.shared(name).clock = clock
    async with tenantkv.open_store(f"memory://{name}", tenant="t", index=True) as store:
        await store.set("due", 1, ttl_ms=50)  # expires once the clock passes 1,000,050
        await store.set("kept", 2)
        enumerator = store._enumerator
        assert isinstance(enumerator, IndexEnumerator)
        (index,) = enumerator.indexes
        keys = [encode_key(store.namespace.key(k)) for k in ("due", "kept")]
        now[0] += 49
        ticking[0] = True  # the check's first reading is 1,000,050: "due" is live then
        assert await index.check(keys, Pace()) == [IndexStatus.CONSISTENT] * 2
        assert (await store.verify_index()).clean  # (by now "due" has expired)


@pytest.mark.redis
@pytest.mark.parametrize("shards", [1, 4])
async def test_expired_keys_are_not_listed_without_active_expiry(
    debug_server: FixtureServer, debug_client: redis.Redis, shards: int
) -> None:
    debug(debug_client, "SET-ACTIVE-EXPIRE", "0")
    async with tenantkv.open_store(
        debug_server.url, tenant=new_tenant(), index=True, shards=shards
    ) as store:
        await store.set("plain", 1)
        await store.set("long", 1, ttl_ms=60_000)
        await store.set_many({f"short{i}": i for i in range(200)}, ttl_ms=30)
        last_expiry = int(debug_client.pexpiretime(store.namespace.key("short199")))

        async def past(expiry_ms: int) -> None:
            """Poll the server's clock until ``expiry_ms`` has passed."""
            deadline = time.monotonic() + 5
            while True:
                seconds, micros = debug_client.time()
                if int(seconds) * 1000 + int(micros) // 1000 > expiry_ms + 1:
                    return
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)

        await past(last_expiry)
        # The expired keys are still in memory (no active expiry) and in the index...
        assert debug_client.dbsize() >= 202
        assert await index_sizes(store) == (202, 201)
        # ...yet never listed or counted.
        assert await store.count_keys() == 2  # also prunes up to `count` entries
        assert (await store.stats()).keys == 2
        assert sorted(await store.keys()) == ["long", "plain"]
        assert await store.count_keys("short*") == 0
        assert await index_sizes(store) == (2, 1)

        # Explicit pruning in bounded batches, without any listing.
        await store.set_many({f"again{i}": i for i in range(50)}, ttl_ms=10)
        await past(int(debug_client.pexpiretime(store.namespace.key("again49"))))
        assert (await index_sizes(store))[0] == 52
        assert await store.prune_index(count=7) == 50
        assert await index_sizes(store) == (2, 1)
        await assert_clean(store)


@pytest.mark.redis
async def test_ttl_writes_keep_an_unlisted_index_bounded(
    debug_server: FixtureServer, debug_client: redis.Redis
) -> None:
    """A tenant that is only written, never listed, does not hoard entries of expired keys.

    Single-key writes prune on a sample of calls (an eighth of them, 16 entries each);
    600 writes carry out about 75 such prunes, room for 1,200 entries, so the 300 dead
    entries are gone with a wide margin (fewer than 19 prunes among 600 writes at p = 1/8
    is about 7 standard deviations away).
    """
    debug(debug_client, "SET-ACTIVE-EXPIRE", "0")
    async with tenantkv.open_store(debug_server.url, tenant=new_tenant(), index=True) as store:
        await store.set_many({f"dead{i}": i for i in range(300)}, ttl_ms=20)
        await asyncio.sleep(0.05)
        assert await index_sizes(store) == (300, 300)
        for i in range(300):
            await store.set(f"live{i}", i, ttl_ms=60_000)
        for i in range(300):
            await store.set_ttl(f"live{i}", 120_000)
        assert await index_sizes(store) == (300, 300)
        assert await store.count_keys() == 300
        await assert_clean(store)


@pytest.mark.redis
async def test_writes_survive_a_server_that_lost_the_scripts(
    debug_server: FixtureServer, debug_client: redis.Redis
) -> None:
    """After SCRIPT FLUSH (as after a restart or a failover), each write loads its script again."""
    async with tenantkv.open_store(debug_server.url, tenant=new_tenant(), index=True) as store:
        await store.set("before", 1)
        debug_client.script_flush()
        await store.set("a", 1, ttl_ms=60_000)
        await store.set_many({"b": 2, "c": 3})
        assert await store.list_push("l", 1) == 1
        assert await store.delete("before")
        assert sorted(await store.keys()) == ["a", "b", "c", "l"]
        assert await store.count_keys() == 4

        # The pipeline path (batching callers, the benchmark) loads it before executing.
        debug_client.script_flush()
        backend = store.backend
        assert isinstance(backend, RedisBackend)
        ns = store.namespace
        index = backend.key_index(shard_index_keys(ns)[0])
        async with backend.client.pipeline(transaction=False) as pipe:
            index.queue_set(pipe, ns.key("p1"), b"1", None)
            index.queue_set(pipe, ns.key("p2"), b"2", 60_000)
            await pipe.execute()
        assert await store.get("p2") == 2
        assert sorted(await store.keys("p*")) == ["p1", "p2"]
        await assert_clean(store)


# -- cost ------------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("shards", [1, 4])
async def test_each_write_is_one_round_trip(
    debug_server: FixtureServer, debug_client: redis.Redis, shards: int
) -> None:
    async with tenantkv.open_store(
        debug_server.url, tenant=new_tenant(), index=True, shards=shards
    ) as store:

        async def every_write() -> None:
            await store.set("a", 1)
            await store.set("b", 1, ttl_ms=60_000)
            await store.set_many({"c": 1, "d": 2})
            await store.set_ttl("a", 1000)
            await store.list_push("l", 1)
            await store.delete("b")

        debug_client.config_resetstat()
        await every_write()
        calls = command_calls(debug_client)
        # One EVALSHA per write; set_many makes one per shard it writes to.
        set_many_shards = len({store.namespace.shard_of(k) for k in ("c", "d")})
        assert calls["evalsha"] == 5 + set_many_shards
        assert "multi" not in calls
        assert "eval" not in calls


@pytest.mark.redis
@pytest.mark.parametrize("shards", [1, 4])
async def test_listing_costs_what_the_tenant_holds(
    debug_server: FixtureServer, debug_client: redis.Redis, shards: int
) -> None:
    debug(debug_client, "POPULATE", 200_000, "other")
    tenant = new_tenant()
    async with (
        tenantkv.open_store(debug_server.url, tenant=tenant, index=True, shards=shards) as store,
        tenantkv.open_store(debug_server.url, tenant=tenant, shards=shards) as scanning,
    ):
        await store.set_many({f"txn:{i}": i for i in range(1000)})
        assert debug_client.dbsize() >= 201_000
        debug_client.config_resetstat()
        keys = await store.keys(count=100)
        assert len(keys) == 1000
        calls = command_calls(debug_client)
        # 1000 / 100 chunks, plus, per shard, the read that finds the end and the one
        # written ahead of it; each chunk is a ZRANGE of the index and one of the expiry
        # set's first entry, no script: nothing has expired.
        assert calls["zrange"] <= 2 * (1000 // 100 + 2 * shards), calls
        assert "evalsha" not in calls
        assert "scan" not in calls
        debug_client.config_resetstat()
        assert await store.count_keys() == 1000
        assert command_calls(debug_client)["evalsha"] == shards  # one O(log N) call per shard
        # For contrast: SCAN walks all 200,000 keys to find the same 1000.
        debug_client.config_resetstat()
        assert len(await scanning.keys(count=1000)) == 1000
        assert command_calls(debug_client)["scan"] >= 200


@pytest.mark.slow
@pytest.mark.redis
async def test_no_slow_command_on_a_100k_tenant(
    debug_server: FixtureServer, debug_client: redis.Redis
) -> None:
    tenant = new_tenant()
    async with (
        tenantkv.open_store(debug_server.url, tenant=tenant, index=True) as store,
        tenantkv.open_store(debug_server.url, tenant=tenant) as plain,
    ):
        # 20,000 keys that expire at once, then 70,000 plain and 10,000 with a TTL.
        for start in range(0, 20_000, 1000):
            await store.set_many({f"e:{i}": i for i in range(start, start + 1000)}, ttl_ms=1)
        for start in range(0, 70_000, 1000):
            await store.set_many({f"k:{i}": i for i in range(start, start + 1000)})
        for start in range(0, 10_000, 1000):
            await store.set_many({f"t:{i}": i for i in range(start, start + 1000)}, ttl_ms=600_000)
        # 10,000 keys behind the store's back, for reindex to adopt.
        for start in range(0, 10_000, 1000):
            await plain.set_many({f"f:{i}": i for i in range(start, start + 1000)})
        debug_client.slowlog_reset()

        assert len(await store.keys()) == 80_000
        assert await store.count_keys() == 80_000
        assert await store.count_keys("k:1*") == 11_111
        assert (await store.stats()).keys == 80_000
        await store.prune_index()
        assert debug_client.zcard(store.namespace.meta_key("idx")) == 80_000
        report = await store.verify_index()
        assert report.missing_count == 10_000
        assert (await store.reindex()).missing_count == 10_000
        assert await store.count_keys() == 90_000
        await assert_clean(store)
        assert await store.clear() == 90_000

        # (A command preempted on this 2-vCPU machine may show up; a long one may not.)
        assert_only_preempted(debug_client.slowlog_get(128))


@pytest.mark.redis
async def test_the_check_scripts_are_sized_from_their_own_server_time() -> None:
    """A reindex checks every key and every entry in check.lua calls sized to the budget.
    They were sized from their round trips, which also hold the SCAN written ahead on the
    walk's connection (queued on the server before the call): the cost learned climbed to
    several times the server's (30-120 against 5-8 us a key at 100K keys) and the calls
    carried 16-25 keys each here, a fraction of what the budget allows. Each call now
    replies its own server time (50-70 keys a call here, the remainders of pages and chunks
    included). A server of its own: other tenants' keys in the SCAN pages would make the
    calls smaller whatever the pace."""
    tenant = new_tenant()
    with FixtureServer(extra_args=SERVER_ARGS) as server, server.client() as client:
        async with (
            tenantkv.open_store(server.url, tenant=tenant, index=True) as store,
            tenantkv.open_store(server.url, tenant=tenant) as plain,
        ):
            for start in range(0, 20_000, 1000):  # behind the index's back: all to adopt
                await plain.set_many({f"k:{i}": i for i in range(start, start + 1000)})
            before = command_calls(client).get("evalsha", 0)
            assert (await store.reindex()).missing_count == 20_000
            calls = command_calls(client)["evalsha"] - before
            # 20,000 keys checked against the index, then 20,000 entries against their keys.
            assert 40_000 / calls >= 30, calls
            assert await store.count_keys() == 20_000


def script_cost(store: TenantStore) -> Any:
    """What the Redis index of ``store`` has learned of its per-member scripts' cost."""
    enumerator = store._enumerator  # the pacing's wiring is what is tested
    assert isinstance(enumerator, IndexEnumerator)
    return enumerator.indexes[0]._script_pacer(Pace()).cost  # type: ignore[attr-defined]


@pytest.mark.redis
async def test_every_tenant_on_a_server_starts_from_the_script_cost_learned_there(
    redis_server: FixtureServer,
) -> None:
    """A client serving many tenants learns what its index scripts cost per server, as the
    walks do: a tenant's first reindex is sized from what another tenant's measured, instead
    of each tenant starting from the default."""
    async with tenantkv.open_client(redis_server.url, index=True) as client:
        first, second = await client.store(new_tenant()), await client.store(new_tenant())
        await first.set_many({f"k{i}": i for i in range(2000)})
        assert script_cost(second).us_per_key is None
        await first.reindex()
        learned = script_cost(first)
        assert learned.samples > 0
        assert script_cost(second) is learned


@pytest.mark.cluster
async def test_tenants_share_the_script_cost_of_the_node_that_holds_them(
    redis_cluster: FixtureCluster,
) -> None:
    async with tenantkv.open_client(redis_cluster.url, index=True) as client:
        by_node: dict[str, list[TenantStore]] = {}
        while len(by_node) < 2 or max(len(stores) for stores in by_node.values()) < 2:
            store = await client.store(new_tenant())
            await store.count_keys()  # (the client learns the slot map)
            backend = store.backend
            assert isinstance(backend, RedisClusterBackend)
            node = backend.client.get_node_from_key(shard_index_keys(store.namespace)[0].index)
            assert node is not None
            by_node.setdefault(node.name, []).append(store)
        groups = sorted(by_node.values(), key=len, reverse=True)
        shared, elsewhere = groups[0], groups[1]
        assert script_cost(shared[1]) is script_cost(shared[0])
        assert script_cost(elsewhere[0]) is not script_cost(shared[0])

        # While the slot map is out of date (a failover), a tenant's cost is its own, and the
        # pace is still given (SlotNotCoveredError is not a RedisError).
        def not_covered(key: Any, replica: bool = False) -> None:
            raise redis.exceptions.SlotNotCoveredError(f"no node for {key!r}")

        backend = shared[0].backend
        assert isinstance(backend, RedisClusterBackend)
        learned = script_cost(shared[0])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(backend.client, "get_node_from_key", not_covered)
            assert script_cost(shared[0]) is not learned
        assert script_cost(shared[0]) is learned


async def test_reindex_and_verify_index_report_their_progress(store: TenantStore) -> None:
    await store.set_many({f"k{i}": i for i in range(1000)})
    for operation, run in [("reindex", store.reindex), ("verify_index", store.verify_index)]:
        seen: list[tenantkv.Progress] = []
        report = await run(count=100, progress=seen.append)
        assert len(seen) >= 10, operation
        assert {p.operation for p in seen} == {operation}
        done = [p.done for p in seen]
        assert done == sorted(done)
        # Data keys scanned, then index entries walked.
        assert done[-1] == report.scanned_keys + report.index_entries == 2000


async def test_a_store_without_the_index_clears_the_index_too(open_tenant: OpenTenant) -> None:
    """``tenantkv clear`` without ``?index=1`` on an indexed tenant: no ghost keys after."""
    indexed = await open_tenant()
    plain = await open_tenant(indexed.tenant, index=False)
    await indexed.set_many({f"k{i}": i for i in range(30)})
    await indexed.set("ttl", 1, ttl_ms=60_000)
    assert await plain.clear() == 31
    assert await indexed.keys() == []
    assert await indexed.count_keys() == 0
    assert (await indexed.verify_index()).drift == 0
    await indexed.set("again", 1)
    assert await indexed.keys() == ["again"]


@pytest.mark.parametrize("pattern", ["*", "m:*"])
async def test_a_listing_misses_no_key_when_entries_before_it_come_and_go(
    open_tenant: OpenTenant, pattern: str
) -> None:
    """While the listing walks the ``m:`` keys, a writer deletes more entries before them
    than a chunk holds, and adds others there, between every two chunks. A walk by rank
    then sees its ranks shift both ways (chunks that overlap, gaps between them); every key
    present throughout is still listed exactly once, and nothing that never existed."""
    store = await open_tenant()
    writer = await open_tenant(store.tenant)
    stable = [f"m:{i:04d}" for i in range(3000)]
    behind = [f"a:{i:04d}" for i in range(3000)]
    await store.set_many(dict.fromkeys(stable + behind, 1))
    gone = iter(behind)
    added: list[str] = []
    found: list[str] = []
    async for key in store.iter_keys(pattern, count=50):
        found.append(key)
        if key.startswith("m:") and len(found) % 50 == 0:
            async with writer.batch() as batch:
                for old in [next(gone, None) for _ in range(100)]:
                    if old is not None:
                        batch.delete(old)
                for j in range(60):
                    added.append(f"b:{len(found)}:{j}")
                    batch.set(added[-1], 1)
    assert len(found) == len(set(found)), "a key was listed twice"
    assert set(stable) <= set(found)
    expected = set(stable) if pattern == "m:*" else set(stable + behind + added)
    assert set(found) <= expected


async def test_a_listing_finds_the_keys_left_when_the_index_shrinks_under_it(
    open_tenant: OpenTenant,
) -> None:
    """Most of the index is deleted behind the listing near its end: the reads after that
    find fewer entries than the ranks they ask for (a walk by rank would stop there); the
    keys left after the walk's position are still listed."""
    store = await open_tenant()
    writer = await open_tenant(store.tenant)
    behind = [f"a:{i:04d}" for i in range(1000)]
    stable = [f"m:{i:04d}" for i in range(200)]
    await store.set_many(dict.fromkeys(behind + stable, 1))
    found: list[str] = []
    async for key in store.iter_keys(count=100):
        found.append(key)
        if key == "a:0800":
            async with writer.batch() as batch:
                for old in behind:
                    batch.delete(old)
    assert len(found) == len(set(found)), "a key was listed twice"
    assert set(stable) <= set(found) <= set(behind + stable)


async def test_keys_written_during_a_plain_clear_stay_listed(open_tenant: OpenTenant) -> None:
    """The plain clear drops the index before it deletes: a key an indexed store writes
    meanwhile and that survives the clear is never hidden from indexed readers."""
    indexed = await open_tenant()
    plain = await open_tenant(indexed.tenant, index=False)
    await indexed.set_many({f"k{i}": i for i in range(5_000)})
    clearing = asyncio.create_task(plain.clear(count=50))
    late = [f"late{i}" for i in range(50)]
    for key in late:
        await indexed.set(key, 1)
        await asyncio.sleep(0)
    await clearing
    listed = set(await indexed.keys())
    surviving = {key for key in late if await indexed.exists(key)}
    assert surviving <= listed
    assert not {key for key in listed if key.startswith("k")}  # the old keys are gone


async def test_an_index_clear_under_concurrent_writes_leaves_an_exact_index(
    open_tenant: OpenTenant,
) -> None:
    """Keys written while an indexed clear runs are deleted with their entry or keep both:
    afterwards every live key is listed and nothing gone is (each chunk's keys and entries
    go in one transaction, see RedisKeyIndex.clear)."""
    indexed = await open_tenant()
    writer = await open_tenant(indexed.tenant)
    await indexed.set_many({f"k{i:04d}": i for i in range(3000)}, ttl_ms=600_000)
    clearing = asyncio.create_task(indexed.clear(count=50))
    late = [f"late{i:03d}" for i in range(60)] + [f"k{i:04d}" for i in range(0, 3000, 97)]
    for key in late:
        await writer.set(key, 1)
        await asyncio.sleep(0)
    await clearing
    listed = set(await indexed.keys())
    surviving = {key for key in late if await indexed.exists(key)}
    assert listed == surviving
    await assert_clean(indexed)


async def test_an_index_clear_asks_for_the_next_chunk_before_the_transaction_before(
    debug_server: FixtureServer, debug_client: redis.Redis
) -> None:
    """The server never waits for the client between chunks: the read of chunk i+1 reaches
    it before chunk i's transaction, which is written before chunk i-1's is answered. Seen
    in SLOWLOG (every command, in the order the server ran them)."""
    # A generous budget: chunks of the 100 keys asked for, even on a slow machine.
    async with tenantkv.open_store(
        debug_server.url, tenant=new_tenant(), index=True, budget_ms=100
    ) as store:
        await store.set_many({f"k{i:04d}": i for i in range(1000)})
        debug_client.config_set("slowlog-log-slower-than", 0)
        debug_client.config_set("slowlog-max-len", 10_000)
        debug_client.slowlog_reset()
        try:
            assert await store.clear(count=100) == 1000
            entries = list(reversed(debug_client.slowlog_get(10_000)))
        finally:
            debug_client.config_set("slowlog-log-slower-than", 10_000)
        assert await store.count_keys() == 0
    order = [
        command[0]
        for command in (entry["command"].split() for entry in entries)
        if command[0] == b"ZRANGE" or (command[0] == b"UNLINK" and b":k0" in command[1])
    ]
    # Ten chunks and a last empty read: ZRANGE 1, ZRANGE 2, UNLINK 1, ZRANGE 3, UNLINK 2, ...
    # (the UNLINKs of the chunks' keys; the clear's last UNLINK drops a migration ledger)
    assert order == [b"ZRANGE", *[b"ZRANGE", b"UNLINK"] * 10]


async def test_a_cancelled_index_clear_hides_no_key_and_the_next_one_finishes(
    open_tenant: OpenTenant,
) -> None:
    """Cancelled half-way, an indexed clear leaves the index exact: every chunk's keys and
    entries went together, so what is listed is what is left, and the next clear ends it."""
    store = await open_tenant()
    keys = [f"k{i:05d}" for i in range(20_000)]
    for start in range(0, len(keys), 5000):
        await store.set_many({key: 1 for key in keys[start : start + 5000]})
    task = asyncio.create_task(store.clear(count=20))
    for _ in range(20_000):  # until it has deleted some keys
        await asyncio.sleep(0.001)
        if not await store.exists(keys[-1]) or not await store.exists(keys[0]):
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    listed = set(await store.keys())
    live: set[str] = set()
    for start in range(0, len(keys), 2000):
        part = keys[start : start + 2000]
        live.update(
            key for key, value in zip(part, await store.get_many(part), strict=True) if value
        )
    assert live == listed
    assert len(live) < len(keys)
    assert await store.clear() == len(live)
    assert await store.keys() == []
    await assert_clean(store)
    assert await index_sizes(store) == (0, 0)


async def test_a_key_recreated_behind_an_index_clear_keeps_its_entry(
    open_tenant: OpenTenant,
) -> None:
    """While a clear of a big tenant runs, keys are written again (some already cleared, some
    not yet) and new ones appear before and after the walk: afterwards the index lists
    exactly the keys that exist."""
    store = await open_tenant()
    writer = await open_tenant(store.tenant)
    keys = [f"k{i:05d}" for i in range(20_000)]
    for start in range(0, len(keys), 5000):
        await writer.set_many({key: 1 for key in keys[start : start + 5000]})
    rng = random.Random(11)
    clearing = asyncio.create_task(store.clear(count=50))
    written: list[str] = []
    while not clearing.done():
        key = rng.choice([rng.choice(keys), f"a-new{len(written)}", f"z-new{len(written)}"])
        await writer.set(key, 2, ttl_ms=600_000 if len(written) % 3 else None)
        written.append(key)
        await asyncio.sleep(0)
    await clearing
    assert len(written) > 20  # the writes really ran during the clear
    candidates = sorted({*keys, *written})
    existing: set[str] = set()
    for start in range(0, len(candidates), 2000):
        part = candidates[start : start + 2000]
        found = await store.get_many(part)
        existing.update(key for key, value in zip(part, found, strict=True) if value is not None)
    # Keys written behind the walk survive it, on every backend.
    assert existing
    assert existing <= set(written)
    assert set(await store.keys()) == existing
    await assert_clean(store)
    assert await store.clear() == len(existing)
    assert await index_sizes(store) == (0, 0)


@pytest.mark.redis
@pytest.mark.parametrize("shards", [1, 4])
async def test_a_cancelled_index_clear_lists_what_a_scan_finds(
    redis_server: FixtureServer, shards: int
) -> None:
    """The cancelled clear seen from the server: the listing equals a raw SCAN of the
    tenant's keys, with writes going on during the clear."""
    tenant = new_tenant()
    async with (
        tenantkv.open_store(redis_server.url, tenant=tenant, index=True, shards=shards) as store,
        tenantkv.open_store(redis_server.url, tenant=tenant, index=True, shards=shards) as writer,
    ):
        keys = [f"k{i:05d}" for i in range(20_000)]
        for start in range(0, len(keys), 5000):
            await store.set_many({key: 1 for key in keys[start : start + 5000]})
        halfway = asyncio.Event()

        def seen(progress: tenantkv.Progress) -> None:
            if progress.done >= 2000:
                halfway.set()

        task = asyncio.create_task(store.clear(count=20, progress=seen))
        rng = random.Random(5)
        while not halfway.is_set() and not task.done():
            await writer.set(rng.choice(keys), 2)
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with redis_server.client() as client:
            found = {
                store.namespace.relative(key)
                for key in client.scan_iter(match=store.namespace.match("*"), count=1000)
            }
        assert 0 < len(found) < len(keys)
        assert set(await store.keys()) == found
        await assert_clean(store)
        assert await store.clear() == len(found)


# -- a store without the index on an indexed tenant -------------------------------------------


async def test_a_store_without_the_index_keeps_the_tenants_index_true(
    open_tenant: OpenTenant,
) -> None:
    """A store opened without ``index=True`` on a tenant that has an index writes through
    it: deletes, TTL changes, overwrites and new keys all show in the indexed store."""
    indexed = await open_tenant()
    await indexed.set_many({"gone": 1, "expiring": 2, "kept-ttl": 3, "cleared": 4})
    await indexed.set("kept-ttl", 3, ttl_ms=60_000)
    await indexed.list_push("list", 1)
    plain = await open_tenant(indexed.tenant, index=False)
    assert await plain.delete("gone")
    assert await plain.set_ttl("expiring", 30)
    await plain.set("kept-ttl", "no TTL now")
    await plain.set("new", 5)
    await plain.set_many({"new-many": 6}, ttl_ms=60_000)
    await plain.list_push("list", 2)
    await plain.list_push("new-list", 1)
    await asyncio.sleep(0.05)  # "expiring" has expired
    expected = {"kept-ttl", "cleared", "list", "new", "new-many", "new-list"}
    assert set(await indexed.keys()) == expected
    assert await indexed.count_keys() == len(expected)
    await assert_clean(indexed)
    assert await indexed.clear() == len(expected)
    assert await plain.keys() == []


async def test_a_store_without_the_index_leaves_a_tenant_without_one_alone(
    open_tenant: OpenTenant,
) -> None:
    plain = await open_tenant(index=False)
    await plain.set("k", 1)
    indexed = await open_tenant(plain.tenant)
    assert await indexed.keys() == []  # written before the index existed: not adopted...
    report = await indexed.reindex()
    assert report.missing_count == 1  # ...until reindex
    assert await indexed.keys() == ["k"]


# -- batches and list TTLs -------------------------------------------------------------------


async def test_batches_and_list_ttls_keep_the_index_true(store: TenantStore) -> None:
    for round_ in range(20):
        async with store.batch() as b:
            b.set(f"k{round_}", round_, ttl_ms=60_000 if round_ % 2 else None)
            b.list_push(f"l{round_ % 5}", round_, ttl_ms=60_000 if round_ % 3 else None)
            if round_ % 4 == 0:
                b.delete(f"k{round_ - 1}")
                b.set_ttl(f"l{round_ % 5}", 30_000)
        await store.list_push(f"p{round_ % 3}", round_, ttl_ms=60_000)
    assert (await store.verify_index()).clean
    assert await store.count_keys() == len(await store.keys())
