"""The front door: ``open_store(url, tenant=...)`` and its URL scheme table.

Store options may be given as keyword arguments or as URL query parameters
(keywords win); every other query parameter and keyword goes to the backend
(for Redis: redis-py's connection options such as ``socket_timeout``).

========== ================= ===================================================
option     default           meaning
========== ================= ===================================================
prefix     ``tkv``           app prefix in front of every tenant namespace
count      ``1000``          keys visited per enumeration command (SCAN COUNT)
index      ``false``         keep a per-tenant key index (``1``/``true``/``yes``/``on``
                             or ``0``/``false``/``no``/``off`` in a URL): listing
                             and counting cost what the tenant holds, not the
                             keyspace; memory and Redis >= 7.0 backends
shards     ``1``             spread each tenant over N hash-tagged shards (1-100),
                             i.e. N Redis Cluster slots, each shard with its own
                             key index when ``index`` is on; see tenantkv.namespace
========== ================= ===================================================

Backend option of ``redis+cluster://``: ``topology_wait_ms`` (default 10000),
how long an enumeration waits for a failover or slot migration to settle
before it raises ``TopologyChangedError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from .backends.base import Backend
from .backends.cluster import RedisClusterBackend
from .backends.keyindex import IndexingBackend, ShardedKeyWriter, shard_index_keys
from .backends.memory import MemoryBackend, MemoryKeyspace
from .backends.redis import RedisBackend
from .enumeration import IndexEnumerator, ScanEnumerator
from .errors import InvalidURLError, InvalidValueError
from .namespace import DEFAULT_PREFIX, Namespace, validate_shards, validate_tenant
from .store import DEFAULT_COUNT, TenantStore, check_count

__all__ = ["SCHEMES", "StoreURL", "open_store", "parse_url", "redact_url"]

DEFAULT_URL = "memory://"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to log or show).

    Both places a password can be given are masked: ``user:password@host``
    and a ``password=`` query parameter (which redis-py accepts too).
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    if parts.query:
        fields = parts.query.split("&")
        for i, field in enumerate(fields):
            name, equals, _ = field.partition("=")
            if equals and unquote_plus(name).lower() == "password":
                fields[i] = f"{name}=***"
        parts = parts._replace(query="&".join(fields))
    return urlunsplit(parts)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL: the backend part and the options found in its query."""

    #: Lower-cased scheme, one of :data:`SCHEMES`.
    scheme: str
    #: The URL without tenantkv's own options (what the backend receives).
    url: str
    #: ``url`` with any password replaced, safe for messages and logs.
    redacted: str
    #: tenantkv's own options found in the query (``prefix``, ``count``, ``index``, ``shards``).
    store_options: dict[str, str]
    #: Every other query parameter (the backend's).
    backend_query: dict[str, str]


BackendFactory = Callable[[StoreURL, dict[str, Any]], Awaitable[Backend]]


async def _open_memory(url: StoreURL, options: dict[str, Any]) -> Backend:
    if options or url.backend_query:
        unknown = sorted({*options, *url.backend_query})
        raise InvalidURLError(f"memory:// takes no backend options, got {unknown}")
    parts = urlsplit(url.url)
    name = parts.netloc + parts.path
    return MemoryBackend(MemoryKeyspace.shared(name), url=url.redacted)


async def _answering(backend: Backend) -> Backend:
    """``backend`` once it has answered a PING; closed again if it does not."""
    try:
        await backend.ping()
    except BaseException:
        await backend.aclose()
        raise
    return backend


async def _open_redis(url: StoreURL, options: dict[str, Any]) -> Backend:
    options.setdefault("socket_connect_timeout", 5.0)
    backend = RedisBackend.from_url(url.url, redacted_url=url.redacted, **options)
    return await _answering(backend)


async def _open_redis_cluster(url: StoreURL, options: dict[str, Any]) -> Backend:
    options.setdefault("socket_connect_timeout", 5.0)
    backend = RedisClusterBackend.from_url(url.url, redacted_url=url.redacted, **options)
    return await _answering(backend)


#: URL scheme -> backend factory. A new backend is one module plus one line here.
SCHEMES: dict[str, BackendFactory] = {
    "memory": _open_memory,
    "redis": _open_redis,
    "rediss": _open_redis,
    "redis+cluster": _open_redis_cluster,
    "rediss+cluster": _open_redis_cluster,
}

_STORE_OPTIONS = ("prefix", "count", "index", "shards")


def parse_url(url: object) -> StoreURL:
    """Split a store URL into its backend part and tenantkv's options, without connecting.

    Raises :class:`~tenantkv.errors.InvalidURLError` (password redacted) for a
    non-string, an unparsable URL, a bad port or an unknown scheme. Option
    values are checked later, by :func:`open_store`.
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"store URL must be a str, not {type(url).__name__}")
    redacted = redact_url(url)
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # host lists (redis+cluster://) are checked by the backend
            parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidURLError(f"cannot parse store URL {redacted}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise InvalidURLError(f"unknown scheme in store URL {redacted}: use one of {known}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    backend_query = {k: v for k, v in query.items() if k not in _STORE_OPTIONS}
    backend_url = urlunsplit(parts._replace(query=urlencode(backend_query)))
    store_query = {k: v for k, v in query.items() if k in _STORE_OPTIONS}
    return StoreURL(scheme, backend_url, redact_url(backend_url), store_query, backend_query)


def _count_option(value: object) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidURLError(f"count must be a positive integer, not {value!r}") from None
    return check_count(value)


def _shards_option(value: object) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidURLError(f"shards must be an integer, not {value!r}") from None
    try:
        return validate_shards(value)
    except InvalidValueError as exc:
        raise InvalidURLError(str(exc)) from exc


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _index_option(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise InvalidURLError(f"index must be a boolean (true/false, 1/0), not {value!r}")


async def _indexed_store(backend: Backend, namespace: Namespace, count: int) -> TenantStore:
    """A store whose writes keep the tenant's key index and whose listing reads it.

    A sharded tenant has one index per shard, in that shard's slot; its
    writes go through a :class:`ShardedKeyWriter` to the index of their key's shard.
    """
    if not isinstance(backend, IndexingBackend):
        raise InvalidURLError(f"the backend of {backend.url} cannot keep a key index (index=true)")
    indexes = [backend.key_index(keys) for keys in shard_index_keys(namespace)]
    # Every shard's index lives on the same backend and runs the same
    # scripts: checking (and loading) them once is enough.
    await indexes[0].prepare()
    enumerator = IndexEnumerator(indexes, backend, namespace)
    writer = indexes[0] if len(indexes) == 1 else ShardedKeyWriter(indexes, namespace)
    return TenantStore(backend, namespace, enumerator, count=count, writer=writer)


async def _open(url: object, tenant: object, options: dict[str, Any]) -> TenantStore:
    validate_tenant(tenant)
    assert isinstance(tenant, str)
    parsed = parse_url(url)
    merged: dict[str, Any] = dict(parsed.store_options)
    merged.update({k: options.pop(k) for k in _STORE_OPTIONS if k in options})
    shards = _shards_option(merged.get("shards", 1))
    namespace = Namespace(tenant, merged.get("prefix", DEFAULT_PREFIX), shards)
    count = _count_option(merged.get("count", DEFAULT_COUNT))
    indexed = _index_option(merged.get("index", False))
    backend = await SCHEMES[parsed.scheme](parsed, options)
    if not indexed:
        return TenantStore(backend, namespace, ScanEnumerator(backend, namespace), count=count)
    try:
        return await _indexed_store(backend, namespace, count)
    except BaseException:
        await backend.aclose()
        raise


class StoreOpener:
    """What :func:`open_store` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, url: object, tenant: object, options: dict[str, Any]) -> None:
        self._args = (url, tenant, options)
        self._store: TenantStore | None = None

    def __await__(self) -> Generator[Any, None, TenantStore]:
        return _open(*self._args).__await__()

    async def __aenter__(self) -> TenantStore:
        self._store = await _open(*self._args)
        return self._store

    async def __aexit__(self, *exc_info: object) -> None:
        if self._store is not None:
            await self._store.aclose()


def open_store(url: str = DEFAULT_URL, *, tenant: str, **options: Any) -> StoreOpener:
    """Open the store of ``tenant`` at ``url``.

    ``async with open_store("redis://localhost:6379/0", tenant="shop-1") as store: ...``
    or ``store = await open_store(...)`` and later ``await store.aclose()``.

    Schemes: ``memory://[name]`` (in-process, shared by name within the
    process), ``redis://`` and ``rediss://`` (user, password, db and TLS from
    the URL), ``redis+cluster://[user:password@]host:port[,host:port...]`` and
    ``rediss+cluster://`` (Redis Cluster; any reachable startup node will do).
    Options: see the module docstring. Raises
    :class:`~tenantkv.errors.InvalidTenantError`,
    :class:`~tenantkv.errors.InvalidURLError`, or
    :class:`~tenantkv.errors.BackendUnavailableError` when the server does not
    answer.
    """
    return StoreOpener(url, tenant, dict(options))
