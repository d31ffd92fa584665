"""The load test's output: a rich table, a JSON file, a PNG chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .results import LatencyStats, LoadtestResult, Measurement, ServerView

__all__ = ["print_table", "write_chart", "write_json"]

_BASELINE_COLOR = "#d62728"
_LIBRARY_COLOR = "#1f77b4"
_REFERENCE_COLOR = "#7f7f7f"
_IDLE_COLOR = "#2ca02c"
_LIBRARY_SERIES = ("#1f77b4", "#17becf", "#9467bd", "#2ca02c", "#8c564b")


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_rate(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    return f"{value / 1e3:,.0f}k"


def fmt_server(view: ServerView) -> str:
    if view.longest_ms is None:
        return f"< {view.threshold_us / 1000:g}" if view.complete else "n/a"
    bound = "" if view.complete else "≥ "
    return f"{bound}{fmt_ms(view.longest_ms)} {view.command or ''}".rstrip()


def _probe_cells(stats: LatencyStats) -> list[str]:
    return [fmt_ms(stats.p50_ms), fmt_ms(stats.p99_ms), fmt_ms(stats.p999_ms), fmt_ms(stats.max_ms)]


def build_table(result: LoadtestResult) -> Table:
    env = result.environment
    table = Table(
        title=(
            f"tenantkv loadtest: Redis {env.get('redis_version')}, "
            f"{env.get('cpu_count')} CPUs, probe GET every "
            f"{result.config.get('probe_interval_ms')} ms"
        ),
        caption=(
            "SCAN/index/clear() = tenantkv; wall = median of runs; probe p50..max = latency (ms) "
            "of another client's GETs during the strategy, from their scheduled send time; "
            "server max = longest single command in SLOWLOG (ms)"
        ),
    )
    for header in ("tenant keys", "in Redis", "strategy", "wall ms", "keys/s"):
        table.add_column(header, justify="left" if header == "strategy" else "right")
    for header in ("probe p50", "p99", "p99.9", "max"):
        table.add_column(header, justify="right")
    table.add_column("server max", justify="right")
    table.add_column("ok", justify="center")
    for scenario in result.scenarios:
        size = f"{scenario.tenant_keys:,}"
        keyspace = f"{scenario.keyspace_keys:,}"
        table.add_row(
            size, keyspace, "[dim](no enumeration)[/]", "", "", *_probe_cells(scenario.idle), "", ""
        )
        for m in scenario.measurements:
            table.add_row(
                size,
                keyspace,
                _label(m),
                fmt_ms(m.wall_ms),
                fmt_rate(m.keys_per_s),
                *_probe_cells(m.probe),
                fmt_server(m.server),
                "[green]✓[/]" if m.correct else "[bold red]✗[/]",
            )
        table.add_section()
    return table


def _label(m: Measurement) -> str:
    text = m.label if m.kind == "list" else f"clear: {m.label}"
    return f"[red]{text}[/]" if m.baseline else text


def print_table(result: LoadtestResult, console: Console) -> None:
    console.print(build_table(result))
    for line in result.wrong:
        console.print(f"[bold red]WRONG:[/] {line}")


def write_json(result: LoadtestResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")


def _color(m: Measurement) -> str:
    if m.baseline:
        return _BASELINE_COLOR
    if m.strategy == "scan_iter":
        return _REFERENCE_COLOR
    return _LIBRARY_COLOR


def write_chart(result: LoadtestResult, path: Path) -> None:
    """Probe latency over time per strategy (largest size), and cost vs keyspace size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.scenarios:
        return
    scenario = result.scenarios[-1]
    panels: list[tuple[str, list[tuple[float, float]], float | None, str, LatencyStats]] = [
        (
            "no enumeration (baseline noise)",
            scenario.idle_timeline,
            None,
            _IDLE_COLOR,
            scenario.idle,
        )
    ]
    panels += [
        (_plain_label(m), m.timeline, m.wall_ms, _color(m), m.probe) for m in scenario.measurements
    ]
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig = plt.figure(figsize=(18, 3.2 * rows + 5.0), layout="constrained")
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[3.2] * rows + [5.0])
    env = result.environment
    fig.suptitle(
        f"tenantkv loadtest: another client's GET latency while one tenant of "
        f"{scenario.tenant_keys:,} keys is listed / cleared ({scenario.keyspace_keys:,} keys "
        f"in Redis {env.get('redis_version')}, {env.get('cpu_count')} CPUs)",
        fontsize=13,
    )
    top = max((lat for _, timeline, _, _, _ in panels for _, lat in timeline), default=1.0)
    first: Any = None
    for i, (label, timeline, wall_ms, color, stats) in enumerate(panels):
        ax = fig.add_subplot(grid[i // cols, i % cols], sharey=first)
        first = first or ax
        if timeline:
            xs, ys = zip(*timeline, strict=True)
            ax.plot(xs, ys, color=color, linewidth=0.8)
        if wall_ms is not None:
            ax.axvspan(0, wall_ms, color=color, alpha=0.08)
        ax.set_yscale("log")
        ax.set_ylim(0.01, max(top * 2, 1.0))
        ax.grid(True, which="major", alpha=0.3)
        wall = "" if wall_ms is None else f"wall {fmt_ms(wall_ms)} ms, "
        ax.set_title(
            f"{label}\n{wall}p99 {fmt_ms(stats.p99_ms)} ms, max {fmt_ms(stats.max_ms)} ms",
            fontsize=9,
        )
        ax.set_xlabel("ms since start", fontsize=8)
        if i % cols == 0:
            ax.set_ylabel("probe latency ms (log)", fontsize=8)
        ax.tick_params(labelsize=7)

    wall_ax = fig.add_subplot(grid[rows, : cols // 2])
    cmd_ax = fig.add_subplot(grid[rows, cols // 2 :])
    by_label: dict[str, list[Measurement]] = {}
    xs_of: dict[str, list[int]] = {}
    for s in result.scenarios:
        for m in s.measurements:
            by_label.setdefault(_plain_label(m), []).append(m)
            xs_of.setdefault(_plain_label(m), []).append(s.keyspace_keys)
    library_colors = iter(_LIBRARY_SERIES)
    for label, ms in by_label.items():
        if ms[0].kind != "list":
            continue
        color = _color(ms[0])
        if color == _LIBRARY_COLOR:  # several tenantkv strategies: tell them apart
            color = next(library_colors, _LIBRARY_COLOR)
        style: dict[str, Any] = {"color": color, "marker": "o", "label": label}
        wall_ax.plot(xs_of[label], [m.wall_ms for m in ms], **style)
        cmd_ax.plot(
            xs_of[label],
            [m.server.longest_ms or m.server.threshold_us / 1000 for m in ms],
            **style,
        )
    for ax, title in (
        (wall_ax, "listing time vs keys in Redis"),
        (cmd_ax, "longest single server command while listing (SLOWLOG)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("keys in Redis (tenant + other tenants)")
        ax.set_ylabel("ms (log)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plain_label(m: Measurement) -> str:
    return m.label if m.kind == "list" else f"clear: {m.label}"
