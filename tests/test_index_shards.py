"""The key index of a tenant spread over several shards (``index=True, shards=N``).

The contract suite and ``tests/test_index.py`` already run on the sharded
indexed kinds of :data:`tests.conftest.STORE_KINDS` (randomized workload with
zero drift included); these tests check what only sharding adds: one index
per shard, in that shard's slot, and repair that reaches every shard.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

import tenantkv
from tenantkv import TenantStore
from tenantkv.backends.memory import MemoryBackend, MemoryKeyIndex
from tenantkv.backends.redis import RedisClusterBackend
from tenantkv.backends.redis.topology import slot_of
from tenantkv.index import IndexEnumerator, ShardedKeyWriter, shard_index_keys

from .conftest import STORE_KINDS, StoreKind, new_tenant
from .servers import FixtureCluster, FixtureServer
from .test_index import assert_clean, index_sizes, shard_index_sizes

SHARDED_INDEX_KINDS = [
    kind for kind in STORE_KINDS if kind.options.get("index") and kind.options.get("shards", 1) > 1
]


@pytest.fixture(params=[pytest.param(k, id=k.name, marks=k.marks) for k in SHARDED_INDEX_KINDS])
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    """Overrides conftest's: every ``store`` here is sharded and indexed."""
    kind: StoreKind = request.param
    return kind


def in_shard(store: TenantStore, shard: int, label: str, n: int = 1) -> list[str]:
    """``n`` key names (``label`` + a number) that live in ``shard``."""
    names = (f"{label}{i}" for i in range(10_000))
    return [name for name in names if store.namespace.shard_of(name) == shard][:n]


async def test_each_shard_has_its_own_index_in_its_own_slot(store: TenantStore) -> None:
    namespace = store.namespace
    keys = [f"txn:{i}" for i in range(200)]
    await store.set_many(dict.fromkeys(keys, 1))
    await store.set_many({f"ttl:{i}": i for i in range(40)}, ttl_ms=60_000)
    expected = Counter(namespace.shard_of(k) for k in keys)
    expiring = Counter(namespace.shard_of(f"ttl:{i}") for i in range(40))
    sizes = await shard_index_sizes(store)
    # Every shard's index holds exactly the keys of its shard (and all shards hold some).
    assert sizes == [(expected[s] + expiring[s], expiring[s]) for s in range(namespace.shards)]
    assert all(entries > 0 for entries, _ in sizes)
    layout = shard_index_keys(namespace)
    assert [k.index for k in layout] == [
        f"{namespace.prefix}:{{{namespace.tenant}:{s:02d}}}#idx" for s in range(namespace.shards)
    ]
    # Index, expiry set and data keys of a shard share its hash slot; shards differ.
    for shard, where in enumerate(layout):
        slot = slot_of(where.index)
        assert slot_of(where.expiry) == slot
        assert {slot_of(namespace.key(k)) for k in keys if namespace.shard_of(k) == shard} == {slot}
    assert len({slot_of(where.index) for where in layout}) == namespace.shards
    backend = store.backend
    if isinstance(backend, RedisClusterBackend):
        # On the cluster, the shards' indexes live on more than one primary.
        nodes = [backend.client.get_node_from_key(where.index) for where in layout]
        assert len({node.name for node in nodes if node is not None}) > 1
    assert await store.count_keys() == 240
    assert (await store.stats()).keys == 240
    assert await store.count_keys("ttl:*") == 40
    assert await store.keys("txn:7") == ["txn:7"]
    assert sorted(await store.keys("txn:1?", count=3)) == [f"txn:{i}" for i in range(10, 20)]


async def test_drift_in_two_shards_is_found_and_repaired(store: TenantStore) -> None:
    (foreign,) = in_shard(store, 0, "foreign")
    (gone,) = in_shard(store, 1, "gone")
    (persisted,) = in_shard(store, 1, "persisted")
    (kept,) = in_shard(store, 2, "kept")
    await store.set_many({gone: 1, persisted: 2, kept: 3})
    before = await shard_index_sizes(store)
    key, backend = store.namespace.key, store.backend
    # Behind the store's back, in shards 0 and 1.
    await backend.set(key(foreign), b"1", None)
    await backend.delete(key(gone))
    await backend.set_ttl(key(persisted), 60_000)

    report = await store.verify_index(count=2)
    assert (report.missing_from_index, report.stale_in_index) == ([foreign], [gone])
    assert report.ttl_mismatch == [persisted]
    assert (report.scanned_keys, report.index_entries) == (3, 3)
    assert await shard_index_sizes(store) == before  # verify repairs nothing

    repaired = await store.reindex(count=2)
    assert repaired.repaired
    assert repaired.drift == 3
    await assert_clean(store)
    sizes = await shard_index_sizes(store)
    assert sizes[0] == (before[0][0] + 1, 0)
    assert sizes[1] == (before[1][0] - 1, 1)
    assert sizes[2] == before[2]
    assert sorted(await store.keys()) == sorted([foreign, persisted, kept])
    assert await store.clear(count=1) == 3
    assert await index_sizes(store) == (0, 0)


async def test_reindex_adopts_a_sharded_tenant_written_without_the_index(
    store: TenantStore,
) -> None:
    namespace = store.namespace
    async with tenantkv.open_store(
        _url(store), tenant=store.tenant, shards=namespace.shards, prefix=namespace.prefix
    ) as plain:
        await plain.set_many({f"k{i}": i for i in range(60)})
        # A shard number beyond ``shards`` (data of a layout with more shards)
        # matches the namespace's SCAN pattern but belongs to no index of this one.
        beyond = f"{namespace.prefix}:{{{namespace.tenant}:{namespace.shards:02d}}}:x"
        await store.backend.set(beyond, b"1", None)
        try:
            report = await store.reindex(count=7)
            assert report.missing_count == report.scanned_keys == 60
            assert await store.count_keys() == 60
            assert all(n > 0 for n, _ in await shard_index_sizes(store))
            assert sorted(await store.keys()) == sorted(f"k{i}" for i in range(60))
            await assert_clean(store)
        finally:
            await store.backend.unlink([beyond])


@pytest.mark.redis
async def test_a_sharded_reindex_keeps_within_the_connections_it_needed(
    redis_server: FixtureServer,
) -> None:
    """A Redis index's check runs two calls in flight, so reindex and verify compare half
    as many shards at a time: a 16-shard reindex holds at most 24 connections (8 walks and
    their 2 checks; with 16 walks of one check each it held 32). redis-py's pool fails
    rather than waits past max_connections."""
    tenant = new_tenant()
    url = redis_server.url
    async with (
        tenantkv.open_store(url, tenant=tenant, shards=16) as plain,
        tenantkv.open_store(url, tenant=tenant, shards=16, index=True, max_connections=24) as store,
    ):
        for start in range(0, 16_000, 1000):
            await plain.set_many({f"k{i}": i for i in range(start, start + 1000)})
        report = await store.reindex()
        assert report.missing_count == report.scanned_keys == 16_000
        assert report.index_entries == 16_000
        await assert_clean(store)
        assert await store.clear() == 16_000


async def _every_operation(url: str, *, index: bool, max_connections: int) -> None:
    """Each operation of a 16-shard tenant, on a pool of ``max_connections``, with its result."""
    async with tenantkv.open_store(
        url, tenant=new_tenant(), shards=16, index=index, max_connections=max_connections
    ) as store:
        values = {f"k{i}": i for i in range(3000)}
        await store.set_many(values, ttl_ms=600_000)
        assert await store.get_many(list(values)) == list(values.values())
        async with store.batch() as batch:
            for i in range(40):
                batch.set(f"b{i}", i)
        expected = sorted([*values, *(f"b{i}" for i in range(40))])
        assert sorted(await store.keys()) == expected
        assert await store.count_keys() == len(expected)
        assert (await store.stats()).keys == len(expected)
        if index:
            assert (await store.verify_index()).drift == 0
            assert (await store.reindex()).drift == 0
            assert await store.prune_index() == 0
        assert await store.clear() == len(expected)
        assert await store.keys() == []


@pytest.mark.redis
@pytest.mark.parametrize("max_connections", [2, 3, 5])
@pytest.mark.parametrize("index", [True, False], ids=["index", "scan"])
async def test_a_sharded_tenant_works_within_a_small_pool(
    redis_server: FixtureServer, index: bool, max_connections: int
) -> None:
    """A 16-shard tenant on a pool of a few connections: every operation succeeds, its
    fan-outs running as many shards at a time as the pool can serve. (redis-py's pool fails
    rather than waits: a write to 16 shards at once failed on a pool of 5.)"""
    await _every_operation(redis_server.url, index=index, max_connections=max_connections)


@pytest.mark.cluster
@pytest.mark.parametrize("index", [True, False], ids=["index", "scan"])
async def test_a_sharded_tenant_works_within_a_small_pool_on_a_cluster(
    redis_cluster: FixtureCluster, index: bool
) -> None:
    """The same on a cluster, where each node's pool opens at most ``max_connections``."""
    await _every_operation(redis_cluster.url, index=index, max_connections=3)


@pytest.mark.redis
async def test_a_full_pool_is_named_as_such(redis_server: FixtureServer) -> None:
    """A reindex needs two connections (the SCAN's and a check's): on a pool of one it fails,
    and the error says the pool is full, not that the server cannot be reached."""
    async with tenantkv.open_store(
        redis_server.url, tenant=new_tenant(), index=True, max_connections=1
    ) as store:
        await store.set_many({f"k{i}": i for i in range(100)})
        with pytest.raises(tenantkv.BackendUnavailableError, match="max_connections") as caught:
            await store.reindex()
        assert "cannot reach" not in str(caught.value)
        assert await store.clear() == 100


def _url(store: TenantStore) -> str:
    backend = store.backend
    if isinstance(backend, MemoryBackend):
        return f"memory://{backend.keyspace.name}"
    return store.url


async def test_sharded_store_writes_through_every_shards_index() -> None:
    async with tenantkv.open_store(
        f"memory://{new_tenant()}", tenant="t", index=True, shards=3
    ) as store:
        enumerator = store._enumerator  # the wiring is what is tested
        assert isinstance(enumerator, IndexEnumerator)
        assert len(enumerator.indexes) == 3
        assert all(isinstance(index, MemoryKeyIndex) for index in enumerator.indexes)
        assert isinstance(store._writer, ShardedKeyWriter)
        assert "3 shards" in repr(store)


async def test_cancelling_a_sharded_listing_leaves_no_coroutine_unawaited(
    store: TenantStore,
) -> None:
    """Each shard's chunk (and prune, count) is only created when its task runs, so a
    cancel during the fan-out leaves nothing "never awaited" (an error under ``-W error``)."""
    await store.set_many({f"k{i}": i for i in range(2000)})
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.keys(count=10),
        lambda: store.count_keys("k1*"),
        lambda: store.prune_index(),
        lambda: store.clear(count=10),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls:
            for steps in range(6):
                task = asyncio.ensure_future(call())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        gc.collect()
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == []
