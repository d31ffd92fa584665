"""redis-py's exceptions, translated at the edge into :mod:`tenantkv.errors`.

Every command of the Redis backends runs inside one of these context
managers, which name the store's URL with its password already removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis import exceptions as rexc

from ...errors import BackendError, BackendUnavailableError, WrongTypeError

__all__ = ["translate_cluster_errors", "translate_errors"]


@contextlib.contextmanager
def translate_errors(url: str, command: str) -> Iterator[None]:
    """Turn redis-py's exceptions into tenantkv's, naming ``url`` (already redacted)."""
    try:
        yield
    except rexc.AuthenticationError as exc:  # a ConnectionError to redis-py, but not "unreachable"
        raise BackendUnavailableError(
            f"{command} failed: {url} refused the credentials: {exc}", url=url, command=command
        ) from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        raise BackendUnavailableError(
            f"{command} failed: cannot reach {url}: {exc}", url=url, command=command
        ) from exc
    except rexc.ResponseError as exc:
        if str(exc).startswith("WRONGTYPE"):
            raise WrongTypeError(
                f"{command} failed on {url}: the key holds another kind of value ({exc})",
                url=url,
                command=command,
            ) from exc
        raise BackendError(f"{command} failed on {url}: {exc}", url=url, command=command) from exc
    except rexc.RedisError as exc:
        raise BackendError(f"{command} failed on {url}: {exc}", url=url, command=command) from exc


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
