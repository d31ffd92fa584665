"""redis-py's exceptions, translated at the edge into :mod:`tenantkv.errors`.

Every command of the Redis backends runs inside one of these context
managers, which name the store's URL with its password already removed.

They also give back a cancellation redis-py lost. On Python 3.11,
``asyncio.wait_for`` swallows a cancellation that arrives as the call it
wraps completes (CPython gh-86296), and redis-py wraps its socket I/O in it
whenever a socket timeout is set: a ``task.cancel()`` or an
``asyncio.timeout()`` then let the command, and everything after it, run on
as if nothing had happened. The task still counts the request
(:meth:`asyncio.Task.cancelling`), so a command that completes while its
task was asked to cancel raises :class:`asyncio.CancelledError` after all
(an ``asyncio.timeout`` turns it into ``TimeoutError``). Its effect on the
server may or may not have happened, as with any cancelled call.

A refusal by the server's ACL becomes :class:`~tenantkv.errors.PermissionDeniedError`:
redis-py raises ``NoPermissionError`` for a ``-NOPERM`` reply, but a command a
Lua script calls on a key the user may not touch fails the script with a plain
``-ERR`` (Redis 7.0: "The user executing the script can't access at least one
of the keys ..."; Redis 7.2+ and Valkey: "ACL failure in script: ...").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis import exceptions as rexc

from ...cancellation import CancellationCheck
from ...errors import (
    BackendError,
    BackendUnavailableError,
    PermissionDeniedError,
    WrongTypeError,
)
from ...telemetry import count_server_call

__all__ = [
    "cancellation_only",
    "permission_denied",
    "refused_in_script",
    "translate_cluster_errors",
    "translate_errors",
]


@contextlib.contextmanager
def translate_errors(url: str, command: str) -> Iterator[None]:
    """Turn redis-py's exceptions into tenantkv's, naming ``url`` (already redacted), and
    raise a cancellation the command swallowed (see the module docstring)."""
    cancelled = CancellationCheck()
    count_server_call()
    try:
        yield
    except rexc.AuthenticationError as exc:  # a ConnectionError to redis-py, but not "unreachable"
        raise BackendUnavailableError(
            f"{command} failed: {url} refused the credentials: {exc}", url=url, command=command
        ) from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        if _pool_full(exc):
            raise BackendUnavailableError(
                f"{command} failed: every connection of the pool to {url} is in use "
                "(max_connections) and redis-py fails rather than waits: raise max_connections "
                "or make fewer calls at once",
                url=url,
                command=command,
            ) from exc
        raise BackendUnavailableError(
            f"{command} failed: cannot reach {url}: {exc}", url=url, command=command
        ) from exc
    except rexc.NoPermissionError as exc:
        raise permission_denied(url, command, exc) from exc
    except rexc.ResponseError as exc:
        if refused_in_script(exc):
            raise permission_denied(url, command, exc) from exc
        if str(exc).startswith("WRONGTYPE"):
            raise WrongTypeError(
                f"{command} failed on {url}: the key holds another kind of value ({exc})",
                url=url,
                command=command,
            ) from exc
        raise BackendError(f"{command} failed on {url}: {exc}", url=url, command=command) from exc
    except rexc.RedisError as exc:
        raise BackendError(f"{command} failed on {url}: {exc}", url=url, command=command) from exc
    cancelled()


@contextlib.contextmanager
def translate_cluster_errors(url: str, command: str) -> Iterator[None]:
    """:func:`translate_errors` plus redis-py's cluster exceptions."""
    with translate_errors(url, command):
        try:
            yield
        except (rexc.ClusterDownError, rexc.TryAgainError, rexc.SlotNotCoveredError) as exc:
            raise BackendUnavailableError(
                f"{command} failed: the cluster at {url} is not serving all slots: {exc}",
                url=url,
                command=command,
            ) from exc
        except rexc.RedisClusterException as exc:  # not a RedisError subclass
            cls = BackendUnavailableError if "connect" in str(exc) else BackendError
            raise cls(f"{command} failed on {url}: {exc}", url=url, command=command) from exc


def _pool_full(exc: Exception) -> bool:
    """Whether ``exc`` is redis-py's pool refusing a connection past ``max_connections``
    (``MaxConnectionsError`` since redis-py 6; a plain ``ConnectionError`` before)."""
    full: type[Exception] | tuple[()] = getattr(rexc, "MaxConnectionsError", ())
    return isinstance(exc, full) or str(exc) == "Too many connections"


#: How a Lua script's refused command reads (the reply is -ERR, not -NOPERM).
_SCRIPT_ACL_FAILURES = ("ACL failure in script", "can't access at least one of the keys")


def refused_in_script(exc: rexc.ResponseError) -> bool:
    """Whether ``exc`` is a script failing on a command or key the server's ACL refused."""
    text = str(exc)
    return any(marker in text for marker in _SCRIPT_ACL_FAILURES)


def permission_denied(url: str, command: str, exc: rexc.RedisError) -> PermissionDeniedError:
    """The error for a command (or a key or channel it names) the server's ACL refused."""
    return PermissionDeniedError(
        f"{command} refused by {url}: these credentials may not do it ({exc})",
        url=url,
        command=command,
    )


@contextlib.contextmanager
def cancellation_only(command: str) -> Iterator[None]:
    """Raise a cancellation ``command`` swallowed, translating nothing: for the cluster's node
    walks, whose failures mean "walk again elsewhere" and are judged by the walk itself."""
    cancelled = CancellationCheck()
    count_server_call()
    yield
    cancelled()
