"""redis-py client options: which a store accepts, checked before anything connects.

Options come from the URL's query (typed by redis-py's own URL parser, see
:mod:`tenantkv.urls`) and from ``open_store``'s keywords; a keyword wins.
Names the redis-py client does not take, options tenantkv sets itself, TLS
options on ``redis://`` and values of the wrong type raise
:class:`~tenantkv.errors.InvalidURLError` when the store opens, not a
``TypeError`` on the first command.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...codec import KEY_ENCODING
from ...errors import InvalidURLError
from ...urls import MASK, StoreURL, is_secret_option
from ...validation import check_wait_ms, store_option

__all__ = [
    "DEFAULT_TOPOLOGY_WAIT_MS",
    "NO_RETRY",
    "client_defaults",
    "cluster_url",
    "node_options",
    "standalone_url",
]

#: How long an enumeration waits for the cluster to settle (a failover to
#: finish, a migrating slot to land) before it raises TopologyChangedError.
#: Redis' default cluster-node-timeout is 15 s, so with default settings an
#: enumeration running into a *crashed* primary raises rather than waits.
DEFAULT_TOPOLOGY_WAIT_MS = 10_000


#: Options of a client whose commands fail at once instead of reconnecting and
#: trying again: per-node clients of a cluster walk, and subscriber connections.
#: No health check either: redis-py's PING before a command of an idle pub/sub
#: connection reads its reply while the hub's reader is reading ("read() called
#: while another coroutine is already waiting"), and one that fails reconnects.
NO_RETRY: dict[str, Any] = {
    "retry": Retry(NoBackoff(), 0),
    "retry_on_error": None,
    "health_check_interval": 0,
}


def client_defaults() -> dict[str, Any]:
    """redis-py client options tenantkv sets unless the caller passes them.

    redis-py >= 8 enables RESP3 maintenance notifications in ``"auto"`` mode,
    and while that mode is on its pool hands out a pooled connection without
    checking whether the server has closed it (redis-py issue #4128). The
    first command after an idle timeout or a server restart then failed with
    "Connection closed by server". With the notifications off (tenantkv uses
    none of them), the pool notices the closed connection and opens a new one.
    """
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py < 8 has no such mode
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


#: Options tenantkv sets itself: replies stay bytes, and key bytes that are
#: not UTF-8 come back as surrogate escapes (tenantkv.codec).
_OWN_OPTIONS = frozenset({"decode_responses", "encoding", "encoding_errors"})
_FIXED = {"decode_responses": False, "encoding_errors": KEY_ENCODING[1]}
#: Defaults of tenantkv's own where redis-py has none: a server that does not
#: accept the connection fails the open within 5 s instead of hanging.
_DEFAULTS = {"socket_connect_timeout": 5.0}


def _parameters(init: Callable[..., object], *excluded: str) -> frozenset[str]:
    names = frozenset(inspect.signature(init).parameters)
    return names - {"self", *excluded, *_OWN_OPTIONS}


# What each client's constructor takes, less what the URL decides (where the
# server is, TLS: rediss://) and redis-py's own plumbing.
_STANDALONE_OPTIONS = _parameters(
    aioredis.Redis.__init__,
    "host",
    "port",
    "connection_pool",
    "unix_socket_path",
    "auto_close_connection_pool",
    "event_dispatcher",
    "ssl",
)
_CLUSTER_OPTIONS = _parameters(
    RedisCluster.__init__, "host", "port", "startup_nodes", "db", "path", "event_dispatcher", "ssl"
)
# A URL's query goes to the connection class, which lacks the client's own options.
_CLIENT_ONLY_OPTIONS = frozenset({"single_connection_client"})


def _check_names(
    keywords: Iterable[str], query: Iterable[str], url: StoreURL, accepted: frozenset[str]
) -> None:
    """Refuse option names (keywords, or the URL's query) the client does not take."""
    if not url.tls:
        accepted = frozenset(name for name in accepted if not name.startswith("ssl"))
    named = [(name, accepted) for name in keywords]
    named += [(name, accepted - _CLIENT_ONLY_OPTIONS) for name in query]
    for name, allowed in named:
        if name in _OWN_OPTIONS:
            raise InvalidURLError(
                f"option {name!r} is not accepted for {url.redacted}: tenantkv sets it itself"
            )
        if name not in allowed:
            hint = ""
            if name.startswith("ssl") and not url.tls:
                hint = " (a TLS option: use rediss://)"
            elif name in _CLIENT_ONLY_OPTIONS:
                hint = " (give it to open_store as a keyword, not in the URL)"
            elif name == "topology_wait_ms":
                hint = " (a redis+cluster:// option)"
            elif close := difflib.get_close_matches(name, allowed, n=1):
                hint = f" (did you mean {close[0]!r}?)"
            raise InvalidURLError(f"unknown option {name!r} for {url.redacted}{hint}")


def _seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


def _seconds_or_none(value: object) -> bool:
    return value is None or _seconds(value)


def _count_at_least(minimum: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _flag(value: object) -> bool:
    return isinstance(value, bool)


#: What each option's value must be, where redis-py would only fail later (a TypeError on
#: the first command, a timeout "writing to" the server, a pool that never hands out a
#: connection) or not at all (a NaN timeout). Options not listed are left to redis-py.
_VALUES: dict[str, tuple[str, Callable[[object], bool]]] = {
    "socket_timeout": ("a number of seconds > 0 (or None)", _seconds_or_none),
    "socket_connect_timeout": ("a number of seconds > 0 (or None)", _seconds_or_none),
    "health_check_interval": (
        "a number of seconds >= 0",
        lambda v: v == 0 or _seconds(v),
    ),
    "socket_read_size": ("an int >= 1", _count_at_least(1)),
    "max_connections": ("an int >= 1 (or None)", lambda v: v is None or _count_at_least(1)(v)),
    "db": ("an int >= 0", _count_at_least(0)),
    "protocol": ("2 or 3 (RESP2 or RESP3)", lambda v: v is None or v in (2, 3, "2", "3")),
    "username": ("a str", _text_or_none),
    "password": ("a str", _text_or_none),
    "client_name": ("a str", _text_or_none),
    "ssl_password": ("a str", _text_or_none),
    "ssl_keyfile": ("a path (str)", _text_or_none),
    "ssl_certfile": ("a path (str)", _text_or_none),
    "ssl_ca_certs": ("a path (str)", _text_or_none),
    "ssl_ca_path": ("a path (str)", _text_or_none),
    "ssl_ciphers": ("a str", _text_or_none),
    "retry_on_timeout": ("a bool", _flag),
    "socket_keepalive": ("a bool", lambda v: v is None or _flag(v)),
    "ssl_check_hostname": ("a bool", _flag),
    "single_connection_client": ("a bool", _flag),
    "require_full_coverage": ("a bool", _flag),
    "read_from_replicas": ("a bool", _flag),
    "dynamic_startup_nodes": ("a bool", _flag),
}


def _check_values(options: dict[str, Any], url: StoreURL) -> None:
    """Refuse option values of the wrong kind, from the URL (typed by redis-py) or keywords."""
    for name, value in options.items():
        rule = _VALUES.get(name)
        if rule is None or rule[1](value):
            continue
        shown = MASK if is_secret_option(name) else repr(value)
        raise InvalidURLError(f"option {name!r} for {url.redacted} must be {rule[0]}, not {shown}")


def standalone_url(url: StoreURL, keywords: dict[str, Any]) -> StoreURL:
    """``url`` of a single server with its client options checked and the keywords merged."""
    _check_names(keywords, url.backend_query, url, _STANDALONE_OPTIONS)
    _check_values({**url.client_options, **keywords}, url)
    merged = {**_DEFAULTS, **client_defaults(), **url.client_options, **keywords, **_FIXED}
    return dataclasses.replace(url, client_options=merged)


def cluster_url(url: StoreURL, keywords: dict[str, Any]) -> StoreURL:
    """``url`` of a cluster with its client options checked and the keywords merged.

    ``topology_wait_ms`` (URL or keyword) is the backend's own option, kept
    apart in ``backend_options``.
    """
    keywords = dict(keywords)
    from_url = {**url.client_options}
    wait: object = keywords.pop("topology_wait_ms", from_url.pop("topology_wait_ms", None))
    query = [name for name in url.backend_query if name != "topology_wait_ms"]
    _check_names(keywords, query, url, _CLUSTER_OPTIONS)
    _check_values({**from_url, **keywords}, url)
    wait_ms = (
        DEFAULT_TOPOLOGY_WAIT_MS
        if wait is None
        else store_option("topology_wait_ms", wait, lambda v: check_wait_ms(v, "topology_wait_ms"))
    )
    merged = {**_DEFAULTS, **client_defaults(), **from_url, **keywords, **_FIXED}
    return dataclasses.replace(
        url, client_options=merged, backend_options={"topology_wait_ms": wait_ms}
    )


# Options of redis-py's single-node client that a per-node connection of a
# cluster backend (enumeration, pub/sub) inherits from the cluster's options.
_NODE_OPTIONS = _STANDALONE_OPTIONS - {
    "db",
    "single_connection_client",
    "retry",
    "retry_on_error",
    "retry_on_timeout",
    "redis_connect_func",
} | {"ssl", *_FIXED}


def node_options(cluster_options: dict[str, Any]) -> dict[str, Any]:
    """What a client of one cluster node takes from the cluster client's options."""
    return {name: value for name, value in cluster_options.items() if name in _NODE_OPTIONS}
