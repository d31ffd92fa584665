"""The ``tenantkv`` console script: ops commands and the load test.

Every command reports user errors as one line on stderr with a non-zero exit
status (see :mod:`tenantkv.cli.errors`), never a traceback, and never shows
a URL's password.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tenantkv import tenant_acl_rules

from . import ops
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_WRONG_RESULT,
    CLIError,
    print_error,
    reported_errors,
)
from .interrupts import recording_sigint, run
from .loadtest.config import LISTING_STRATEGIES, LoadtestConfig
from .progress import Display, progress_display

__all__ = ["app", "main"]

app = typer.Typer(
    name="tenantkv",
    help="Operate tenantkv stores and load-test key enumeration on Redis (never with KEYS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: wraps at any width, never cuts an option name, and shows
    # a flag as a flag (typer's rich panels print "--quick <bool>").
    rich_markup_mode=None,
)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="TENANTKV_URL",
        help="Store URL, e.g. redis://host:6379/0 (add ?index=1 to list through the index).",
    ),
]
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant ID.")]
PrefixOption = Annotated[
    str | None, typer.Option("--prefix", help="App prefix of the keys (tenantkv's default: tkv).")
]
CountOption = Annotated[
    int | None,
    typer.Option("--count", "-c", help="Keys visited per server command (SCAN COUNT / chunk)."),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the final report as JSON (for scripts) instead of lines."),
]
PatternArgument = Annotated[
    str, typer.Argument(help="Redis glob pattern, relative to the tenant.", show_default=True)
]


def _target(url: str, tenant: str, prefix: str | None, *, index: bool = False) -> ops.StoreTarget:
    return ops.StoreTarget(url=url, tenant=tenant, prefix=prefix, index=index)


@app.command("keys")
def keys_command(
    url: UrlOption,
    tenant: TenantOption,
    pattern: PatternArgument = "*",
    count: CountOption = None,
    prefix: PrefixOption = None,
    null: Annotated[
        bool,
        typer.Option(
            "--null",
            "-0",
            help="End each key with a NUL byte instead of a newline (for xargs -0): "
            "keys may contain newlines.",
        ),
    ] = False,
) -> None:
    """Stream the tenant's keys matching PATTERN, one per line (as the bytes Redis holds).

    Into a file or a pipe, a progress display goes to stderr when it is a terminal.
    """
    end = b"\0" if null else b"\n"
    target = _target(url, tenant, prefix)
    with reported_errors(), _keys_display() as display:
        try:
            listing = ops.stream_keys(
                target, pattern, count, sys.stdout.buffer, end, progress=display.update
            )
            display.update(run(listing, insist=True))
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, like other Unix tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None


def _keys_display() -> contextlib.AbstractContextManager[Display]:
    """Progress of a listing, unless the keys themselves go to the terminal."""
    if sys.stdout.isatty():
        return progress_display("keys", stream=io.StringIO())
    return progress_display("keys")


def _emit(report: object, as_json: bool) -> None:
    """A final report: JSON on stdout, or field by field (key lists one key per line)."""
    fields = ops.describe(report)
    if as_json:
        typer.echo(json.dumps(fields, indent=2, sort_keys=True, default=str))
        return
    for name, value in fields.items():
        if isinstance(value, list):
            typer.echo(f"{name}:{'' if value else ' (none)'}")
            for item in value:
                typer.echo(f"  {item}")
        else:
            typer.echo(f"{name}: {value}")


@app.command("count")
def count_command(
    url: UrlOption,
    tenant: TenantOption,
    pattern: PatternArgument = "*",
    count: CountOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Print how many of the tenant's keys match PATTERN."""
    with reported_errors():
        typer.echo(run(ops.count_keys(_target(url, tenant, prefix), pattern, count), insist=True))


@app.command("stats")
def stats_command(url: UrlOption, tenant: TenantOption, prefix: PrefixOption = None) -> None:
    """Print the tenant's key count and the store's state."""
    with reported_errors():
        for name, value in run(ops.tenant_stats(_target(url, tenant, prefix)), insist=True).items():
            typer.echo(f"{name}: {value}")


@app.command("clear")
def clear_command(
    url: UrlOption,
    tenant: TenantOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    count: CountOption = None,
    prefix: PrefixOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete every key of the tenant (in bounded batches); asks first unless --yes."""
    with reported_errors():
        target = _target(url, tenant, prefix)
        if not yes:
            present, where = run(ops.count_for_clearing(target, count), insist=True)
            if present and not _confirm(
                f"Delete all {present:,} keys of tenant {tenant!r} ({where})?"
            ):
                raise CLIError("not confirmed; nothing was deleted")
        started = time.perf_counter()
        with progress_display("clear") as display:
            deleted = run(ops.clear_tenant(target, count, display), insist=True)
        if as_json:
            elapsed = round(time.perf_counter() - started, 3)
            _emit({"tenant": tenant, "deleted": deleted, "duration_s": elapsed}, as_json)
        else:
            typer.echo(f"deleted {deleted} keys")


def _confirm(question: str) -> bool:
    """Ask on stderr (no event loop running); Ctrl-C is an interruption, not a "no"."""
    with recording_sigint() as sigint:
        try:
            return typer.confirm(question, default=False, err=True)
        except typer.Abort:  # EOF, or Ctrl-C (click turns both into Abort)
            if sigint.received:
                raise KeyboardInterrupt from None
            return False


@app.command("reindex")
def reindex_command(
    url: UrlOption,
    tenant: TenantOption,
    count: CountOption = None,
    prefix: PrefixOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the tenant's index from a SCAN of its keys, never blocking the server."""
    with reported_errors():
        target = _target(url, tenant, prefix, index=True)
        with progress_display("reindex") as display:
            report = run(ops.reindex(target, count, display), insist=True)
        _emit(report, as_json)
        if not as_json:
            typer.echo(f"repaired {report.drift} inconsistencies")


@app.command("verify-index")
def verify_index_command(
    url: UrlOption,
    tenant: TenantOption,
    count: CountOption = None,
    prefix: PrefixOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the tenant's index with its keys; exit status 1 when they drifted apart."""
    with reported_errors():
        target = _target(url, tenant, prefix, index=True)
        with progress_display("verify-index") as display:
            report = run(ops.verify_index(target, count, display), insist=True)
        _emit(report, as_json)
        if report.drift:
            raise CLIError(
                f"index and keys have drifted apart ({report.drift} inconsistencies); "
                "run tenantkv reindex"
            )


@app.command("migrate")
def migrate_command(
    url: UrlOption,
    tenant: TenantOption,
    old_prefix: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="PREFIX",
            help="The old layout's key prefix of this tenant, e.g. 'tenant:buyer.example.com:'.",
        ),
    ],
    copy: Annotated[bool, typer.Option("--copy", help="Keep the old keys.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would move.")] = False,
    count: CountOption = None,
    prefix: PrefixOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move the tenant's keys in from another layout, live; exit 1 if any were left behind.

    Values, types and TTLs move with the keys; a key the old service writes again
    meanwhile is copied again, one the new service wrote is never overwritten (a
    conflict, reported). Idempotent: run it again after an interruption.
    """
    with reported_errors():
        target = _target(url, tenant, prefix)
        with progress_display("migrate") as display:
            work = ops.migrate(
                target, old_prefix, copy=copy, dry_run=dry_run, count=count, progress=display
            )
            report = run(work, insist=True)
        _emit(report, as_json)  # once the display is gone: the report goes to stdout
        if report.left_behind:
            raise CLIError(
                f"{report.left_behind} keys were left behind (conflicts, not JSON, other "
                "types, or still changing): see the report"
            )


@app.command("inspect")
def inspect_command(
    url: UrlOption,
    tenant: TenantOption,
    key: Annotated[str, typer.Argument(help="The key, relative to the tenant.")],
    items: Annotated[int, typer.Option("--items", help="List items to show.")] = 10,
    prefix: PrefixOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what one key holds: type, TTL, size and decoded value (a list's first items)."""
    with reported_errors():
        info = run(ops.inspect(_target(url, tenant, prefix), key, items), insist=True)
        if as_json:
            _emit(info, as_json)
            return
        ttl = "none" if info.ttl_ms is None else f"{info.ttl_ms:,} ms"
        typer.echo(f"key: {info.key}")
        typer.echo(f"type: {info.kind}")
        if info.kind == "missing":
            return
        typer.echo(f"ttl: {ttl}")
        if info.kind == "list":
            typer.echo(f"length: {info.length:,} items ({info.size_bytes:,} bytes shown)")
            for position, item in enumerate(info.value):
                typer.echo(f"  [{position}] {json.dumps(item, ensure_ascii=False)}")
            if info.length > len(info.value):
                typer.echo(f"  ... {info.length - len(info.value):,} more")
        else:
            typer.echo(f"size: {info.size_bytes:,} bytes")
            shown = (
                json.dumps(info.value, ensure_ascii=False, indent=2) if info.json else info.value
            )
            typer.echo(f"value{'' if info.json else ' (not JSON)'}: {shown}")


#: Where ``tenantkv acl`` takes the new user's password from, if set (else it asks).
ACL_PASSWORD_ENV_VAR = "TENANTKV_ACL_PASSWORD"


@app.command("acl")
def acl_command(
    tenant: TenantOption,
    prefix: Annotated[
        str, typer.Option("--prefix", help="App prefix of the tenant's keys.")
    ] = "tkv",
    no_scan: Annotated[
        bool,
        typer.Option(
            "--no-scan",
            help="Deny SCAN: the user then reaches nothing of another tenant (not even key "
            "names); open its stores with index=1. reindex/verify-index need another user.",
        ),
    ] = False,
    shards: Annotated[
        int,
        typer.Option("--shards", metavar="N", help="The tenant's shards (open_store(shards=N))."),
    ] = 1,
    user: Annotated[
        str | None, typer.Option("--user", help="ACL user name (default: the tenant ID).")
    ] = None,
) -> None:
    """Print the ACL SETUSER line of a user restricted to one tenant's keys and channels.

    The password comes from $TENANTKV_ACL_PASSWORD or a hidden, confirmed prompt;
    the line carries only its SHA-256 (#...). On a cluster, run it on every node.
    """
    with reported_errors():
        rules = tenant_acl_rules(tenant, prefix=prefix, shards=shards, scan=not no_scan)
        name = user if user is not None else tenant
        if not name or any(ch.isspace() for ch in name):
            raise CLIError(f"--user: {name!r} is not an ACL user name", exit_code=EXIT_BAD_INPUT)
        password = os.environ.get(ACL_PASSWORD_ENV_VAR) or _ask_password(name)
        digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
        typer.echo(" ".join(["ACL", "SETUSER", name, "reset", "on", f"#{digest}", *rules]))


def _ask_password(user: str) -> str:
    """The new user's password, asked twice on the terminal without echoing it."""
    with recording_sigint() as sigint:
        try:
            password: str = typer.prompt(
                f"Password for ACL user {user}",
                hide_input=True,
                confirmation_prompt=True,
                err=True,
            )
        except typer.Abort:
            if sigint.received:
                raise KeyboardInterrupt from None
            raise CLIError(
                f"no password: set ${ACL_PASSWORD_ENV_VAR} or type one at the prompt"
            ) from None
    if not password:
        raise CLIError("the password is empty", exit_code=EXIT_BAD_INPUT)
    return password


@app.command("loadtest")
def loadtest_command(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="Redis to test: redis://... or redis+cluster://... (default: a private "
            "redis-server on a free port, stopped after). The load test opens its stores "
            "itself, so tenantkv's store options in the URL (index, shards, count, prefix) "
            "are refused: use --strategies, --shards, --count and --prefix.",
        ),
    ] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="Test a Redis Cluster: the --url redis+cluster://..., or without --url a "
            "private one (3 primaries x 1 replica), compared with a private standalone server.",
        ),
    ] = False,
    compare_standalone: Annotated[
        bool | None,
        typer.Option(
            "--compare-standalone/--no-compare-standalone",
            help="With a cluster target, also run on a private standalone server, same data "
            "(default: on with a private cluster, off with --url).",
        ),
    ] = None,
    shards: Annotated[
        int,
        typer.Option(
            "--shards",
            metavar="N",
            help="Spread the measured tenant over N hash-tagged shards (open_store(shards=N)), "
            "for every strategy, the index included.",
        ),
    ] = 1,
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            help="Tenant sizes, comma-separated (default: 10000,100000; quick: 2000,20000).",
        ),
    ] = None,
    noise: Annotated[
        int | None,
        typer.Option(
            "--noise",
            help="Keys of other tenants in the same Redis (default: 100000; quick: 20000).",
        ),
    ] = None,
    counts: Annotated[
        str | None,
        typer.Option("--count", help="SCAN COUNT values to measure (default: 100,1000)."),
    ] = None,
    strategies: Annotated[
        str | None,
        typer.Option(
            "--strategies",
            help=f"Listing strategies, comma-separated, from {','.join(LISTING_STRATEGIES)} "
            "(default: all available).",
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear/--no-clear", help="Also measure KEYS+DEL vs clear().")
    ] = True,
    repeat: Annotated[
        int | None,
        typer.Option("--repeat", help="Runs per listing strategy (median) (default: 3; quick: 1)."),
    ] = None,
    probe_interval_ms: Annotated[
        float, typer.Option("--probe-interval-ms", help="Probe GET schedule.")
    ] = 1.0,
    slowlog_threshold_us: Annotated[
        int, typer.Option("--slowlog-threshold-us", help="SLOWLOG threshold set for the run.")
    ] = 10,
    prefix: Annotated[
        str, typer.Option("--prefix", help="App prefix of every key the load test writes.")
    ] = "tkvload",
    allow_nonempty: Annotated[
        bool,
        typer.Option("--allow-nonempty", help="Run on a --url database that already holds keys."),
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write every figure and the environment here.")
    ] = None,
    chart_path: Annotated[
        Path | None, typer.Option("--chart", help="Write a PNG chart here.")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes (2000,20000; noise 20000), one run each.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="PATH",
            help="Server binary of the private servers and clusters: redis-server, "
            "valkey-server or another compatible one (default: $TENANTKV_REDIS_SERVER, "
            "else redis-server on PATH).",
        ),
    ] = None,
) -> None:
    """Measure listing and clearing one tenant: KEYS vs SCAN vs index, and what others feel."""
    # Imported here: the load test pulls in multiprocessing and (for --chart) matplotlib.
    from .loadtest.report import print_table, write_chart, write_json
    from .loadtest.runner import run_loadtest

    with reported_errors():
        config = LoadtestConfig.from_options(
            url=url,
            keys=keys,
            noise=noise,
            counts=counts,
            strategies=strategies,
            clear=clear,
            repeat=repeat,
            probe_interval_ms=probe_interval_ms,
            slowlog_threshold_us=slowlog_threshold_us,
            prefix=prefix,
            allow_nonempty=allow_nonempty,
            json_path=json_path,
            chart_path=chart_path,
            quick=quick,
            cluster=cluster,
            compare_standalone=compare_standalone,
            shards=shards,
            server=server,
        )
        status = Console(stderr=True, highlight=False)
        result = run_loadtest(config, status=status)
        # Not a terminal (a pipe, a CI log): wide enough for the table not to wrap.
        width = 160 if not result.targets else 180
        print_table(result, Console(highlight=False, width=None if sys.stdout.isatty() else width))
        try:
            if config.json_path is not None:
                write_json(result, config.json_path)
                status.print(f"wrote {config.json_path}")
            if config.chart_path is not None:
                write_chart(result, config.chart_path)
                status.print(f"wrote {config.chart_path}")
        except OSError as exc:
            raise CLIError(f"cannot write the report: {exc}") from exc
        if result.wrong:
            raise CLIError(
                f"{len(result.wrong)} wrong result(s): {result.wrong[0]}",
                exit_code=EXIT_WRONG_RESULT,
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the app, turning usage errors into one line."""
    command = typer.main.get_command(app)
    try:
        code = command.main(
            args=None if argv is None else list(argv),
            prog_name="tenantkv",
            standalone_mode=False,
        )
    except typer.Abort as exc:
        # click's own answer to Ctrl-C (or EOF) outside a command's work.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            print_error("interrupted")
            code = EXIT_INTERRUPTED
        else:
            print_error("aborted")
            code = EXIT_FAILED
    except Exception as exc:
        # A usage error (unknown option, bad value): click's ClickException,
        # which typer vendors in recent versions; recognised by its interface.
        format_message = getattr(exc, "format_message", None)
        exit_code = getattr(exc, "exit_code", None)
        if not callable(format_message) or not isinstance(exit_code, int):
            raise
        message = str(format_message())
        if type(exc).__name__ == "NoArgsIsHelpError":
            # No arguments at all: the help is the answer, not an error line.
            typer.echo(message, err=True)
        elif message.strip():
            print_error(message)
        code = exit_code
    sys.exit(code if isinstance(code, int) else 0)
