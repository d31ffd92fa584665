"""The Redis under test: connecting, refusing unsafe targets, describing it, cleaning up.

With ``--url`` the load test is a guest on someone's server, so before it
writes anything it checks that the database is empty (or that the user said
``--allow-nonempty``) and that nothing already lives under its own prefix;
everything it writes lives under that prefix, and at the end it deletes
exactly that, through the library's ``clear()``.

A :class:`Target` is either one server (``redis://``) or a Redis Cluster
(``redis+cluster://``). Its :attr:`Target.nodes` are what the old way, the
probe and SLOWLOG must each be pointed at: the server itself, or every
primary of the cluster. The library is always opened on :attr:`Target.url`.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from tenantkv import StoreURL, TenantStore, escape_glob, redact_url

from ..errors import CLIError, redis_errors
from .servers import server_identity

__all__ = [
    "Node",
    "Target",
    "Written",
    "check_target",
    "connect_target",
    "describe_environment",
    "describe_machine",
    "remove_leftovers",
]

ADMIN_SOCKET_TIMEOUT_S = 600.0


@dataclass
class Node:
    """One server the tool talks to directly: the standalone server, or one cluster primary."""

    name: str
    client: aioredis.Redis
    #: A ``redis://`` URL of this node alone (credentials included), for the probe.
    url: str


@dataclass
class Target:
    """The Redis under test.

    ``client`` seeds data and runs redis-py's ``scan_iter`` (a cluster client
    on a cluster); ``nodes`` are the standalone server or every primary.
    """

    kind: str  # "standalone" or "cluster"
    url: StoreURL
    client: aioredis.Redis | AsyncRedisCluster
    nodes: list[Node]

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"

    @property
    def redacted(self) -> str:
        return self.url.redacted

    def node_of(self, key: str) -> int:
        """The index in :attr:`nodes` of the node serving ``key`` (0 on a single server)."""
        if not isinstance(self.client, AsyncRedisCluster):
            return 0
        owner = self.client.get_node_from_key(key)
        for i, node in enumerate(self.nodes):
            if owner is not None and node.name == owner.name:
                return i
        raise CLIError(f"no primary of {self.redacted} serves the key {key!r}")

    async def dbsize(self) -> int:
        """Keys on the server, or on every primary together."""
        with redis_errors(self.redacted, "DBSIZE"):
            sizes: list[int] = await asyncio.gather(*(n.client.dbsize() for n in self.nodes))
        return sum(sizes)

    async def aclose(self) -> None:
        for node in self.nodes:
            if node.client is not self.client:
                await node.client.aclose()
        await self.client.aclose()


async def connect_target(parsed: StoreURL) -> Target:
    """Connect to ``parsed``: one server (``redis://``) or a cluster (``redis+cluster://``).

    The tool's own clients (seeding, the old way, SLOWLOG) get the URL's
    credentials and redis-py options, as the library's stores do, and a long
    socket timeout: a ``KEYS`` over a big keyspace must not time out.
    """
    options = {**parsed.client_options, "socket_timeout": ADMIN_SOCKET_TIMEOUT_S}
    if parsed.backend == "cluster":
        return await _connect_cluster(parsed, options)
    ((host, port),) = parsed.nodes
    client = aioredis.Redis(host=host, port=port, **options)
    try:
        with redis_errors(parsed.redacted, "PING"):
            await client.ping()
    except BaseException:
        await client.aclose()
        raise
    node = Node(parsed.redacted, client, parsed.node_url((host, port)))
    return Target("standalone", parsed, client, [node])


async def _connect_cluster(parsed: StoreURL, options: dict[str, Any]) -> Target:
    client = AsyncRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes], **options
    )
    node_options = {k: v for k, v in options.items() if k not in _CLUSTER_ONLY_OPTIONS}
    nodes: list[Node] = []
    try:
        with redis_errors(parsed.redacted, "CLUSTER SLOTS"):
            await client.initialize()
            for primary in sorted(client.get_primaries(), key=lambda n: (n.host, n.port)):
                address = (primary.host, int(primary.port))
                node_client = aioredis.Redis(host=address[0], port=address[1], **node_options)
                nodes.append(Node(primary.name, node_client, parsed.node_url(address)))
                await node_client.ping()
    except BaseException:
        for node in nodes:
            await node.client.aclose()
        await client.aclose()
        raise
    return Target("cluster", parsed, client, nodes)


#: Options of redis-py's cluster client that a client of one node does not take.
_CLUSTER_ONLY_OPTIONS = frozenset(
    {
        "require_full_coverage",
        "read_from_replicas",
        "load_balancing_strategy",
        "dynamic_startup_nodes",
        "reinitialize_steps",
        "cluster_error_retry_attempts",
        "address_remap",
        "policy_resolver",
    }
)


async def check_target(target: Target, *, prefix: str, allow_nonempty: bool, private: bool) -> int:
    """Refuse a database the run could damage; returns its key count before the run.

    On a cluster every primary is checked, and the count is theirs together.
    """
    redacted = target.redacted
    size = 0
    found: bytes | str | None = None
    with redis_errors(redacted, "INFO"):
        for node in target.nodes:
            info: dict[str, Any] = await node.client.info("server")
            if server_identity(info).mode == "cluster" and not target.cluster:
                raise CLIError(
                    f"{redacted} is a Redis Cluster node; use --url redis+cluster://{node.name}"
                )
            size += await node.client.dbsize()
            cursor = 0
            while found is None:
                cursor, page = await node.client.scan(
                    cursor, match=escape_glob(prefix) + ":*", count=1000
                )
                if page or cursor == 0:
                    found = page[0] if page else None
                    break
    if size and not (allow_nonempty or private):
        raise CLIError(
            f"the database at {redacted} holds {size:,} keys; loadtest writes only under "
            f"'{prefix}:' and deletes what it wrote, but refuses a non-empty database "
            f"unless --allow-nonempty"
        )
    if found is not None:
        raise CLIError(
            f"the database at {redacted} already holds keys under '{prefix}:' "
            f"(e.g. {found!r}); choose another --prefix"
        )
    return size


@dataclass
class Written:
    """The stores whose tenants the run wrote to: what it must clear at the end."""

    stores: dict[str, TenantStore] = field(default_factory=dict)

    def add(self, store: TenantStore) -> None:
        self.stores.setdefault(store.tenant, store)

    async def clear(self) -> int:
        """Clear every tenant written through the library; how many keys were deleted."""
        deleted = 0
        for store in self.stores.values():
            deleted += await store.clear()
        return deleted


async def remove_leftovers(target: Target, prefix: str) -> int:
    """Delete keys still under ``prefix:`` after the library's clears; how many there were.

    ``check_target`` proved nothing lived under the prefix before the run, so
    anything found here was written by the run (e.g. bookkeeping keys a
    ``clear()`` did not remove); it is reported as a defect, then removed.
    On a cluster each primary is walked, and keys are unlinked one by one
    (a multi-key UNLINK must stay in one hash slot).
    """
    leftovers = 0
    for node in target.nodes:
        client = node.client
        batch: list[bytes] = []
        async for key in client.scan_iter(match=escape_glob(prefix) + ":*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                leftovers += await _unlink(client, batch, one_by_one=target.cluster)
                batch.clear()
        if batch:
            leftovers += await _unlink(client, batch, one_by_one=target.cluster)
    return leftovers


async def _unlink(client: aioredis.Redis, keys: list[bytes], *, one_by_one: bool) -> int:
    if not one_by_one:
        deleted: int = await client.unlink(*keys)
        return deleted
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.unlink(key)
        replies: list[int] = await pipe.execute()
    return sum(replies)


def describe_machine() -> dict[str, Any]:
    """The client machine and the versions that shape a measurement (for results files)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": _memory_mb(),
        "tenantkv": _version("tenantkv"),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


async def describe_environment(target: Target, *, private_binary: str | None) -> dict[str, Any]:
    """Server name and real version, and machine facts, for the JSON report.

    ``server_name``/``server_version`` are what the server is (``valkey``,
    ``9.1.2``); ``redis_version`` is what its INFO says (7.2.4 on Valkey).
    """
    info: dict[str, Any] = await target.nodes[0].client.info("server")
    identity = server_identity(info)
    server = "private redis-server" if private_binary else "given by --url"
    cluster: dict[str, Any] | None = None
    if target.cluster:
        server = "private Redis Cluster" if private_binary else "Redis Cluster given by --url"
        replicas = 0
        for node in target.nodes:
            replication: dict[str, Any] = await node.client.info("replication")
            replicas += int(replication.get("connected_slaves", 0))
        cluster = {
            "primaries": len(target.nodes),
            "replicas": replicas,
            "nodes": [node.name for node in target.nodes],
        }
    environment: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "server_name": identity.name,
        "server_version": identity.version,
        "redis_version": identity.redis_version,
        "redis_mode": identity.mode,
        "redis_os": str(info.get("os")),
        "server": server,
        "server_binary": private_binary,
        "url": target.url.redacted,
        **describe_machine(),
        "argv": [redact_url(arg) if "://" in arg else arg for arg in sys.argv[1:]],
    }
    if cluster is not None:
        environment["cluster"] = cluster
    return environment
