"""The load test's options, validated before anything touches a server."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tenantkv import (
    SCHEMES,
    InvalidTenantError,
    InvalidValueError,
    Namespace,
    StoreURL,
    parse_url,
    split_url,
)

from ..errors import EXIT_BAD_INPUT, CLIError
from .servers import PrivateServerError, find_redis_server

__all__ = [
    "LISTING_STRATEGIES",
    "LoadtestConfig",
    "parse_positive_ints",
    "parse_strategies",
]

#: Names accepted by ``--strategies``, in the order they run.
LISTING_STRATEGIES = ("keys", "scan", "index", "scan_iter")

FULL_SIZES = (10_000, 100_000)
FULL_NOISE = 100_000
FULL_REPEAT = 3
FULL_IDLE_S = 1.0
QUICK_SIZES = (2_000, 20_000)
QUICK_NOISE = 20_000
QUICK_REPEAT = 1
QUICK_IDLE_S = 0.3
DEFAULT_COUNTS = (100, 1000)
DEFAULT_PREFIX = "tkvload"
#: The private cluster ``--cluster`` starts: primaries, and replicas of each.
CLUSTER_PRIMARIES = 3
CLUSTER_REPLICAS = 1


def bad_input(message: str) -> CLIError:
    return CLIError(message, exit_code=EXIT_BAD_INPUT)


def parse_positive_ints(text: str, option: str) -> tuple[int, ...]:
    """``"10000,100_000"`` -> ``(10000, 100000)``; anything else is a bad-input error."""
    values: list[int] = []
    for part in text.split(","):
        item = part.strip()
        try:
            value = int(item)
        except ValueError:
            raise bad_input(f"{option}: {item!r} is not an integer") from None
        if value <= 0:
            raise bad_input(f"{option}: sizes and counts must be > 0, got {value}")
        values.append(value)
    return tuple(dict.fromkeys(values))


def parse_strategies(text: str | None) -> tuple[str, ...]:
    """The listing strategies to run, in canonical order (``None``: all of them).

    An unknown name, or none at all, is an error.
    """
    if text is None:
        return LISTING_STRATEGIES
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    if not wanted:
        raise bad_input("--strategies: give at least one of " + ", ".join(LISTING_STRATEGIES))
    for name in wanted:
        if name not in LISTING_STRATEGIES:
            raise bad_input(
                f"--strategies: unknown strategy {name!r}; "
                f"choose from {', '.join(LISTING_STRATEGIES)}"
            )
    return tuple(s for s in LISTING_STRATEGIES if s in wanted)


def check_output_path(path: Path | None, option: str, suffix: str | None = None) -> Path | None:
    """``path`` if it can be written later: its directory exists and it is not a directory."""
    if path is None:
        return None
    if path.is_dir():
        raise bad_input(f"{option}: {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise bad_input(f"{option}: directory {parent} does not exist")
    if suffix is not None and path.suffix.lower() != suffix:
        raise bad_input(f"{option}: {path} must end in {suffix}")
    return path


@dataclass(frozen=True)
class LoadtestConfig:
    """Everything a load test run needs to know; build it with :meth:`from_options`."""

    #: ``--url`` as given (``None``: private servers), and parsed once.
    url: str | None
    target: StoreURL | None
    sizes: tuple[int, ...]
    noise: int
    counts: tuple[int, ...]
    strategies: tuple[str, ...]
    clear: bool = True
    repeat: int = FULL_REPEAT
    probe_interval_ms: float = 1.0
    idle_seconds: float = FULL_IDLE_S
    slowlog_threshold_us: int = 10
    prefix: str = DEFAULT_PREFIX
    allow_nonempty: bool = False
    json_path: Path | None = None
    chart_path: Path | None = None
    quick: bool = False
    #: The target is a Redis Cluster (``--cluster``, or a ``redis+cluster://`` URL).
    cluster: bool = False
    #: Also run everything on a private standalone server, on the same data.
    compare_standalone: bool = False
    #: Hash-tagged shards of the measured tenant (``open_store(..., shards=N)``).
    shards: int = 1
    #: ``--server``: the binary of the private servers (``None``: $TENANTKV_REDIS_SERVER
    #: or ``redis-server`` on PATH, looked up when one is started).
    server: str | None = None

    @classmethod
    def from_options(
        cls,
        *,
        url: str | None,
        keys: str | None,
        noise: int | None,
        counts: str | None,
        strategies: str | None,
        clear: bool,
        repeat: int | None,
        probe_interval_ms: float,
        slowlog_threshold_us: int,
        prefix: str,
        allow_nonempty: bool,
        json_path: Path | None,
        chart_path: Path | None,
        quick: bool,
        cluster: bool = False,
        compare_standalone: bool | None = None,
        shards: int = 1,
        server: str | None = None,
    ) -> LoadtestConfig:
        """Validate the command-line options; raises :class:`CLIError` (exit status 2).

        ``cluster`` without ``url`` means a private cluster; ``compare_standalone``
        defaults to true exactly then (a private cluster next to a private server).
        """
        sizes = (
            parse_positive_ints(keys, "--keys")
            if keys is not None
            else (QUICK_SIZES if quick else FULL_SIZES)
        )
        if noise is None:
            noise = QUICK_NOISE if quick else FULL_NOISE
        if noise < 0:
            raise bad_input(f"--noise must be >= 0, got {noise}")
        if repeat is None:
            repeat = QUICK_REPEAT if quick else FULL_REPEAT
        if repeat <= 0:
            raise bad_input(f"--repeat must be > 0, got {repeat}")
        if not (math.isfinite(probe_interval_ms) and 0.05 <= probe_interval_ms <= 1000):
            raise bad_input(
                f"--probe-interval-ms must be between 0.05 and 1000, got {probe_interval_ms}"
            )
        if slowlog_threshold_us < 0:
            raise bad_input(f"--slowlog-threshold-us must be >= 0, got {slowlog_threshold_us}")
        target = None if url is None else check_url(url)
        cluster, compare_standalone = _cluster_options(target, cluster, compare_standalone)
        if server is not None:
            if target is not None and not compare_standalone:
                raise bad_input(
                    "--server picks the binary of private servers; with --url there is none"
                )
            try:
                server = find_redis_server(given=server)
            except PrivateServerError as exc:
                raise bad_input(str(exc)) from None
        try:
            Namespace("t", prefix, shards)  # what the load test's stores will be opened with
        except InvalidTenantError as exc:
            raise bad_input(f"--prefix: {exc}") from None
        except InvalidValueError as exc:
            raise bad_input(f"--shards: {exc}") from None
        return cls(
            url=url,
            target=target,
            sizes=tuple(sorted(sizes)),
            noise=noise,
            counts=parse_positive_ints(counts, "--count") if counts else DEFAULT_COUNTS,
            strategies=parse_strategies(strategies),
            clear=clear,
            repeat=repeat,
            probe_interval_ms=probe_interval_ms,
            idle_seconds=QUICK_IDLE_S if quick else FULL_IDLE_S,
            slowlog_threshold_us=slowlog_threshold_us,
            prefix=prefix,
            allow_nonempty=allow_nonempty,
            json_path=check_output_path(json_path, "--json"),
            chart_path=check_output_path(chart_path, "--chart", ".png"),
            quick=quick,
            cluster=cluster,
            compare_standalone=compare_standalone,
            shards=shards,
            server=server,
        )


#: What each store option of a URL is called on the load test's command line.
_STORE_OPTION_FLAGS = {
    "index": "--strategies",
    "shards": "--shards",
    "count": "--count",
    "prefix": "--prefix",
}


def check_url(url: str) -> StoreURL:
    """``--url`` parsed, if the load test can run on it; anything else is bad input.

    The load test opens its stores itself (plain and indexed, with ``--shards``,
    ``--count`` and ``--prefix``), so tenantkv's store options in the URL's query
    (``index``, ``shards``, ``count``, ``prefix``) are refused rather than
    silently changing what a strategy measures. Every other option is checked
    as a store would check it (the load test's own clients use them too).
    """
    parsed = split_url(url)  # InvalidURLError: exit status 2, password redacted
    if parsed.backend == "memory":
        schemes = ", ".join(f"{s.name}://" for s in SCHEMES.values() if s.backend != "memory")
        raise bad_input(f"--url: loadtest needs Redis ({schemes}), not {parsed.scheme}://")
    if parsed.store_options:
        given = ", ".join(
            f"{name}= (use {_STORE_OPTION_FLAGS.get(name, 'the options')})"
            for name in sorted(parsed.store_options)
        )
        raise bad_input(
            f"--url: the load test chooses the store options itself; remove {given} "
            f"from {parsed.redacted}"
        )
    return parse_url(url)  # every other option, as a store checks it


def _cluster_options(
    url: StoreURL | None, cluster: bool, compare_standalone: bool | None
) -> tuple[bool, bool]:
    """``(cluster, compare_standalone)`` made consistent with ``url``."""
    if url is not None:
        if cluster and url.backend != "cluster":
            raise bad_input(
                f"--cluster: the URL's scheme is {url.scheme}://; give a "
                "redis+cluster:// URL, or no URL for a private cluster"
            )
        cluster = cluster or url.backend == "cluster"
    if compare_standalone is None:
        compare_standalone = cluster and url is None
    if compare_standalone and not cluster:
        raise bad_input("--compare-standalone needs a cluster target (--cluster)")
    return cluster, compare_standalone
