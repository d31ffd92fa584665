"""How the command line reports failure: one line on stderr and an exit status.

A user error (bad option, unreachable server, refused database) never shows a
traceback. Exit statuses::

    0    success
    1    the operation failed (server unreachable, refused, drift found, ...)
    2    bad input (options, URL, tenant ID)
    3    the load test found a wrong result (a strategy missed or repeated keys)
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from redis import exceptions as rexc

from tenantkv import InvalidInputError, TenantKVError

from .loadtest.servers import PrivateServerError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_WRONG_RESULT",
    "CLIError",
    "print_error",
    "redis_errors",
    "reported_errors",
]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_WRONG_RESULT = 3
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A failure to report as ``error: <message>`` with ``exit_code``."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(message: str) -> str:
    """``message`` squeezed onto one line (server logs and redis-py errors span several)."""
    return " ".join(message.split())


def print_error(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one line on stderr and ``typer.Exit``."""
    try:
        yield
    except CLIError as exc:
        print_error(exc.message)
        raise typer.Exit(exc.exit_code) from None
    except InvalidInputError as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except (TenantKVError, PrivateServerError) as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


@contextlib.contextmanager
def redis_errors(redacted_url: str, command: str) -> Iterator[None]:
    """Report a failure of the tool's own redis-py clients (the load test's baseline,
    seeding and SLOWLOG) as a :class:`CLIError` naming the server without its password.

    The library translates its own errors; these clients are the CLI's.
    """
    try:
        yield
    except rexc.AuthenticationError as exc:
        raise CLIError(f"{command} failed: {redacted_url} refused the credentials: {exc}") from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        raise CLIError(f"{command} failed: cannot reach {redacted_url}: {exc}") from exc
    except (rexc.RedisError, rexc.RedisClusterException) as exc:
        raise CLIError(f"{command} failed on {redacted_url}: {exc}") from exc
