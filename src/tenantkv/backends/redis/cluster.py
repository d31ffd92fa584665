"""The Redis Cluster backend: redis-py's asyncio ``RedisCluster`` client, same store semantics.

URL: ``redis+cluster://[user:password@]host:port[,host:port...][?options]``
(``rediss+cluster://`` for TLS; parsed by :mod:`tenantkv.urls`). The
comma-separated nodes are startup nodes; any one reachable node is enough to
discover the cluster. Options in the query (or keywords) go to redis-py,
except ``topology_wait_ms``.

What differs from a single server, and how this module deals with it:

- **Commands on keys** are routed by hash slot by redis-py. ``get_many`` and
  ``unlink`` group keys by slot (one MGET / bounded UNLINKs per slot, slots in
  parallel), so no command is ever CROSSSLOT. ``set_many`` runs one atomic
  script per slot: all or none *per slot*; keys of one tenant share a slot
  unless the tenant is sharded, so an unsharded tenant keeps full atomicity.
- **Enumeration** (:meth:`RedisClusterBackend.scan`): SCAN covers one node
  only, so every primary owning a slot that can hold matching keys is walked
  with its own cursor, all concurrently. A pattern that pins one hash tag
  (``tkv:{tenant}:*``) can only match keys of one slot, so only that slot's
  owner is walked (Redis >= 7.4 then walks only that slot; older servers walk
  the owner's whole keyspace, still one node instead of all).
- **Topology changes** during an enumeration are detected per node walk by
  comparing the node's own view of itself before and after the walk (see
  :meth:`RedisClusterBackend.scan`); affected slots are walked again from
  cursor 0 on their new owner, or :class:`~tenantkv.errors.TopologyChangedError`
  is raised. A partial result is never returned silently.
- **Pub/sub** uses plain PUBLISH/SUBSCRIBE, which reach every node of the
  cluster. Subscriptions and publishes of a channel both go to the primary
  owning the channel's slot, so the receiver count PUBLISH returns (which
  Redis counts on the receiving node only) includes this library's
  subscribers. Subscriptions on one node share one connection
  (:class:`~tenantkv.backends.redis.pubsub.SubscriberHub`, the same code as the
  single-server backend). A subscription does not follow a failover: when
  its node goes away it raises :class:`~tenantkv.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, MutableSet, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, cast

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from ...cancellation import CancellationCheck
from ...codec import decode_key, encode_key
from ...errors import BackendUnavailableError, InvalidURLError, TopologyChangedError
from ...fanout import gather_limited
from ...index.protocols import IndexKeys
from ...pacing import (
    MOVE_DELETE,
    MOVE_READ,
    SCAN,
    SCAN_UNLINK,
    MovePacer,
    Pace,
    StepKind,
)
from ...telemetry import count_server_call
from ...urls import Address, StoreURL
from ..base import BackendBase, BatchOp, OldKey, batch_steps
from .batching import batch_call, batch_results, unindexed_keys
from .commands import SingleKeyCommands
from .errors import cancellation_only, translate_cluster_errors
from .index import RedisKeyIndex
from .moving import delete_all, read_all
from .options import DEFAULT_TOPOLOGY_WAIT_MS, NO_RETRY, cluster_url, node_options
from .pubsub import RedisSubscription, SubscriberHub
from .topology import (
    CLUSTER_SLOTS,
    NodeEntry,
    SelfView,
    group_by_slot,
    parse_cluster_nodes,
    pinned_slot,
)
from .walks import Splitter, scan_pages, scan_unlink
from .wire import held_wire

__all__ = ["DEFAULT_TOPOLOGY_WAIT_MS", "UNLINK_BATCH", "RedisClusterBackend"]

#: Most keys one UNLINK carries (keys of one slot per command).
UNLINK_BATCH = 1000

# Errors after which a node walk is simply not trusted (and retried on the
# slots' current owner) rather than reported: the node went away, restarted,
# is loading, or the cluster is reconfiguring.
_TOPOLOGY_ERRORS: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    # A clear's UNLINK in a slot that moved, or is moving, away.
    rexc.AskError,
    rexc.MovedError,
    OSError,
)
_RETRY_DELAYS_S = (0.02, 0.05, 0.1, 0.2, 0.5)
_CLEAR = (SCAN_UNLINK, (b"scan", b"unlink"))


def _split_by_slot(keys: list[bytes]) -> list[list[bytes]]:
    """A node's SCAN page split by hash slot (one UNLINK may only carry keys of one slot).

    Keys of one tenant (or tenant shard) share a hash tag, so the slot is
    computed once per tag met, not once per key.
    """
    slots: dict[bytes, int] = {}
    groups: dict[int, list[bytes]] = {}
    for key in keys:
        start = key.find(b"{")
        end = key.find(b"}", start + 1) if start >= 0 else -1
        tag = key[start + 1 : end] if end > start + 1 else key
        slot = slots.get(tag)
        if slot is None:
            slot = slots[tag] = key_slot(tag)
        groups.setdefault(slot, []).append(key)
    return list(groups.values())


@dataclass(frozen=True, slots=True)
class _WalkEnd:
    slots: frozenset[int]
    complete: bool
    error: Exception | None = None


class RedisClusterBackend(SingleKeyCommands, BackendBase):
    """A backend on a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""

    def __init__(
        self,
        client: RedisCluster,
        *,
        url: str,
        startup_nodes: Sequence[Address],
        node_options: dict[str, Any],
        topology_wait_ms: int = DEFAULT_TOPOLOGY_WAIT_MS,
    ) -> None:
        # Each node's pools (the cluster client's and the node clients') open at most the
        # max_connections given (the cluster client's default, 100, is above any fan-out's).
        super().__init__(url, connections=node_options.get("max_connections"))
        self._client = client
        self._startup_nodes = list(startup_nodes)
        self._node_options = node_options
        self._topology_wait_s = topology_wait_ms / 1000
        self._node_clients: dict[Address, aioredis.Redis] = {}
        self._hubs: dict[Address, SubscriberHub] = {}
        # Last known primaries' slot ranges: a hint only. A node walk is
        # trusted because of what the walked node says about itself, never
        # because of this map, so it may be stale.
        self._topology: list[NodeEntry] = []
        self._keep_server_state(client, self.connections)

    @staticmethod
    def prepare(url: StoreURL, options: dict[str, Any]) -> StoreURL:
        """``url`` with its options checked and ``options`` (keywords) merged; no I/O."""
        return cluster_url(url, options)

    @classmethod
    def create(cls, url: StoreURL) -> RedisClusterBackend:
        """A backend on the cluster of a prepared ``redis+cluster://`` URL (nothing sent yet)."""
        try:
            client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in url.nodes],
                **url.client_options,
            )
        except (ValueError, TypeError, rexc.RedisClusterException) as exc:
            raise InvalidURLError(f"invalid Redis Cluster URL {url.redacted}: {exc}") from exc
        return cls(
            client,
            url=url.redacted,
            startup_nodes=url.nodes,
            node_options=node_options(url.client_options),
            topology_wait_ms=url.backend_options["topology_wait_ms"],
        )

    def __repr__(self) -> str:
        return f"RedisClusterBackend(url={self._url!r})"

    @property
    def client(self) -> RedisCluster:
        """The underlying redis-py cluster client (for diagnostics and tests)."""
        return self._client

    @property
    def _key_client(self) -> RedisCluster:
        return self._client

    @property
    def subscription_count(self) -> int:
        return sum(hub.subscription_count for hub in self._hubs.values())

    def _errors(self, command: str) -> contextlib.AbstractContextManager[None]:
        self._check_open()
        return translate_cluster_errors(self._url, command)

    def _node_client(self, address: Address) -> aioredis.Redis:
        """A client of one node, for what must go to that node only (SCAN, its view, pub/sub).

        It never retries by itself: a failed call means "this walk cannot be
        trusted", and the enumeration decides what to do next.
        """
        client = self._node_clients.get(address)
        if client is None:
            client = aioredis.Redis(
                host=address[0], port=address[1], **{**self._node_options, **NO_RETRY}
            )
            self._node_clients[address] = client
        return client

    async def _pool_of(self, key: str) -> aioredis.ConnectionPool:
        """The connection pool of the node that serves ``key`` now (for the index's walks)."""
        with self._errors("CLUSTER SLOTS"):
            try:
                node = self._client.get_node_from_key(key)
            except rexc.SlotNotCoveredError:
                # The slot map is out of date (a failover, a reshard): learn it again, once
                # (the client's own initialize() does nothing once it has run).
                await self._client.nodes_manager.initialize()
                try:
                    node = self._client.get_node_from_key(key)
                except rexc.SlotNotCoveredError:
                    node = None
        if node is None:
            raise BackendUnavailableError(
                f"no node of {self._url} serves key {key!r}", url=self._url, command="ZRANGE"
            )
        return self._node_client((node.host, int(node.port))).connection_pool

    # -- liveness (single-key commands: SingleKeyCommands, routed by redis-py)
    async def ping(self) -> None:
        with self._errors("PING"):
            await self._client.initialize()
            await self._client.ping()

    # -- several keys: one command (or transaction) per slot ----------------
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """One MGET per hash slot, all slots in parallel."""
        if not keys:
            return []
        groups = group_by_slot(keys)
        out: list[bytes | None] = [None] * len(keys)

        async def one_slot(positions: list[int]) -> None:
            values = await self._client.mget([keys[i] for i in positions])
            for position, value in zip(positions, values, strict=True):
                out[position] = cast("bytes | None", value)

        with self._errors("MGET"):
            await gather_limited((partial(one_slot, p) for p in groups.values()), self.fanout())
        return out

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """One atomic script per hash slot (``lua/set_many_unindexed.lua``), all slots in parallel.

        All or none within a slot; across slots each slot's write stands on
        its own (every key of an unsharded tenant shares one slot). A script,
        not MULTI/EXEC: redis-py's cluster transactions cost a thread per
        queued command.
        """
        if not items:
            return
        groups = group_by_slot(key for key, _ in items)
        ttl = "" if ttl_ms is None else str(ttl_ms)

        async def one_slot(positions: list[int]) -> None:
            keys = [items[i][0] for i in positions]
            await self._set_many_script(keys=keys, args=[ttl, *(items[i][1] for i in positions)])

        with self._errors("SET"):
            await gather_limited((partial(one_slot, p) for p in groups.values()), self.fanout())

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """One script call (``lua/batch.lua``) per hash slot, slots in parallel: atomic per
        slot (an unsharded tenant's keys and channels all share one). Over several slots,
        in steps (:func:`batch_steps`): a publish goes after every call queued before it."""
        if not ops:
            return []
        out: list[Any] = [None] * len(ops)

        async def one_slot(positions: list[int]) -> None:
            part = [ops[i] for i in positions]
            data_keys, args = batch_call(part, indexed=False)
            replies = await self._batch_script(keys=unindexed_keys(part, data_keys), args=args)
            for position, result in zip(positions, batch_results(part, replies), strict=True):
                out[position] = result

        with self._errors("EVALSHA"):
            for step in batch_steps(ops, len(group_by_slot(op.key for op in ops))):
                groups = group_by_slot(ops[i].key for i in step)
                await gather_limited(
                    (
                        partial(one_slot, [step[j] for j in positions])
                        for positions in groups.values()
                    ),
                    self.fanout(),
                )
        return out

    # -- moving in from another layout (tenantkv.migration): one script per slot ----
    async def _per_slot(self, keys: Sequence[str], call: Any) -> list[Any]:
        """``call(positions)`` for the positions of ``keys`` in each slot, slots in parallel;
        the results put back in the order of ``keys``."""
        out: list[Any] = [None] * len(keys)

        async def one_slot(positions: list[int]) -> None:
            for position, result in zip(positions, await call(positions), strict=True):
                out[position] = result

        with self._errors("EVALSHA"):
            await gather_limited(
                (partial(one_slot, p) for p in group_by_slot(keys).values()), self.fanout()
            )
        return out

    async def move_pacer(self, kind: StepKind, pace: Pace, key: str) -> MovePacer:
        """Paced per node: the node that serves ``key``'s slot, as the slot map last said (or,
        when the map does not know, one cost for the cluster, timed from the round trip)."""
        try:
            node = self._client.get_node_from_key(key)
        except rexc.RedisError:
            node = None
        if node is None:
            return MovePacer(self._move_costs(kind), pace)
        address = (node.host, int(node.port))
        cost = self._move_costs(kind, address)
        with self._errors("PING"):
            cost.floor_s = await self._round_trips.floor(address, self._node_client(address).ping)
        return MovePacer(cost, pace)

    async def migrate_read(self, keys: Sequence[str], max_items: int, pace: Pace) -> list[OldKey]:
        async def read(positions: list[int]) -> list[OldKey]:
            part = [keys[i] for i in positions]
            pacer = await self.move_pacer(MOVE_READ, pace, part[0])
            return await read_all(self._moving["read"], part, max_items, pacer)

        return await self._per_slot(keys, read)

    async def migrate_delete(
        self, keys: Sequence[tuple[str, str, int]], max_items: int, pace: Pace
    ) -> list[str]:
        async def delete(positions: list[int]) -> list[str]:
            part = [keys[i] for i in positions]
            pacer = await self.move_pacer(MOVE_DELETE, pace, part[0][0])
            return await delete_all(self._moving["delete"], part, max_items, pacer)

        return await self._per_slot([key for key, _, _ in keys], delete)

    async def unlink(self, keys: Sequence[str]) -> int:
        """UNLINK grouped by slot, at most :data:`UNLINK_BATCH` keys per command."""
        if not keys:
            return 0
        groups = group_by_slot(keys)

        async def one_slot(positions: list[int]) -> int:
            removed = 0
            for first in range(0, len(positions), UNLINK_BATCH):
                batch = [keys[i] for i in positions[first : first + UNLINK_BATCH]]
                removed += int(await self._client.unlink(*batch))
            return removed

        with self._errors("UNLINK"):
            counts = await gather_limited(
                (partial(one_slot, p) for p in groups.values()), self.fanout()
            )
        return sum(counts)

    # -- pub/sub --------------------------------------------------------------
    def _channel_node(self, channel: str) -> ClusterNode:
        with self._errors("PUBLISH"):
            node = self._client.get_node_from_key(channel)
        if node is None:
            raise BackendUnavailableError(
                f"no node of {self._url} serves channel {channel!r}",
                url=self._url,
                command="PUBLISH",
            )
        return node

    async def publish(self, channel: str, data: bytes) -> int:
        # PUBLISH reaches subscribers on every node, but Redis counts the
        # receivers of the node it was sent to only: send it where this
        # library subscribes, the primary of the channel's slot.
        # The node's own client, whose pool replaces a connection the node
        # closed while idle (redis-py's cluster client neither checks nor
        # retries a command sent to a given node).
        with self._errors("PUBLISH"):
            node = self._channel_node(channel)
            client = self._node_client((node.host, int(node.port)))
            receivers: int = await client.publish(channel, data)
        return receivers

    def subscribe(self, channel: str) -> RedisSubscription:
        self._check_open()
        node = self._channel_node(channel)
        address = (node.host, int(node.port))
        hub = self._hubs.get(address)
        if hub is None:
            hub = SubscriberHub(self._node_client(address), self._url)
            self._hubs[address] = hub
        return RedisSubscription(hub, channel)

    # -- enumeration ----------------------------------------------------------
    def scan(self, match: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Walk every primary that can hold keys matching ``match``, concurrently.

        See :meth:`_scan_nodes`; each node's pages are those of
        :func:`.walks.scan_pages` (one request ahead, per node).
        """
        return self._scan_nodes(match, pace, unlink=False)

    def scan_unlink(self, match: str, pace: Pace) -> AsyncGenerator[int, None]:
        """Delete every key a :meth:`scan` of ``match`` walks to: each node's walk writes the
        UNLINK of a page (one per hash slot in it) with its next SCAN (:func:`.walks.scan_unlink`).

        A node walk that cannot be trusted is walked again on the slots' new
        owner, as for :meth:`scan`, which deletes what the first walk missed.
        """
        return self._scan_nodes(match, pace, unlink=True)

    async def _scan_nodes(
        self, match: str, pace: Pace, *, unlink: bool
    ) -> AsyncGenerator[Any, None]:
        """Walk every primary that can hold keys matching ``match``, concurrently.

        Each walk is ``SCAN 0 MATCH match COUNT n`` ... until the cursor is
        0 again, on a connection of its own to one node. A walk of node N
        covers the slots S it was started for only if N's own view of itself
        (``CLUSTER NODES`` *myself* line, ``INFO server`` run_id) shows, both
        before the first and after the last SCAN call, the same process
        (run_id), the same node ID, still a primary, the same config epoch,
        every slot of S assigned to it and none of S migrating or importing
        (and, before the walk, ``cluster_state:ok``). Then every key of S
        present for the whole walk was on N for the whole walk, which SCAN
        guarantees to return:

        - a failover promotes a replica with a *new* config epoch and demotes
          N to replica; a restart changes the run_id; a slot moving away
          leaves N's slot list or shows as migrating; a slot moving away and
          back bumps N's config epoch when N imports it again. Any of these
          between the two checks makes the walk untrusted.
        - a node that cannot be reached (killed, restarting, loading) makes
          its walk untrusted too.

        Slots whose walk is untrusted are walked again, from cursor 0, on
        the node that owns them now (found with ``CLUSTER NODES`` on any
        reachable node); keys already yielded may come again (the enumerator
        de-duplicates). If some slots still have no trusted walk after
        ``topology_wait_ms``, :class:`~tenantkv.errors.TopologyChangedError`
        is raised: never a silently partial result.

        At most one page per walked node is held at a time.
        """
        self._check_open()
        slot = pinned_slot(match)
        pending: MutableSet[int] = {slot} if slot is not None else set(range(CLUSTER_SLOTS))
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        retries = 0
        refresh = not self._topology
        while True:
            fresh = refresh
            if refresh:
                await self._refresh_topology()
            groups = self._owners(pending)
            if groups:
                async for item in self._walk_all(groups, match, pace, pending, unlink):
                    yield item
            if not pending:
                return
            refresh = True
            if not fresh:  # the slot map was from an earlier enumeration: reload it first
                continue
            now = loop.time()
            if deadline is None:
                deadline = now + self._topology_wait_s
            if now >= deadline:
                raise self._topology_error(pending)
            await asyncio.sleep(_RETRY_DELAYS_S[min(retries, len(_RETRY_DELAYS_S) - 1)])
            retries += 1

    def _topology_error(self, pending: MutableSet[int]) -> TopologyChangedError:
        first = sorted(pending)[:5]
        more = f" and {len(pending) - len(first)} more" if len(pending) > len(first) else ""
        return TopologyChangedError(
            f"SCAN on {self._url} could not finish: the cluster changed during the enumeration "
            f"and slots {first}{more} had no stable primary within "
            f"{self._topology_wait_s * 1000:.0f} ms; enumerate again once the cluster is stable",
            url=self._url,
            command="SCAN",
        )

    def _owners(self, slots: MutableSet[int]) -> dict[Address, frozenset[int]]:
        """``slots`` grouped by their owner in the last known topology (unknown ones left out)."""
        groups: dict[Address, frozenset[int]] = {}
        for entry in self._topology:
            if entry.address is None:
                continue
            owned: set[int] = set()
            for lo, hi in entry.ranges:
                if hi - lo + 1 > len(slots):
                    owned.update(s for s in slots if lo <= s <= hi)
                else:
                    owned.update(s for s in range(lo, hi + 1) if s in slots)
            if owned:
                groups[entry.address] = groups.get(entry.address, frozenset()) | owned
        return groups

    async def _refresh_topology(self) -> None:
        """Load the primaries' slot ranges from the first node that answers ``CLUSTER NODES``."""
        candidates = [e.address for e in self._topology if e.address is not None]
        candidates += [a for a in self._startup_nodes if a not in candidates]
        candidates += [a for a in self._node_clients if a not in candidates]
        last: BaseException | None = None
        cancelled = CancellationCheck()  # not translated: see _walk
        for address in candidates:
            try:
                client = self._node_client(address)
                raw = await client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
                cancelled()
            except _TOPOLOGY_ERRORS as exc:
                last = exc
                continue
            except rexc.RedisError:  # a refusal (ACL) or another error reply: not the topology
                with self._errors("CLUSTER NODES"):
                    raise
            entries = parse_cluster_nodes(decode_key(raw))
            self._topology = [e for e in entries if e.primary and e.healthy and e.ranges]
            return
        with self._errors("CLUSTER NODES"):
            assert last is not None
            raise last

    async def _self_view(self, client: aioredis.Redis) -> SelfView:
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("CLUSTER", "NODES")
            pipe.execute_command("CLUSTER", "INFO")
            pipe.execute_command("INFO", "server")
            nodes_raw, info_raw, server = await pipe.execute()
        me = [e for e in parse_cluster_nodes(decode_key(nodes_raw)) if "myself" in e.flags]
        if len(me) != 1:
            raise rexc.ConnectionError("the node did not describe itself in CLUSTER NODES")
        cluster_ok = "cluster_state:ok" in decode_key(info_raw)
        return SelfView(str(server.get("run_id", "")), me[0], cluster_ok)

    async def _walk_all(
        self,
        groups: dict[Address, frozenset[int]],
        match: str,
        pace: Pace,
        pending: MutableSet[int],
        unlink: bool,
    ) -> AsyncIterator[Any]:
        """Walk each node of ``groups`` concurrently; remove trusted slots from ``pending``."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=len(groups))
        pattern = encode_key(match)
        split = None if pinned_slot(match) is not None else _split_by_slot
        tasks = [
            asyncio.create_task(
                self._walk(address, slots, pattern, pace, queue, split if unlink else False)
            )
            for address, slots in groups.items()
        ]
        try:
            running = len(tasks)
            while running:
                item = await queue.get()
                if not isinstance(item, _WalkEnd):
                    yield item
                    continue
                running -= 1
                if item.error is not None:
                    with self._errors("UNLINK" if unlink else "SCAN"):
                        raise item.error
                if item.complete:
                    pending -= item.slots
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _walk(
        self,
        address: Address,
        slots: frozenset[int],
        match: bytes,
        pace: Pace,
        queue: asyncio.Queue[Any],
        unlink: Splitter | Literal[False] | None,
    ) -> None:
        """One node's walk: its pages (or, with ``unlink``, its deletion counts) into
        ``queue``, then a :class:`_WalkEnd` saying whether the walk can be trusted.

        ``unlink`` is ``False`` for a listing, else how a page splits into
        slots (``None``: one slot).
        """
        complete = False
        error: Exception | None = None
        # This task's commands are not translated (a failure here means "walk again"),
        # so it restores the cancellations redis-py loses itself (.errors explains).
        cancelled = CancellationCheck()
        try:
            client = self._node_client(address)
            count_server_call()
            before = await self._self_view(client)
            cancelled()
            if before.serves(slots):
                kind, names = (SCAN, (b"scan",)) if unlink is False else _CLEAR
                stats = self._pacing.stats(kind, pace, names, address)
                async with held_wire(client.connection_pool, cancellation_only, "SCAN") as wire:
                    if unlink is False:
                        async with contextlib.aclosing(scan_pages(wire, match, stats)) as pages:
                            async for page in pages:
                                if page:
                                    await queue.put(page)
                    else:
                        steps = scan_unlink(wire, match, stats, unlink)
                        async with contextlib.aclosing(steps):
                            async for removed in steps:
                                await queue.put(removed)
                count_server_call()
                after = await self._self_view(client)
                cancelled()
                complete = after.same_node(before) and after.still_serves(slots)
        except _TOPOLOGY_ERRORS:
            complete = False
        except Exception as exc:
            error = exc
        await queue.put(_WalkEnd(slots, complete, error))

    # -- key index (tenantkv.index.protocols) -----------------------------------
    def key_index(self, keys: IndexKeys) -> RedisKeyIndex:
        """The tenant index stored under ``keys``: the Redis scripts run as-is on a cluster,
        because the index keys and the data keys they cover share one hash slot (the
        tenant's, or for a sharded tenant, the shard's: one index per shard)."""
        return RedisKeyIndex(self._index_server, keys)

    # -- lifecycle --------------------------------------------------------------
    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for hub in self._hubs.values():
            await hub.aclose()
        self._hubs.clear()
        for client in self._node_clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._node_clients.clear()
        await self._client.aclose()
