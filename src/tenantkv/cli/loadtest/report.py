"""The load test's output: a rich table, a JSON file, a PNG chart.

When a cluster option was used every scenario names its target
(``standalone`` or ``cluster``): the table gets a ``target`` column, and the
chart a row of panels per target and a line style per target.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.measure import Measurement as RenderWidth
from rich.table import Table

from .results import LatencyStats, LoadtestResult, Measurement, Scenario, ServerView

__all__ = ["print_table", "write_chart", "write_json"]

_BASELINE_COLOR = "#d62728"
_LIBRARY_COLOR = "#1f77b4"
_REFERENCE_COLOR = "#7f7f7f"
_IDLE_COLOR = "#2ca02c"
_LIBRARY_SERIES = ("#1f77b4", "#17becf", "#9467bd", "#2ca02c", "#8c564b")
#: Line style, marker and panel background of each target in the chart.
_TARGET_STYLE: dict[str | None, tuple[str, str, str]] = {
    None: ("-", "o", "white"),
    "standalone": ("-", "o", "white"),
    "cluster": ("--", "s", "#f3f3fa"),
}


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


def server_label(env: dict[str, Any]) -> str:
    """``Valkey 9.1.2``: the server's name and real version (older reports: Redis x.y.z)."""
    name = str(env.get("server_name") or "redis").capitalize()
    return f"{name} {env.get('server_version') or env.get('redis_version')}"


def _probe_cells(stats: LatencyStats) -> list[str]:
    return [fmt_ms(stats.p50_ms), fmt_ms(stats.p99_ms), fmt_ms(stats.p999_ms), fmt_ms(stats.max_ms)]


def _cluster_shape(result: LoadtestResult) -> str | None:
    """``"3 primaries x 1 replica"`` for the cluster target, if there is one."""
    env = result.environment
    cluster = env.get("cluster") or env.get("targets", {}).get("cluster", {}).get("cluster")
    if not isinstance(cluster, dict):
        return None
    primaries, replicas = cluster.get("primaries", 0), cluster.get("replicas", 0)
    per = replicas // primaries if primaries else 0
    return f"{primaries} primaries x {per} replica{'' if per == 1 else 's'}"


def _targets_title(result: LoadtestResult) -> str:
    shape = _cluster_shape(result)
    if shape is None:
        return ""
    if "standalone" in result.targets:
        return f", standalone vs cluster of {shape}"
    return f", cluster of {shape}"


def build_table(result: LoadtestResult) -> Table:
    env = result.environment
    targets = result.targets
    probe = "probe GET every" if not targets else "probe GET on each node every"
    table = Table(
        title=(
            f"tenantkv loadtest: {server_label(env)}{_targets_title(result)}, "
            f"{env.get('cpu_count')} CPUs, {probe} "
            f"{result.config.get('probe_interval_ms')} ms"
        ),
        caption=(
            "SCAN/index/clear() = tenantkv; wall = median of runs; probe p50..max = latency (ms) "
            "of another client's GETs during the strategy, from their scheduled send time; "
            "server max = longest single command in SLOWLOG (ms)"
        ),
    )
    headers = ["tenant keys", "in Redis", "strategy", "wall ms", "keys/s"]
    if targets:
        headers.insert(1, "target")
    for header in headers:
        table.add_column(header, justify="left" if header in ("strategy", "target") else "right")
    for header in ("probe p50", "p99", "p99.9", "max"):
        table.add_column(header, justify="right")
    table.add_column("server max", justify="right")
    table.add_column("ok", justify="center")
    for scenario in result.scenarios:
        size = [f"{scenario.tenant_keys:,}"]
        if targets:
            size.append(scenario.target or "")
        keyspace = f"{scenario.keyspace_keys:,}"
        table.add_row(
            *size,
            keyspace,
            "[dim](no enumeration)[/]",
            "",
            "",
            *_probe_cells(scenario.idle),
            "",
            "",
        )
        for m in scenario.measurements:
            table.add_row(
                *size,
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


#: Columns of words, which may wrap (and fold a long word); every other column holds one figure.
_LABEL_COLUMNS = ("strategy", "target", "server max")
#: A longer word in a label column is folded across lines when the table must be narrow.
_LONGEST_UNFOLDED_WORD = 12
#: Wide enough to measure a table's natural width.
_UNLIMITED = 10_000


def fit_table(table: Table, console: Console) -> int:
    """Fit ``table`` to ``console`` without ever cutting a figure; the width to print it at.

    When the table is too wide, figure columns keep exactly the width of their
    widest figure (only their headers wrap), and the label columns share what is
    left, wrapping at spaces and folding long words. If even that does not fit,
    the width returned is wider than the console: the terminal wraps the lines,
    but no figure is shortened to an ellipsis.
    """
    unlimited = console.options.update_width(_UNLIMITED)
    if RenderWidth.get(console, unlimited, table).maximum <= console.width:
        return console.width
    narrowest: list[int] = []
    widest: list[int] = []
    for column in table.columns:
        header = RenderWidth.get(console, unlimited, console.render_str(str(column.header)))
        cells = [
            RenderWidth.get(console, unlimited, console.render_str(c) if isinstance(c, str) else c)
            for c in column.cells
        ]
        if column.header in _LABEL_COLUMNS:
            low = max(min(m.minimum, _LONGEST_UNFOLDED_WORD) for m in [header, *cells])
            high = max(m.maximum for m in [header, *cells])
        else:
            low = high = max([header.minimum, *(m.maximum for m in cells)])
        narrowest.append(low)
        widest.append(high)
        column.width = low
        column.no_wrap = False
        column.overflow = "fold"
    extra = RenderWidth.get(console, unlimited, table).maximum - sum(narrowest)
    spare = console.width - extra - sum(narrowest)
    for label in _LABEL_COLUMNS:  # the strategy's name first
        for column, high in zip(table.columns, widest, strict=True):
            if column.header == label and spare > 0 and column.width is not None:
                grow = min(spare, high - column.width)
                column.width += grow
                spare -= grow
    return max(console.width, extra + sum(c.width or 0 for c in table.columns))


def print_table(result: LoadtestResult, console: Console) -> None:
    table = build_table(result)
    width = fit_table(table, console)
    terminal_width = console.width
    console.width = width  # wider than the terminal only if the figures need it
    try:
        console.print(table)
    finally:
        console.width = terminal_width
    note = (result.environment.get("server_view") or {}).get("note")
    if note:
        console.print(f"[yellow]note:[/] server max is n/a: {note}")
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


def _series_key(m: Measurement) -> tuple[str, str, int | None]:
    """What a strategy is, whatever its target-specific label says."""
    return (m.kind, m.strategy, m.count)


def _panels(
    scenario: Scenario, prefix: str
) -> list[tuple[str, list[tuple[float, float]], float | None, str, LatencyStats]]:
    panels: list[tuple[str, list[tuple[float, float]], float | None, str, LatencyStats]] = [
        (
            f"{prefix}no enumeration (baseline noise)",
            scenario.idle_timeline,
            None,
            _IDLE_COLOR,
            scenario.idle,
        )
    ]
    panels += [
        (prefix + _plain_label(m), m.timeline, m.wall_ms, _color(m), m.probe)
        for m in scenario.measurements
    ]
    return panels


def write_chart(result: LoadtestResult, path: Path) -> None:
    """Probe latency over time per strategy (largest size), and cost vs keyspace size.

    With several targets the timeline panels come in one block of rows per
    target (the cluster's on a tinted background), and in the lower plots
    each strategy keeps its colour while the target sets the line style.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.scenarios:
        return
    targets: list[str | None] = list(result.targets) or [None]
    largest: dict[str | None, Scenario] = {}
    for s in result.scenarios:
        largest[s.target] = s  # scenarios are in ascending size
    cols = 4 if targets == [None] else 5
    blocks = [
        (t, _panels(largest[t], "" if t is None else f"{t}: ")) for t in targets if t in largest
    ]
    rows_of = [math.ceil(len(panels) / cols) for _, panels in blocks]
    rows = sum(rows_of)
    fig = plt.figure(figsize=(18, 3.2 * rows + 5.0), layout="constrained")
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[3.2] * rows + [5.0])
    env = result.environment
    scenario = result.scenarios[-1]
    fig.suptitle(
        f"tenantkv loadtest: another client's GET latency while one tenant of "
        f"{scenario.tenant_keys:,} keys is listed / cleared ({scenario.keyspace_keys:,} keys "
        f"in {server_label(env)}{_targets_title(result)}, "
        f"{env.get('cpu_count')} CPUs)",
        fontsize=13,
    )
    top = max(
        (lat for _, panels in blocks for _, timeline, _, _, _ in panels for _, lat in timeline),
        default=1.0,
    )
    first: Any = None
    row0 = 0
    for (target, panels), n_rows in zip(blocks, rows_of, strict=True):
        background = _TARGET_STYLE.get(target, _TARGET_STYLE[None])[2]
        for i, (label, timeline, wall_ms, color, stats) in enumerate(panels):
            ax = fig.add_subplot(grid[row0 + i // cols, i % cols], sharey=first)
            first = first or ax
            ax.set_facecolor(background)
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
                fontsize=9 if targets == [None] else 8,
            )
            ax.set_xlabel("ms since start", fontsize=8)
            if i % cols == 0:
                ax.set_ylabel("probe latency ms (log)", fontsize=8)
            ax.tick_params(labelsize=7)
        row0 += n_rows

    wall_ax = fig.add_subplot(grid[rows, : cols // 2])
    cmd_ax = fig.add_subplot(grid[rows, cols // 2 :])
    series: dict[tuple[str | None, str], list[tuple[int, Measurement]]] = {}
    for s in result.scenarios:
        for m in s.measurements:
            if m.kind == "list":
                label = _plain_label(m) if s.target is None else f"{s.target}: {_plain_label(m)}"
                series.setdefault((s.target, label), []).append((s.keyspace_keys, m))
    library_colors = iter(_LIBRARY_SERIES)
    colors: dict[tuple[str, str, int | None], str] = {}
    for (target, label), points in series.items():
        m0 = points[0][1]
        color = colors.get(_series_key(m0), "")
        if not color:  # one colour per strategy, whatever the target
            color = _color(m0)
            if color == _LIBRARY_COLOR:  # several tenantkv strategies: tell them apart
                color = next(library_colors, _LIBRARY_COLOR)
            colors[_series_key(m0)] = color
        linestyle, marker, _ = _TARGET_STYLE.get(target, _TARGET_STYLE[None])
        style: dict[str, Any] = {
            "color": color,
            "marker": marker,
            "linestyle": linestyle,
            "label": label,
        }
        sizes = [x for x, _ in points]
        wall_ax.plot(sizes, [m.wall_ms for _, m in points], **style)
        cmd_ax.plot(
            sizes,
            [m.server.longest_ms or m.server.threshold_us / 1000 for _, m in points],
            **style,
        )
    for ax, title in (
        (wall_ax, "listing time vs keys in Redis"),
        (
            cmd_ax,
            "longest single server command while listing (SLOWLOG"
            + (")" if targets == [None] else ", any node)"),
        ),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("keys in Redis (tenant + other tenants)")
        ax.set_ylabel("ms (log)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7 if len(targets) > 1 else 8, ncols=2 if len(targets) > 1 else 1)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plain_label(m: Measurement) -> str:
    return m.label if m.kind == "list" else f"clear: {m.label}"
