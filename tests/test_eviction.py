"""The key index and a server that evicts keys (``maxmemory`` with an eviction policy).

``allkeys-*`` may evict the index itself (listings would then silently see
nothing), so an indexed store refuses to open there; ``volatile-*`` evicts
only keys with a TTL, so the index outlives evicted data keys until a prune
or ``reindex``: the store warns, and ``verify_index`` reports them.
"""

from __future__ import annotations

import warnings

import pytest

import tenantkv

from .conftest import new_tenant
from .servers import FixtureCluster, FixtureServer

pytestmark = pytest.mark.redis


def server_with(policy: str, maxmemory: str = "8mb") -> FixtureServer:
    return FixtureServer(extra_args=("--maxmemory", maxmemory, "--maxmemory-policy", policy))


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
async def test_an_index_that_may_be_evicted_is_refused(policy: str) -> None:
    with server_with(policy) as server:
        with pytest.raises(tenantkv.EvictionPolicyError, match=policy) as info:
            await tenantkv.open_store(server.url, tenant=new_tenant(), index=True)
        assert "noeviction" in str(info.value)
        # Without the index, nothing can lose track of the data: the store opens.
        async with tenantkv.open_store(server.url, tenant=new_tenant()) as store:
            await store.set("k", 1)
            assert await store.keys() == ["k"]


@pytest.mark.parametrize("policy", ["noeviction", "allkeys-lru"])
async def test_no_maxmemory_or_noeviction_opens_without_a_word(policy: str) -> None:
    maxmemory = "8mb" if policy == "noeviction" else "0"
    with server_with(policy, maxmemory) as server, warnings.catch_warnings():
        warnings.simplefilter("error")
        async with tenantkv.open_store(server.url, tenant=new_tenant(), index=True) as store:
            await store.set("k", 1)


async def test_volatile_eviction_warns_and_verify_index_reports_the_evicted_keys() -> None:
    with server_with("volatile-lru", "16mb") as server:
        tenant = new_tenant()
        with pytest.warns(tenantkv.IndexEvictionWarning, match="volatile-lru"):
            store = await tenantkv.open_store(server.url, tenant=tenant, index=True)
        try:
            value = "x" * 2000
            for batch in range(40):  # ~40 MB of keys with a TTL into 16 MB: most are evicted
                await store.set_many({f"k{batch}:{i}": value for i in range(500)}, ttl_ms=3_600_000)
            with server.client() as client:
                evicted = int(client.info("stats")["evicted_keys"])
            assert evicted > 1000
            report = await store.verify_index()
            assert report.stale_count >= evicted - report.missing_count
            assert report.stale_count > 0
            repaired = await store.reindex()
            assert repaired.stale_count == report.stale_count
            assert (await store.verify_index()).clean
            assert await store.count_keys() == repaired.scanned_keys
        finally:
            await store.aclose()


@pytest.mark.cluster
async def test_a_cluster_with_one_evicting_primary_refuses_the_index() -> None:
    with FixtureCluster(3, 0) as cluster:
        with cluster.primaries()[1].client() as client:
            client.config_set("maxmemory", "64mb")
            client.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(tenantkv.EvictionPolicyError, match="allkeys-lru"):
            await tenantkv.open_store(cluster.url, tenant=new_tenant(), index=True)
