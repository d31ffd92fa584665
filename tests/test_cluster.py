"""The Redis Cluster backend: URL, routing by slot, and enumeration that survives topology change.

The contract suite runs on the session's cluster through ``STORE_KINDS``
(conftest). Tests here that fail a node over or move a slot use clusters of
their own, so the session's cluster stays healthy. The enumeration and
topology tests are ``matrix`` tests: they run on every server kind of
``--servers`` (Redis 7.0 and 8.2, Valkey 8.1 and 9.1 by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import tenantkv
from tenantkv import Namespace, TenantStore, escape_glob
from tenantkv.backends.redis import RedisClusterBackend
from tenantkv.backends.redis.topology import (
    CLUSTER_SLOTS,
    parse_cluster_nodes,
    pinned_slot,
    slot_of,
)
from tenantkv.glob import compile_glob
from tenantkv.pacing import Pace
from tenantkv.urls import split_url

from .conftest import SERVER_ARGS, new_tenant
from .servers import FixtureCluster, FixtureServer, ServerKind

pytestmark = pytest.mark.cluster

# --------------------------------------------------------------------------- helpers


def new_cluster(kind: ServerKind) -> FixtureCluster:
    """A cluster (not started yet: use it in a ``with`` block) of the given server kind."""
    return FixtureCluster(3, 1, binary=kind.binary, extra_args=SERVER_ARGS)


@pytest.fixture(scope="module")
def version_cluster(server_kind: ServerKind) -> Iterator[FixtureCluster]:
    """A cluster of this module per server kind; tests may fail it over or move slots,
    but must leave it healthy (3 primaries with a replica each)."""
    with new_cluster(server_kind) as cluster:
        yield cluster


def nodes_view(cluster: FixtureCluster) -> list[tuple[str, int, str, list[tuple[int, int]]]]:
    """(node id, port, primary's id or "-", slot ranges) per node, from a running node."""
    for node in cluster.nodes:
        if not node.running:
            continue
        with node.client() as client:
            text = client.execute_command("CLUSTER", "NODES")
        if isinstance(text, dict):  # redis-py parses it when decoding; ask for raw text
            raise AssertionError("unexpected parsed CLUSTER NODES")
        return [
            (
                entry.node_id,
                entry.address[1] if entry.address else 0,
                line.split()[3],
                list(entry.ranges),
            )
            for entry, line in zip(parse_cluster_nodes(text), text.splitlines(), strict=True)
        ]
    raise AssertionError("no node is running")


def node_by_port(cluster: FixtureCluster, port: int) -> FixtureServer:
    return next(node for node in cluster.nodes if node.port == port)


def node_id(node: FixtureServer) -> str:
    with node.client() as client:
        return str(client.execute_command("CLUSTER", "MYID"))


def owner_of(cluster: FixtureCluster, slot: int) -> FixtureServer:
    for _, port, _, ranges in nodes_view(cluster):
        if any(lo <= slot <= hi for lo, hi in ranges):
            return node_by_port(cluster, port)
    raise AssertionError(f"slot {slot} has no owner")


def replica_of(cluster: FixtureCluster, primary: FixtureServer) -> FixtureServer:
    """The primary's replica, from the primary's own ``ROLE`` (its replication links)."""
    with primary.client() as client:
        reply: Any = client.execute_command("ROLE")
    assert reply[0] == "master", f"{primary} is not a primary: {reply!r}"
    assert reply[2], f"{primary} has no replica"
    return node_by_port(cluster, int(reply[2][0][1]))


def role(node: FixtureServer) -> str:
    with node.client() as client:
        reply: Any = client.execute_command("ROLE")
    return str(reply[0])


def poll(check: Any, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    interval = 0.01
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, 0.2)


def scan_calls(node: FixtureServer) -> int:
    with node.client() as client:
        stats: dict[str, Any] = client.info("commandstats")
    entry = stats.get("cmdstat_scan")
    return 0 if entry is None else int(entry["calls"])


def tenant_on(cluster: FixtureCluster, primary: FixtureServer, label: str = "t") -> str:
    """A fresh tenant ID whose slot the given primary owns."""
    ranges = next(r for _, port, _, r in nodes_view(cluster) if port == primary.port)
    while True:
        tenant = new_tenant(label)
        slot = slot_of("{" + tenant + "}")
        if any(lo <= slot <= hi for lo, hi in ranges):
            return tenant


def replicate(primary: FixtureServer) -> None:
    """Wait until the primary's replica has acknowledged every write so far."""
    with primary.client() as client:
        acked = client.execute_command("WAIT", 1, 10_000)
    assert acked == 1


def fail_over(replica: FixtureServer, primary: FixtureServer, attempts: int = 3) -> None:
    """Promote *replica* with ``CLUSTER FAILOVER`` and wait until *primary* follows it.

    Redis abandons a manual failover that has not finished in 5 s (a busy
    machine can miss that); it is then asked again, up to *attempts* times.
    """
    for _ in range(attempts):
        with replica.client() as client:
            assert client.execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if role(replica) == "master" and role(primary) == "slave":
                return
            time.sleep(0.05)
    pytest.fail(
        f"{replica} was not promoted after {attempts} CLUSTER FAILOVER requests\n"
        f"replica log:\n{replica.log_tail(15)}\nprimary log:\n{primary.log_tail(15)}"
    )


async def seed(store: TenantStore, keys: list[str], chunk: int = 5000) -> None:
    for start in range(0, len(keys), chunk):
        await store.set_many({key: 1 for key in keys[start : start + chunk]})


class PausedEnumeration:
    """``iter_keys`` consumed by hand: take some keys, break the cluster, take the rest."""

    def __init__(self, store: TenantStore, count: int) -> None:
        self._iterator: AsyncIterator[str] = store.iter_keys(count=count).__aiter__()
        self.found: list[str] = []

    async def take(self, n: int) -> None:
        for _ in range(n):
            self.found.append(await self._iterator.__anext__())

    async def rest(self) -> None:
        async for key in self._iterator:
            self.found.append(key)


# --------------------------------------------------------------------------- no server needed


def test_parse_cluster_url() -> None:
    parsed = split_url("redis+cluster://us%40er:p%3Ass@h1:7000,h2,[::1]:7002/?socket_timeout=2.5")
    assert parsed.nodes == (("h1", 7000), ("h2", 6379), ("::1", 7002))
    assert parsed.client_options == {
        "username": "us@er",
        "password": "p:ss",
        "socket_timeout": 2.5,
    }
    tls = split_url("rediss+cluster://:secret@h:1")
    assert tls.client_options == {"password": "secret", "ssl": True}
    # What the cluster client gets: the same, checked, with tenantkv's own settings.
    options = tenantkv.parse_url("rediss+cluster://:secret@h:1").client_options
    assert options["password"] == "secret"
    assert options["ssl"] is True
    assert options["decode_responses"] is False


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://h:notaport",
        "redis+cluster://h:1,h:70000",
        "redis+cluster://h:1/3",
    ],
)
def test_bad_cluster_urls_are_rejected(url: str) -> None:
    with pytest.raises(tenantkv.InvalidURLError):
        split_url(url)


async def test_open_rejects_bad_url_and_unknown_option_without_password() -> None:
    with pytest.raises(tenantkv.InvalidURLError) as info:
        await tenantkv.open_store("redis+cluster://:hunter2@h:1,h:x", tenant="t")
    assert "hunter2" not in str(info.value)
    with pytest.raises(tenantkv.InvalidURLError):
        await tenantkv.open_store("redis+cluster://127.0.0.1:1", tenant="t", no_such_option=1)
    with pytest.raises(tenantkv.InvalidURLError):
        await tenantkv.open_store("redis+cluster://127.0.0.1:1?topology_wait_ms=-1", tenant="t")
    for wait in ([1000], 1.5, True, "soon"):
        with pytest.raises(tenantkv.InvalidURLError):
            await tenantkv.open_store(
                "redis+cluster://127.0.0.1:1", tenant="t", topology_wait_ms=wait
            )


async def test_unreachable_cluster_is_unavailable_and_url_is_redacted() -> None:
    url = "redis+cluster://:hunter2@127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(tenantkv.BackendUnavailableError) as info:
        await tenantkv.open_store(url, tenant="t", socket_connect_timeout=0.5)
    assert "hunter2" not in str(info.value)
    assert info.value.url == "redis+cluster://:***@127.0.0.1:1,127.0.0.1:2"


def test_pinned_slot() -> None:
    assert pinned_slot("tkv:{shop-1}:*") == slot_of("{shop-1}")
    assert pinned_slot("tkv:{shop-1}:a*{b}") == slot_of("{shop-1}")
    assert pinned_slot("tkv:*") is None
    assert pinned_slot("tkv:{shop-*}:*") is None  # the tag itself is a pattern
    assert pinned_slot("t?v:{shop}:*") is None  # so is the text before it
    assert pinned_slot("tkv:{}:*") is None  # an empty tag hashes the whole key
    assert pinned_slot("tkv:{open") is None
    assert pinned_slot("tkv:\\{x}:*") is None


def test_parse_cluster_nodes() -> None:
    text = (
        "aaa 127.0.0.1:7000@17000 myself,master - 0 0 3 connected 0-100 200 [101->-bbb]\n"
        "bbb 127.0.0.1:7001@17001,host master - 0 0 4 connected 101-199 [300-<-ccc]\n"
        "ccc :0@0 slave,fail,noaddr aaa 0 0 3 disconnected\n"
    )
    me, other, lost = parse_cluster_nodes(text)
    assert me.node_id == "aaa"
    assert me.address == ("127.0.0.1", 7000)
    assert me.primary
    assert "myself" in me.flags
    assert me.healthy
    assert me.config_epoch == 3
    assert me.ranges == ((0, 100), (200, 200))
    assert me.moving == frozenset({101})
    assert me.owns_all({0, 50, 100, 200})
    assert not me.owns_all({101})
    assert other.moving == frozenset({300})
    assert other.ranges == ((101, 199),)
    assert lost.address is None
    assert not lost.primary
    assert not lost.healthy


# --------------------------------------------------------------------------- on a healthy cluster


async def test_open_from_one_startup_node(redis_cluster: FixtureCluster) -> None:
    first = redis_cluster.nodes[0]
    async with tenantkv.open_store(
        f"redis+cluster://127.0.0.1:{first.port}", tenant=new_tenant()
    ) as store:
        await store.set("k", 1)
        assert await store.keys() == ["k"]
        assert isinstance(store.backend, RedisClusterBackend)


@pytest.mark.matrix
async def test_keys_spread_over_every_primary_are_all_enumerated(
    version_cluster: FixtureCluster,
) -> None:
    primaries = version_cluster.primaries()
    assert len(primaries) == 3
    prefix = "spread" + new_tenant("")
    stores: dict[str, TenantStore] = {}
    try:
        for i, primary in enumerate(primaries):
            for j in range(2):
                tenant = tenant_on(version_cluster, primary, f"p{i}{j}")
                stores[tenant] = await tenantkv.open_store(
                    version_cluster.url, tenant=tenant, prefix=prefix
                )
        expected: dict[str, set[str]] = {}
        for n, (tenant, store) in enumerate(stores.items()):
            keys = {f"k{n}:{i}" for i in range(300 + 50 * n)}
            await seed(store, sorted(keys))
            expected[tenant] = keys
        # Per tenant: each one's slot owner is walked, with COUNT 1 and 1000.
        for tenant, store in stores.items():
            for count in (1, 1000):
                found = [key async for key in store.iter_keys(count=count)]
                assert len(found) == len(set(found))
                assert set(found) == expected[tenant]
            assert await store.count_keys() == len(expected[tenant])
        # Across tenants (a pattern that pins no slot): every primary is walked.
        backend = next(iter(stores.values())).backend
        before = {node.port: scan_calls(node) for node in primaries}
        every = {f"{prefix}:{{{t}}}:{k}" for t, keys in expected.items() for k in keys}
        for count in (1, 1000):
            found_all: set[str] = set()
            async for page in backend.scan(f"{prefix}:*", Pace(count=count)):
                found_all.update(key.decode() for key in page)
            assert found_all == every
        assert all(scan_calls(node) > before[node.port] for node in primaries)
        # clear() and count_keys() of every tenant, whichever node holds it.
        for tenant, store in stores.items():
            assert await store.clear(count=7) == len(expected[tenant])
            assert await store.count_keys() == 0
        empty = [key async for page in backend.scan(f"{prefix}:*", Pace()) for key in page]
        assert empty == []
    finally:
        for store in stores.values():
            await store.aclose()


@pytest.mark.matrix
async def test_pinned_tenant_is_scanned_on_its_slot_owner_only(
    version_cluster: FixtureCluster,
) -> None:
    primaries = version_cluster.primaries()
    owner = primaries[1]
    tenant = tenant_on(version_cluster, owner)
    async with tenantkv.open_store(version_cluster.url, tenant=tenant) as store:
        await seed(store, [f"k{i}" for i in range(500)])
        before = {node.port: scan_calls(node) for node in primaries}
        assert len(await store.keys(count=50)) == 500
        after = {node.port: scan_calls(node) for node in primaries}
    assert after[owner.port] > before[owner.port]
    assert all(after[n.port] == before[n.port] for n in primaries if n is not owner)


async def test_each_node_walk_is_one_request_ahead(redis_cluster: FixtureCluster) -> None:
    """A sharded tenant is walked on every primary at once; each node's next SCAN reaches it
    while pages wait to be handed on, and nothing more is sent while the consumer pauses."""
    async with tenantkv.open_store(redis_cluster.url, tenant=new_tenant(), shards=8) as store:
        await seed(store, [f"k{i:05d}" for i in range(6000)])
        primaries = redis_cluster.primaries()
        before = {node.port: scan_calls(node) for node in primaries}
        async with contextlib.aclosing(store.iter_keys(count=100)) as keys:
            first = [await keys.__anext__()]
            await asyncio.sleep(0.2)
            paused = {node.port: scan_calls(node) - before[node.port] for node in primaries}
            await asyncio.sleep(0.2)
            assert paused == {node.port: scan_calls(node) - before[node.port] for node in primaries}
            assert all(calls >= 2 for calls in paused.values()), paused
            found = first + [key async for key in keys]
        assert len(found) == len(set(found)) == 6000
        assert await store.clear() == 6000


async def test_get_many_set_many_unlink_group_keys_by_slot(redis_cluster: FixtureCluster) -> None:
    async with tenantkv.open_store(redis_cluster.url, tenant=new_tenant()) as store:
        backend = store.backend
        assert isinstance(backend, RedisClusterBackend)
        keys = [f"plain-{i}" for i in range(200)] + [f"{{tag{i % 7}}}:x{i}" for i in range(50)]
        slots = {slot_of(key) for key in keys}
        assert len(slots) > 50  # spread over many slots and every node
        await backend.set_many([(key, key.encode()) for key in keys], 60_000)
        values = await backend.get_many([*keys, "missing-key"])
        assert values == [key.encode() for key in keys] + [None]
        ttl = await backend.get_ttl(keys[0])
        assert ttl is not None
        assert 0 < ttl <= 60_000
        assert await backend.unlink([*keys, "missing-key"]) == len(keys)
        assert await backend.get_many(keys) == [None] * len(keys)


async def test_an_index_walk_relearns_a_slot_map_it_has_lost(
    redis_cluster: FixtureCluster,
) -> None:
    """The cluster client's slot map emptied (as after a failed refresh): the index walk's
    node lookup learns the map again instead of failing."""
    async with tenantkv.open_store(redis_cluster.url, tenant=new_tenant(), index=True) as store:
        await store.set_many({f"k{i:03d}": i for i in range(300)})
        backend = store.backend
        assert isinstance(backend, RedisClusterBackend)
        backend._client.nodes_manager.slots_cache.clear()
        assert sorted(await store.keys()) == [f"k{i:03d}" for i in range(300)]
        assert await store.clear() == 300


async def test_set_many_is_atomic_per_slot(redis_cluster: FixtureCluster) -> None:
    async with tenantkv.open_store(redis_cluster.url, tenant=new_tenant()) as store:
        await store.set_many({f"k{i}": i for i in range(3000)}, ttl_ms=60_000)
        assert await store.count_keys() == 3000
        ttl = await store.get_ttl("k2999")
        assert ttl is not None
        assert ttl > 0


async def test_publish_counts_subscribers_of_other_stores_on_any_node(
    redis_cluster: FixtureCluster,
) -> None:
    tenant = new_tenant()
    one_node = redis_cluster.nodes[-1]
    async with (
        tenantkv.open_store(redis_cluster.url, tenant=tenant) as publisher,
        tenantkv.open_store(f"redis+cluster://127.0.0.1:{one_node.port}", tenant=tenant) as other,
        other.subscribe("events") as sub,
    ):
        assert await publisher.publish("events", {"n": 1}) == 1
        assert await asyncio.wait_for(sub.__anext__(), 5) == {"n": 1}


async def test_whole_api_issues_no_keys_on_any_node(redis_cluster: FixtureCluster) -> None:
    options: dict[str, Any]
    for options in ({}, {"index": True}, {"index": True, "shards": 8}):
        async with tenantkv.open_store(redis_cluster.url, tenant=new_tenant(), **options) as store:
            await store.set("a", 1, ttl_ms=10_000)
            await store.set_many({"b": 2, "c": 3})
            await store.get_many(["a", "b"])
            await store.set_ttl("b", 5000)
            await store.list_push("l", 1)
            await store.list_get_all("l")
            async with store.subscribe("ch") as sub:
                await store.publish("ch", 1)
                assert await asyncio.wait_for(sub.__anext__(), 5) == 1
            assert sorted(await store.keys()) == ["a", "b", "c", "l"]
            assert await store.count_keys("a*") == 1
            await store.stats()
            await store.delete("c")
            assert await store.clear() == 3
    for node in redis_cluster.nodes:
        with node.client() as client:
            stats: dict[str, Any] = client.info("commandstats")
        for forbidden in ("keys", "flushdb", "flushall", "smembers"):
            assert f"cmdstat_{forbidden}" not in stats, (node, forbidden)


# --------------------------------------------------------------------------- sharding


def shard_matches(namespace: Namespace, pattern: str) -> list[str]:
    """One ``SCAN MATCH`` pattern per shard, each pinned to that shard's hash slot."""
    return [escape_glob(namespace.shard_prefix(s)) + pattern for s in range(namespace.shards)]


def test_sharded_namespace_layout() -> None:
    plain = Namespace("shop", "app")
    sharded = Namespace("shop", "app", shards=8)
    assert plain.key("k") == "app:{shop}:k"
    key = sharded.key("k")
    shard = sharded.shard_of("k")
    assert key == f"app:{{shop:{shard:02d}}}:k"
    assert sharded.shard_of("k") == zlib.crc32(b"k") % 8  # stable across processes
    assert {sharded.shard_of(f"k{i}") for i in range(200)} == set(range(8))
    for name in ["k", "a:b", "{x}", "ümlaut", "*"]:
        assert sharded.relative(sharded.key(name)) == name
        assert compile_glob(sharded.match("*"))(sharded.key(name))
        assert compile_glob(shard_matches(sharded, "*")[sharded.shard_of(name)])(sharded.key(name))
    # Neither layout's pattern reaches the other's keys, nor another tenant's.
    for other in [plain, Namespace("shop.x", "app", 8), Namespace("sho", "app", 8)]:
        for name in ["k", "x", "00}:k"]:
            assert not compile_glob(sharded.match("*"))(other.key(name))
            assert not compile_glob(other.match("*"))(sharded.key(name))
    assert [pinned_slot(m) for m in shard_matches(sharded, "*")] == [
        slot_of(f"{{shop:{n:02d}}}") for n in range(8)
    ]
    assert pinned_slot(sharded.match("*")) is None  # every shard: every primary is walked
    assert sharded.meta_key("idx", 3) == "app:{shop:03}#idx"
    assert sharded.meta_key("idx") == plain.meta_key("idx") == "app:{shop}#idx"
    for bad in (0, 101, True, "2"):
        with pytest.raises(tenantkv.InvalidValueError):
            Namespace("shop", shards=bad)  # type: ignore[arg-type]


async def test_shards_option() -> None:
    url = f"memory://{new_tenant()}"
    async with tenantkv.open_store(url + "?shards=4", tenant="t") as store:
        assert store.namespace.shards == 4
    for bad in ("0", "x", "101"):
        with pytest.raises(tenantkv.InvalidURLError):
            await tenantkv.open_store(f"{url}?shards={bad}", tenant="t")
    async with tenantkv.open_store(url + "?shards=4&index=1", tenant="t") as store:
        assert store.namespace.shards == 4
        assert "IndexEnumerator" in repr(store)


@pytest.mark.matrix
async def test_sharded_tenant_spreads_over_every_primary(version_cluster: FixtureCluster) -> None:
    primaries = version_cluster.primaries()
    keys = {f"txn:{i}" for i in range(3000)}
    async with tenantkv.open_store(version_cluster.url, tenant=new_tenant(), shards=16) as store:
        await seed(store, sorted(keys))
        sizes = {}
        for node in primaries:
            with node.client() as client:
                sizes[node.port] = int(client.dbsize())
        before = {node.port: scan_calls(node) for node in primaries}
        for count in (1, 1000):
            found = [key async for key in store.iter_keys(count=count)]
            assert len(found) == len(set(found))
            assert set(found) == keys
        assert all(scan_calls(node) > before[node.port] for node in primaries)
        assert await store.count_keys() == len(keys)
        assert await store.count_keys("txn:1*") == sum(k.startswith("txn:1") for k in keys)
        assert await store.clear() == len(keys)
        assert await store.count_keys() == 0
        for node in primaries:
            with node.client() as client:
                # Every primary held some of the tenant, and clear() reached it.
                assert int(client.dbsize()) < sizes[node.port]


# --------------------------------------------------------------------------- topology changes

TENANT_KEYS = 20_000


@pytest.mark.matrix
@pytest.mark.parametrize("shards", [1, 8])
async def test_manual_failover_during_enumeration(
    version_cluster: FixtureCluster, shards: int
) -> None:
    primary = version_cluster.primaries()[0]
    tenant = tenant_on(version_cluster, primary)
    keys = {f"txn:{i}" for i in range(TENANT_KEYS)}
    async with tenantkv.open_store(version_cluster.url, tenant=tenant, shards=shards) as store:
        await seed(store, sorted(keys))
        replica = replica_of(version_cluster, primary)
        for node in version_cluster.primaries():
            replicate(node)
        walk = PausedEnumeration(store, count=100)
        await walk.take(500)  # the walk of the primary has started, its cursor is mid-way
        assert len(set(walk.found)) < TENANT_KEYS
        fail_over(replica, primary)
        version_cluster.wait_for_ok(30, primaries=3, replicas=3)
        scans_on_new_primary = scan_calls(replica)
        await walk.rest()
        # Complete: the walk of the demoted node was not trusted and the new
        # primary was walked from cursor 0.
        assert set(walk.found) == keys
        assert len(walk.found) == len(set(walk.found))
        assert scan_calls(replica) > scans_on_new_primary
        # A second run after the failover is complete.
        assert sorted(await store.keys()) == sorted(keys)
        assert await store.count_keys() == TENANT_KEYS


async def killed_primary_during_enumeration(kind: ServerKind, wait_ms: int) -> None:
    """Kill a primary of a cluster of its own in the middle of an enumeration."""
    with new_cluster(kind) as cluster:
        primary = cluster.primaries()[0]
        tenant = tenant_on(cluster, primary)
        keys = {f"txn:{i}" for i in range(TENANT_KEYS)}
        async with tenantkv.open_store(
            cluster.url, tenant=tenant, topology_wait_ms=wait_ms
        ) as store:
            await seed(store, sorted(keys))
            replicate(primary)
            walk = PausedEnumeration(store, count=100)
            await walk.take(500)
            primary.kill()
            if wait_ms == 0:
                # Nothing to wait for: the walk cannot be finished, and says so.
                with pytest.raises(tenantkv.TopologyChangedError):
                    await walk.rest()
            else:
                # The enumeration waits for the replica's promotion, then walks it from 0.
                await walk.rest()
                assert set(walk.found) == keys
            cluster.wait_for_ok(30, primaries=3, replicas=2)
            assert sorted(await store.keys()) == sorted(keys)
            assert await store.count_keys() == TENANT_KEYS


async def test_killed_primary_during_enumeration_raises_without_a_wait(
    server_kind: ServerKind,
) -> None:
    await killed_primary_during_enumeration(server_kind, 0)


@pytest.mark.matrix
async def test_killed_primary_during_enumeration_waits_for_the_promotion(
    server_kind: ServerKind,
) -> None:
    await killed_primary_during_enumeration(server_kind, 30_000)


def migrate_slot(
    cluster: FixtureCluster,
    slot: int,
    source: FixtureServer,
    target: FixtureServer,
    *,
    finish: bool,
) -> None:
    """Move ``slot`` from ``source`` to ``target`` (as ``redis-cli --cluster reshard`` does).

    With ``finish=False`` half of the keys are moved and the slot is left
    MIGRATING/IMPORTING.
    """
    source_id, target_id = node_id(source), node_id(target)
    with source.client() as src, target.client() as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        total = int(src.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
        limit = total if finish else total // 2
        moved = 0
        while moved < limit:
            batch: list[str] = src.execute_command(
                "CLUSTER", "GETKEYSINSLOT", slot, min(1000, limit - moved)
            )
            if not batch:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 10_000, "KEYS", *batch)
            moved += len(batch)
        if not finish:
            return
        finish_migration(cluster, slot, target)


def finish_migration(cluster: FixtureCluster, slot: int, target: FixtureServer) -> None:
    target_id = node_id(target)
    with target.client() as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    for node in cluster.primaries():
        if node is not target:
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    poll(lambda: owner_of(cluster, slot) is target, what="the slot to move")
    cluster.wait_for_ok(30, primaries=3, replicas=3)


def move_remaining_keys(slot: int, source: FixtureServer, target: FixtureServer) -> None:
    with source.client() as src:
        while batch := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 10_000, "KEYS", *batch)


@pytest.mark.matrix
async def test_slot_migration_during_enumeration(version_cluster: FixtureCluster) -> None:
    primaries = version_cluster.primaries()
    source, target = primaries[0], primaries[1]
    tenant = tenant_on(version_cluster, source)
    slot = slot_of("{" + tenant + "}")
    keys = {f"txn:{i}" for i in range(TENANT_KEYS)}
    async with tenantkv.open_store(version_cluster.url, tenant=tenant) as store:
        await seed(store, sorted(keys))
        walk = PausedEnumeration(store, count=100)
        await walk.take(500)
        migrate_slot(version_cluster, slot, source, target, finish=True)
        scans_on_target = scan_calls(target)
        await walk.rest()
        assert set(walk.found) == keys
        assert scan_calls(target) > scans_on_target  # the new owner was walked from 0
        assert sorted(await store.keys()) == sorted(keys)
        assert await store.count_keys() == TENANT_KEYS


@pytest.mark.matrix
async def test_enumeration_during_an_unfinished_migration_raises(
    version_cluster: FixtureCluster,
) -> None:
    primaries = version_cluster.primaries()
    source, target = primaries[2], primaries[0]
    tenant = tenant_on(version_cluster, source)
    slot = slot_of("{" + tenant + "}")
    keys = {f"txn:{i}" for i in range(TENANT_KEYS)}
    async with tenantkv.open_store(
        version_cluster.url, tenant=tenant, topology_wait_ms=300
    ) as store:
        await seed(store, sorted(keys))
        walk = PausedEnumeration(store, count=100)
        await walk.take(500)
        # Half the keys move to the target; the slot stays MIGRATING on the source.
        migrate_slot(version_cluster, slot, source, target, finish=False)
        with pytest.raises(tenantkv.TopologyChangedError) as info:
            await walk.rest()
        assert info.value.command == "SCAN"
        with pytest.raises(tenantkv.TopologyChangedError):
            await store.keys()
        # Once the migration is done, enumeration is complete again.
        move_remaining_keys(slot, source, target)
        finish_migration(version_cluster, slot, target)
        assert sorted(await store.keys()) == sorted(keys)


async def test_slot_migration_during_an_index_walk(version_cluster: FixtureCluster) -> None:
    """An index walk reads on a connection of its own to the slot's owner; when the slot
    moves (ASK, then MOVED), the walk goes on through the cluster client, complete."""
    primaries = version_cluster.primaries()
    source, target = primaries[1], primaries[2]
    tenant = tenant_on(version_cluster, source)
    slot = slot_of("{" + tenant + "}")
    keys = {f"txn:{i:05d}" for i in range(TENANT_KEYS)}
    async with tenantkv.open_store(version_cluster.url, tenant=tenant, index=True) as store:
        await seed(store, sorted(keys))
        walk = PausedEnumeration(store, count=100)
        await walk.take(500)
        migrate_slot(version_cluster, slot, source, target, finish=True)
        await walk.rest()
        assert len(walk.found) == len(set(walk.found))
        assert set(walk.found) == keys
        assert await store.clear() == TENANT_KEYS
        assert await store.keys() == []


def test_every_slot_is_covered_by_the_session_cluster(redis_cluster: FixtureCluster) -> None:
    covered = sum(hi - lo + 1 for _, _, _, ranges in nodes_view(redis_cluster) for lo, hi in ranges)
    assert covered == CLUSTER_SLOTS


async def test_indexed_writes_reload_scripts_the_nodes_lost(redis_cluster: FixtureCluster) -> None:
    """A primary without the index scripts (new after a failover, restarted, flushed) gets them."""
    async with tenantkv.open_store(
        redis_cluster.url, tenant=new_tenant(), index=True, shards=4
    ) as store:
        await store.set("before", 0)
        for node in redis_cluster.nodes:
            with node.client() as client:
                client.script_flush()
        await store.set_many({f"k{i}": i for i in range(20)}, ttl_ms=60_000)
        await store.set("one", 1)
        assert await store.count_keys() == 22
        assert (await store.verify_index()).clean
