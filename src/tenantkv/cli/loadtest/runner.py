"""Runs a load test: one scenario per size, every strategy on the same data.

Per size: seed the measured tenant (the noise tenants are seeded once, up
front), build its index if one is measured, record the probe with nothing
running (the baseline), then each listing strategy ``repeat`` times, then each
clear strategy once (re-seeding in between, since clearing is destructive).
Every strategy is watched the same way (:meth:`LoadtestRun.observe`): the
probe records from a little before it starts to a little after it ends, and
SLOWLOG is read for the commands logged meanwhile.

On a Redis Cluster (``--cluster`` or a ``redis+cluster://`` URL) the same run
goes through :class:`~.target.Target`'s primaries: KEYS on each of them, one
probe per primary, SLOWLOG of each; the library is opened on the cluster URL.
With ``--compare-standalone`` the whole run is made twice on the same data,
first on a private standalone server, then on the cluster, and the results
are reported side by side (:meth:`LoadtestResult.side_by_side`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tenantkv import StoreURL, TenantStore, open_store, parse_url

from ..errors import redis_errors
from ..interrupts import run
from .config import CLUSTER_PRIMARIES, CLUSTER_REPLICAS, LoadtestConfig
from .dataset import NOISE_TXN_OFFSET, DistinctCounter
from .probe import ProbeRecording, Probes
from .results import LatencyStats, LoadtestResult, Measurement, Scenario, ServerView
from .seed import TTL_MS, Seeder
from .servers import PrivateCluster, PrivateServer
from .slowlog import SlowlogWatches
from .strategies import (
    ClearStrategy,
    KeysCommand,
    KeysThenDelete,
    LibraryClear,
    LibraryListing,
    ListingStrategy,
    RedisPyScanIter,
    count_found,
)
from .target import (
    Target,
    Written,
    check_target,
    connect_target,
    describe_environment,
    remove_leftovers,
)

__all__ = ["run_loadtest"]

MEASURED_TENANT = "measured"
PROBE_TENANT = "probe"
NOISE_TENANTS = 10
#: Probe time recorded before and after each strategy, so the chart shows its edges.
MARGIN_S = 0.05
#: Probe p99 with nothing running above which the run warns that the machine is busy.
NOISY_IDLE_P99_MS = 2.0
#: Most probe tenants tried when looking for one per cluster primary.
_PROBE_TENANT_TRIES = 10_000


def run_loadtest(config: LoadtestConfig, *, status: Console) -> LoadtestResult:
    """Run the load test described by ``config``; progress and notes go to ``status``.

    Without ``config.url`` a private redis-server (or with ``config.cluster``
    a private cluster) is started and stopped (also on Ctrl-C or error).
    Raises :class:`~tenantkv.cli.errors.CLIError`,
    :class:`~tenantkv.TenantKVError` or
    :class:`~.servers.PrivateServerError` for problems the user can fix.
    """
    if not config.cluster:
        if config.target is not None:
            return run(_main(config, config.target, None, status))
        server = PrivateServer(config.server)
        status.print(f"starting a private server ({server.binary})")
        with server:
            return run(_main(config, parse_url(server.url), server.binary, status))
    runs: dict[str, LoadtestResult] = {}
    if config.compare_standalone:
        server = PrivateServer(config.server)
        status.print(f"[bold]standalone:[/] starting a private server ({server.binary})")
        with server:
            private = parse_url(server.url)
            runs["standalone"] = run(_main(config, private, server.binary, status, "standalone"))
    if config.target is not None:
        runs["cluster"] = run(_main(config, config.target, None, status, "cluster"))
    else:
        cluster = PrivateCluster(
            CLUSTER_PRIMARIES, CLUSTER_REPLICAS, server_class=PrivateServer, binary=config.server
        )
        status.print(
            f"[bold]cluster:[/] starting a private Redis Cluster, {CLUSTER_PRIMARIES} primaries "
            f"x {CLUSTER_REPLICAS} replica ({cluster.binary})"
        )
        with cluster:
            private = parse_url(cluster.url)
            runs["cluster"] = run(_main(config, private, cluster.binary, status, "cluster"))
    return runs["cluster"] if len(runs) == 1 else LoadtestResult.side_by_side(runs)


async def _main(
    config: LoadtestConfig,
    url: StoreURL,
    private_binary: str | None,
    status: Console,
    target_name: str | None = None,
) -> LoadtestResult:
    started = time.perf_counter()
    target = await connect_target(url)
    try:
        keys_before = await check_target(
            target,
            prefix=config.prefix,
            allow_nonempty=config.allow_nonempty,
            private=private_binary is not None,
        )
        nodes = f" ({len(target.nodes)} primaries)" if target.cluster else ""
        status.print(f"target: {url.redacted}{nodes}, {keys_before:,} keys before the run")
        environment = await describe_environment(target, private_binary=private_binary)
        environment["load_average_before"] = list(os.getloadavg())
        result = LoadtestResult(environment, _config_json(config))
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=status,
            transient=True,
        )
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(progress)
            scenario_run = LoadtestRun(config, target, status, progress, stack, target_name)
            try:
                await scenario_run.execute(result)
            finally:
                result.cleanup = await scenario_run.cleanup(keys_before)
                if result.cleanup["leftovers_removed"]:
                    result.problems.append(
                        f"{result.cleanup['leftovers_removed']} keys were left under "
                        f"'{config.prefix}:' after the library's clear() and had to be removed"
                    )
        result.total_seconds = time.perf_counter() - started
        result.environment["load_average_after"] = list(os.getloadavg())
        return result
    finally:
        await target.aclose()


def _config_json(config: LoadtestConfig) -> dict[str, Any]:
    cluster: dict[str, Any] = {}
    if config.cluster:
        cluster = {
            "cluster": True,
            "compare_standalone": config.compare_standalone,
            "shards": config.shards,
        }
    return {
        **cluster,
        "url": None if config.target is None else config.target.redacted,
        "sizes": list(config.sizes),
        "noise": config.noise,
        "counts": list(config.counts),
        "strategies": list(config.strategies),
        "clear": config.clear,
        "repeat": config.repeat,
        "probe_interval_ms": config.probe_interval_ms,
        "idle_seconds": config.idle_seconds,
        "slowlog_threshold_us": config.slowlog_threshold_us,
        "server": config.server,
        "prefix": config.prefix,
        "allow_nonempty": config.allow_nonempty,
        "quick": config.quick,
        "json": None if config.json_path is None else str(config.json_path),
        "chart": None if config.chart_path is None else str(config.chart_path),
    }


@dataclass
class _Window:
    """One observed strategy run: its time span, the probe's samples, the server's view."""

    start: float
    end: float
    recording: ProbeRecording
    server: ServerView

    @property
    def wall_ms(self) -> float:
        return (self.end - self.start) * 1000.0


class LoadtestRun:
    """The state of one run: connections, stores, probe, SLOWLOG watch."""

    def __init__(
        self,
        config: LoadtestConfig,
        target: Target,
        status: Console,
        progress: Progress,
        stack: contextlib.AsyncExitStack,
        target_name: str | None = None,
    ) -> None:
        self.config = config
        self.target = target
        self.target_name = target_name
        self.url = target.url
        self.redacted = target.redacted
        self.status = status
        self.stack = stack
        self.seeder = Seeder(target.client, progress)
        self.slowlog = SlowlogWatches(
            [node.client for node in target.nodes], config.slowlog_threshold_us
        )
        self.written = Written()
        self._probe: Probes | None = None

    # -- set-up ------------------------------------------------------------
    async def open(self, tenant: str, *, index: bool = False, shards: int = 1) -> TenantStore:
        """A library store for ``tenant`` under the tool's prefix, closed at the end."""
        options: dict[str, Any] = {"index": True} if index else {}
        if shards != 1:
            options["shards"] = shards
        store = await open_store(self.url, tenant=tenant, prefix=self.config.prefix, **options)
        self.stack.push_async_callback(store.aclose)
        return store

    @property
    def probe(self) -> Probes:
        assert self._probe is not None
        return self._probe

    async def execute(self, result: LoadtestResult) -> None:
        config = self.config
        probe_targets = await self.probe_keys()
        # The index store first: at the end the tenant is cleared through it,
        # so the index's own bookkeeping goes too.
        self.index_store: TenantStore | None = None
        if "index" in config.strategies:
            self.index_store = await self.open(MEASURED_TENANT, index=True, shards=config.shards)
            self.written.add(self.index_store)
        self.plain_store = await self.open(MEASURED_TENANT, shards=config.shards)
        self.written.add(self.plain_store)
        await self.seed_noise()

        if self.target.cluster:
            self.status.print(
                f"probes: GET every {config.probe_interval_ms:g} ms on each of "
                f"{len(probe_targets)} primaries (a process and a connection each)"
            )
        else:
            self.status.print(
                f"probe: GET every {config.probe_interval_ms:g} ms on its own connection "
                "(separate process)"
            )
        self._probe = Probes(probe_targets, interval_ms=config.probe_interval_ms)
        self.stack.enter_context(self._probe)
        await self.slowlog.setup()
        result.environment["server_view"] = {
            "available": self.slowlog.note is None,
            "note": self.slowlog.note,
        }
        if self.slowlog.note:
            self.status.print(f"[yellow]{self.slowlog.note}[/]")
        try:
            for size in config.sizes:
                result.scenarios.append(await self.scenario(size))
        finally:
            with redis_errors(self.redacted, "CONFIG SET"):
                await self.slowlog.restore()

    async def probe_keys(self) -> list[tuple[str, str]]:
        """Write the probe's key(s); ``(node URL, key)`` for each probe.

        On one server: the ``probe`` tenant's key. On a cluster: one probe
        tenant per primary, the first ``probe-<i>`` whose hash slot it serves.
        """
        nodes = self.target.nodes
        if not self.target.cluster:
            tenants = {0: PROBE_TENANT}
        else:
            tenants = {}
            for i in range(_PROBE_TENANT_TRIES):
                tenant = f"{PROBE_TENANT}-{i}"
                tenants.setdefault(self.target.node_of("{" + tenant + "}"), tenant)
                if len(tenants) == len(nodes):
                    break
        out: list[tuple[str, str]] = []
        for node_index, tenant in sorted(tenants.items()):
            store = await self.open(tenant)
            self.written.add(store)
            await store.set("ping", {"ok": True}, ttl_ms=TTL_MS)
            out.append((nodes[node_index].url, store.namespace.key("ping")))
        return out

    async def seed_noise(self) -> None:
        total = self.config.noise
        tenants = min(NOISE_TENANTS, total)
        for i in range(tenants):
            share = total // tenants + (1 if i < total % tenants else 0)
            store = await self.open(f"noise-{i:02d}")
            self.written.add(store)
            await self.seeder.seed(
                store.namespace,
                share,
                f"seeding noise tenant {i + 1}/{tenants}",
                txn_offset=NOISE_TXN_OFFSET,
            )

    async def cleanup(self, keys_before: int) -> dict[str, Any]:
        """Delete everything the run wrote; the figures that prove it."""
        self.status.print("cleaning up: clear() of every tenant the run wrote")
        deleted = await self.written.clear()
        leftovers = await remove_leftovers(self.target, self.config.prefix)
        keys_after = await self.target.dbsize()
        return {
            "tenants_cleared": sorted(self.written.stores),
            "keys_deleted": deleted,
            "leftovers_removed": leftovers,
            "dbsize_before": keys_before,
            "dbsize_after": keys_after,
        }

    # -- one size ------------------------------------------------------------
    async def seed_measured(self, size: int, why: str) -> float:
        return await self.seeder.seed(self.plain_store.namespace, size, f"seeding {size:,} {why}")

    async def reindex(self) -> float:
        assert self.index_store is not None
        started = time.perf_counter()
        await self.index_store.reindex()
        return (time.perf_counter() - started) * 1000.0

    async def scenario(self, size: int) -> Scenario:
        config = self.config
        self.status.print(f"[bold]tenant of {size:,} keys[/] (+ {config.noise:,} noise keys)")
        seed_s = await self.seed_measured(size, "keys")
        reindex_ms = await self.reindex() if self.index_store is not None else None
        keyspace = await self.target.dbsize()
        idle, idle_timeline = await self.idle()
        scenario = Scenario(
            tenant_keys=size,
            noise_keys=config.noise,
            keyspace_keys=keyspace,
            seed_seconds=seed_s,
            idle=idle,
            idle_timeline=idle_timeline,
            reindex_ms=reindex_ms,
            target=self.target_name,
        )
        for listing in self.listings():
            self.status.print(f"  {listing.label}")
            scenario.measurements.append(await self.measure_listing(listing, size))
        if config.clear:
            for i, clearing in enumerate(self.clears()):
                if i:
                    await self.seed_measured(size, "keys again")
                    if clearing.name == "clear-index":
                        await self.reindex()
                self.status.print(f"  {clearing.label}")
                scenario.measurements.append(await self.measure_clear(clearing, size))
        else:
            await (self.index_store or self.plain_store).clear()
        return scenario

    @property
    def node_clients(self) -> list[aioredis.Redis]:
        return [node.client for node in self.target.nodes]

    def where(self) -> str:
        """``", <primaries the library reads>"`` on a cluster, for labels; ``""`` on one server.

        The tenant's hash tag pins an unsharded tenant (and its index) to one
        slot, so one primary; a sharded one is spread over every primary.
        """
        if not self.target.cluster:
            return ""
        n = len(self.target.nodes)
        return f", {n} primaries" if self.config.shards > 1 else f", 1 of {n} primaries"

    def listings(self) -> list[ListingStrategy]:
        namespace = self.plain_store.namespace
        cluster = self.target.cluster
        n = len(self.target.nodes)
        out: list[ListingStrategy] = []
        for name in self.config.strategies:
            if name == "keys":
                keys_label = (
                    f"KEYS on all {n} primaries (baseline)" if cluster else KeysCommand.label
                )
                out.append(KeysCommand(self.node_clients, namespace, label=keys_label))
            elif name == "scan":
                where = self.where()
                out.extend(
                    LibraryListing(
                        self.plain_store,
                        "scan",
                        f"SCAN COUNT {count}" + (f" ({where.removeprefix(', ')})" if where else ""),
                        count,
                    )
                    for count in self.config.counts
                )
            elif name == "index" and self.index_store is not None:
                out.append(
                    LibraryListing(
                        self.index_store,
                        "index",
                        f"index (chunks by time budget{self.where()})",
                        None,
                    )
                )
            elif name == "scan_iter":
                if not hasattr(self.target.client, "scan_iter"):
                    self.status.print(
                        "  [yellow]skipped: this redis-py's RedisCluster has no scan_iter[/]"
                    )
                    continue
                iter_label = (
                    "redis-py RedisCluster.scan_iter (COUNT 10)"
                    if cluster
                    else RedisPyScanIter.label
                )
                out.append(RedisPyScanIter(self.target.client, namespace, label=iter_label))
        return out

    def clears(self) -> list[ClearStrategy]:
        out: list[ClearStrategy] = []
        cluster = self.target.cluster
        if "keys" in self.config.strategies:
            label = (
                f"KEYS+DEL on all {len(self.target.nodes)} primaries (baseline)"
                if cluster
                else KeysThenDelete.label
            )
            out.append(
                KeysThenDelete(
                    self.node_clients,
                    self.plain_store.namespace,
                    per_slot=cluster,
                    label=label,
                )
            )
        out.append(
            LibraryClear(
                self.plain_store,
                "clear",
                f"clear() (SCAN, COUNT by time budget{self.where()})",
            )
        )
        if self.index_store is not None:
            out.append(
                LibraryClear(self.index_store, "clear-index", f"clear() (index{self.where()})")
            )
        return out

    # -- observing -------------------------------------------------------------
    async def idle(self) -> tuple[LatencyStats, list[tuple[float, float]]]:
        """The probe with nothing else running: the floor every strategy is compared with."""
        first = self.probe.begin()
        await asyncio.sleep(self.config.idle_seconds)
        recording = self.probe.end()
        stats = LatencyStats.of(recording.latency)
        if stats.p99_ms is not None and stats.p99_ms > NOISY_IDLE_P99_MS:
            self.status.print(
                f"[yellow]note: the machine is noisy: probe p99 is {stats.p99_ms:.1f} ms with "
                f"nothing running (load average {os.getloadavg()[0]:.2f}); probe figures near "
                "that are noise, not blocking[/]"
            )
        return stats, recording.timeline(first)

    async def observe(self, action: Callable[[], Awaitable[None]]) -> _Window:
        mark = await self.slowlog.mark()
        self.probe.begin()
        await asyncio.sleep(MARGIN_S)
        start = time.monotonic()
        await action()
        end = time.monotonic()
        await asyncio.sleep(MARGIN_S)
        recording = self.probe.end()
        return _Window(start, end, recording, await self.slowlog.since(mark))

    def combine(
        self,
        listing_or_clear: ListingStrategy | ClearStrategy,
        kind: str,
        count: int | None,
        size: int,
        windows: list[_Window],
        found: int,
        duplicates: int,
        foreign: int,
        problem: str | None,
    ) -> Measurement:
        median = sorted(windows, key=lambda w: w.wall_ms)[len(windows) // 2]
        latencies: list[float] = []
        service: list[float] = []
        for w in windows:
            rec = w.recording
            for i in rec.overlapping(w.start, w.end):
                latencies.append(rec.latency[i])
                service.append(rec.latency[i] - rec.send_lag[i])
        longest = max(
            (w.server for w in windows if w.server.longest_ms is not None),
            key=lambda view: view.longest_ms or 0.0,
            default=None,
        )
        server = ServerView(
            threshold_us=self.slowlog.threshold_us,
            longest_ms=None if longest is None else longest.longest_ms,
            command=None if longest is None else longest.command,
            entries=sum(w.server.entries for w in windows),
            complete=all(w.server.complete for w in windows),
        )
        return Measurement(
            kind=kind,
            strategy=listing_or_clear.name,
            label=listing_or_clear.label,
            count=count,
            baseline=listing_or_clear.baseline,
            expected=size,
            wall_ms_runs=[w.wall_ms for w in windows],
            found=found,
            duplicates=duplicates,
            foreign=foreign,
            correct=problem is None,
            probe=LatencyStats.of(latencies),
            probe_service=LatencyStats.of(service),
            server=server,
            timeline=median.recording.timeline(median.start),
            problem=problem,
        )

    async def measure_listing(self, listing: ListingStrategy, size: int) -> Measurement:
        windows: list[_Window] = []
        found, duplicates, foreign = size, 0, 0
        problem: str | None = None
        for _ in range(self.config.repeat):
            keys: list[Any] = []

            async def action(keys: list[Any] = keys) -> None:
                await listing.run(keys)

            windows.append(await self.observe(action))
            counter = DistinctCounter(size)
            count_found(keys, listing.physical, counter)
            del keys
            found = min(found, counter.distinct)
            duplicates = max(duplicates, counter.duplicates)
            foreign = max(foreign, counter.foreign)
            problem = problem or _listing_problem(counter, unique=listing.unique)
        return self.combine(
            listing, "list", listing.count, size, windows, found, duplicates, foreign, problem
        )

    async def measure_clear(self, clearing: ClearStrategy, size: int) -> Measurement:
        deleted = 0

        async def action() -> None:
            nonlocal deleted
            deleted = await clearing.run()

        window = await self.observe(action)
        remaining = await self.plain_store.count_keys()
        problem = None
        if deleted != size or remaining:
            problem = f"deleted {deleted:,} of {size:,} keys, {remaining:,} remain"
        return self.combine(clearing, "clear", None, size, [window], deleted, 0, 0, problem)


def _listing_problem(counter: DistinctCounter, *, unique: bool) -> str | None:
    if counter.foreign:
        return f"returned {counter.foreign:,} keys that are not the tenant's"
    if counter.distinct != counter.expected:
        return f"found {counter.distinct:,} distinct keys of {counter.expected:,}"
    if unique and counter.duplicates:
        return f"returned {counter.duplicates:,} keys more than once"
    return None
