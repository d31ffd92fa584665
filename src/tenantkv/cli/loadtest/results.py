"""The figures a load test produces, as plain dataclasses (the JSON mirrors them)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LatencyStats", "LoadtestResult", "Measurement", "Scenario", "ServerView"]


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class LatencyStats:
    """Probe latencies in ms (``None`` when there were no samples)."""

    samples: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, latencies_s: Sequence[float]) -> LatencyStats:
        if not latencies_s:
            return cls(0, None, None, None, None)
        ordered = sorted(latencies_s)
        return cls(
            samples=len(ordered),
            p50_ms=_percentile(ordered, 0.50) * 1000.0,
            p99_ms=_percentile(ordered, 0.99) * 1000.0,
            p999_ms=_percentile(ordered, 0.999) * 1000.0,
            max_ms=ordered[-1] * 1000.0,
        )


@dataclass(frozen=True)
class ServerView:
    """The server's own view from SLOWLOG: its longest single command during a strategy.

    ``longest_ms`` is ``None`` when no command took longer than the threshold;
    ``complete`` is false when SLOWLOG overflowed, so the longest command may
    have been dropped (the figure is then a lower bound).
    """

    threshold_us: int
    longest_ms: float | None
    command: str | None
    entries: int
    complete: bool


@dataclass
class Measurement:
    """One strategy (listing or clearing) measured at one size."""

    kind: str  # "list" or "clear"
    strategy: str  # "keys", "scan", "index", "scan_iter", "keys+del", "clear", "clear-index"
    label: str
    count: int | None
    baseline: bool
    expected: int
    wall_ms_runs: list[float]
    found: int
    duplicates: int
    foreign: int
    correct: bool
    probe: LatencyStats
    #: The same requests timed from when they were actually sent (excludes the
    #: probe's own catch-up delay; a server stall still shows in full).
    probe_service: LatencyStats
    server: ServerView
    #: ``(ms since the strategy started, probe latency ms)`` of the median run.
    timeline: list[tuple[float, float]] = field(repr=False)
    problem: str | None = None

    @property
    def wall_ms(self) -> float:
        """Median wall time of the runs."""
        return statistics.median(self.wall_ms_runs)

    @property
    def keys_per_s(self) -> float:
        return self.expected / (self.wall_ms / 1000.0) if self.wall_ms > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["wall_ms"] = self.wall_ms
        data["keys_per_s"] = self.keys_per_s
        data["timeline"] = [[round(t, 3), round(lat, 4)] for t, lat in self.timeline]
        return data


@dataclass
class Scenario:
    """Every strategy measured on one data set: ``tenant_keys`` among ``keyspace_keys``."""

    tenant_keys: int
    noise_keys: int
    keyspace_keys: int
    seed_seconds: float
    idle: LatencyStats
    idle_timeline: list[tuple[float, float]] = field(repr=False)
    reindex_ms: float | None = None
    measurements: list[Measurement] = field(default_factory=list)
    #: ``"standalone"`` or ``"cluster"`` when a cluster option was used, else ``None``.
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        where = {} if self.target is None else {"target": self.target}
        return {
            **where,
            "tenant_keys": self.tenant_keys,
            "noise_keys": self.noise_keys,
            "keyspace_keys": self.keyspace_keys,
            "seed_seconds": self.seed_seconds,
            "reindex_ms": self.reindex_ms,
            "idle_probe": asdict(self.idle),
            "idle_timeline": [[round(t, 3), round(lat, 4)] for t, lat in self.idle_timeline],
            "measurements": [m.to_json() for m in self.measurements],
        }


@dataclass
class LoadtestResult:
    """A whole run: environment, options, one scenario per size, and the cleanup."""

    environment: dict[str, Any]
    config: dict[str, Any]
    scenarios: list[Scenario] = field(default_factory=list)
    cleanup: dict[str, Any] = field(default_factory=dict)
    total_seconds: float = 0.0
    #: Problems outside any one measurement (e.g. keys left behind).
    problems: list[str] = field(default_factory=list)

    @property
    def wrong(self) -> list[str]:
        """One line per wrong result: a measurement that missed keys, or a general problem."""
        return [
            f"{m.label} at {s.tenant_keys:,} keys"
            f"{'' if s.target is None else ' on ' + s.target}: {m.problem}"
            for s in self.scenarios
            for m in s.measurements
            if not m.correct
        ] + self.problems

    @property
    def targets(self) -> list[str]:
        """The targets of the scenarios, in order of first appearance (empty: one server)."""
        return list(dict.fromkeys(s.target for s in self.scenarios if s.target is not None))

    @classmethod
    def side_by_side(cls, runs: dict[str, LoadtestResult]) -> LoadtestResult:
        """Runs on several targets as one result: scenarios by size, then in ``runs`` order.

        ``environment`` and ``cleanup`` keep each run's under ``targets``;
        cleanup's ``leftovers_removed`` and ``dbsize_after`` are the totals.
        """
        first = next(iter(runs.values()))
        order = {name: i for i, name in enumerate(runs)}
        environment = dict(first.environment)
        environment["targets"] = {name: run.environment for name, run in runs.items()}
        merged = cls(environment, first.config)
        merged.scenarios = sorted(
            (s for run in runs.values() for s in run.scenarios),
            key=lambda s: (s.tenant_keys, order.get(s.target or "", 0)),
        )
        merged.cleanup = {
            "leftovers_removed": sum(r.cleanup.get("leftovers_removed", 0) for r in runs.values()),
            "dbsize_after": sum(r.cleanup.get("dbsize_after", 0) for r in runs.values()),
            "targets": {name: run.cleanup for name, run in runs.items()},
        }
        merged.total_seconds = sum(r.total_seconds for r in runs.values())
        merged.problems = [f"{name}: {p}" for name, run in runs.items() for p in run.problems]
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "tenantkv loadtest",
            "correct": not self.wrong,
            "wrong": self.wrong,
            "total_seconds": self.total_seconds,
            "environment": self.environment,
            "config": self.config,
            "scenarios": [s.to_json() for s in self.scenarios],
            "cleanup": self.cleanup,
        }
