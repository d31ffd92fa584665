"""The front door: ``open_store(url, tenant=...)``; ``parse_url`` checks without connecting.

Store options may be given as keyword arguments or as URL query parameters
(keywords win); every other query parameter and keyword goes to the backend
(for Redis: redis-py's connection options such as ``socket_timeout``).
A bad option value raises :class:`~tenantkv.errors.InvalidURLError` naming
the option, however it was given (:mod:`tenantkv.validation`).

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

import dataclasses
from collections.abc import Generator
from typing import Any, Protocol

from .backends.base import Backend
from .backends.memory import MemoryBackend
from .backends.redis import RedisBackend, RedisClusterBackend
from .enumeration import ScanEnumerator
from .index import attach_index, existing_index_writer
from .namespace import DEFAULT_PREFIX, Namespace
from .store import TenantStore
from .urls import DEFAULT_COUNT, STORE_OPTIONS, BackendKind, StoreOptions, StoreURL, split_url
from .validation import (
    check_bool_option,
    check_count,
    check_prefix,
    check_shards,
    check_tenant,
    store_option,
)

__all__ = ["open_store", "parse_url"]

DEFAULT_URL = "memory://"


class BackendClass(Protocol):
    """How the front door makes a backend of one kind from a parsed URL."""

    @staticmethod
    def prepare(url: StoreURL, options: dict[str, Any]) -> StoreURL:
        """``url`` with the backend's options checked and the keywords merged (no I/O)."""
        ...

    @classmethod
    def create(cls, url: StoreURL) -> Backend:
        """A backend for a prepared ``url`` (no I/O yet)."""
        ...


#: Backend kind (what a scheme of :data:`tenantkv.urls.SCHEMES` selects) -> backend class.
BACKENDS: dict[BackendKind, BackendClass] = {
    "memory": MemoryBackend,
    "redis": RedisBackend,
    "cluster": RedisClusterBackend,
}


def _store_options(given: dict[str, Any]) -> StoreOptions:
    return StoreOptions(
        prefix=check_prefix(given.get("prefix", DEFAULT_PREFIX)),
        count=store_option("count", given.get("count", DEFAULT_COUNT), check_count),
        index=store_option(
            "index",
            given.get("index", False),
            lambda value: check_bool_option(value, "index"),
            integer=False,
        ),
        shards=store_option("shards", given.get("shards", 1), check_shards),
    )


def parse_url(url: object, **options: Any) -> StoreURL:
    """Parse a store URL and check every option (URL query and ``options``), without connecting.

    What :func:`open_store` does before it connects: the result holds the
    checked store options (:attr:`StoreURL.options`, keywords over the
    query's) and the backend's checked client options. ``url`` may also be a
    :class:`StoreURL` parsed before: without ``options`` it is returned as it
    is, with them it is parsed again as if they had been given the first time
    too (the new ones win). Raises
    :class:`~tenantkv.errors.InvalidURLError` (password redacted) for a
    non-string, an unparsable URL, a bad port or database, an unknown scheme,
    or an unknown or bad option, and
    :class:`~tenantkv.errors.InvalidTenantError` for a bad ``prefix``.
    """
    given: dict[str, Any]
    if isinstance(url, StoreURL):
        if not options:
            return url
        parsed = dataclasses.replace(split_url(url.url), store_options=url.store_options)
        given = dataclasses.asdict(url.options)
        options = {**url.keywords, **options}
    else:
        parsed = split_url(url)
        given = dict(parsed.store_options)
    given.update({name: options.pop(name) for name in STORE_OPTIONS if name in options})
    store = _store_options(given)
    prepared = BACKENDS[parsed.backend].prepare(parsed, options)
    return dataclasses.replace(prepared, options=store, keywords=options)


async def _answering(backend: Backend) -> Backend:
    """``backend`` once it has answered a PING; closed again if it does not."""
    try:
        await backend.ping()
    except BaseException:
        await backend.aclose()
        raise
    return backend


async def _open(url: object, tenant: object, options: dict[str, Any]) -> TenantStore:
    checked_tenant = check_tenant(tenant)
    parsed = parse_url(url, **options)
    settings = parsed.options
    namespace = Namespace(checked_tenant, settings.prefix, settings.shards)
    backend = await _answering(BACKENDS[parsed.backend].create(parsed))
    try:
        if not settings.index:
            # Writes keep the tenant's index true if indexed stores made one.
            writer = await existing_index_writer(backend, namespace)
            enumerator = ScanEnumerator(backend, namespace)
            return TenantStore(backend, namespace, enumerator, count=settings.count, writer=writer)
        index = await attach_index(backend, namespace)
    except BaseException:
        await backend.aclose()
        raise
    return TenantStore(
        backend, namespace, index.enumerator, count=settings.count, writer=index.writer
    )


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


def open_store(url: str | StoreURL = DEFAULT_URL, *, tenant: str, **options: Any) -> StoreOpener:
    """Open the store of ``tenant`` at ``url``.

    ``async with open_store("redis://localhost:6379/0", tenant="shop-1") as store: ...``
    or ``store = await open_store(...)`` and later ``await store.aclose()``.

    Schemes: ``memory://[name]`` (in-process, shared by name within the
    process), ``redis://`` and ``rediss://`` (user, password, db and TLS from
    the URL), ``redis+cluster://[user:password@]host:port[,host:port...]`` and
    ``rediss+cluster://`` (Redis Cluster; any reachable startup node will do).
    ``url`` may also be a :class:`~tenantkv.StoreURL` from :func:`parse_url`.
    Options: see the module docstring. Raises
    :class:`~tenantkv.errors.InvalidTenantError`,
    :class:`~tenantkv.errors.InvalidURLError`, or
    :class:`~tenantkv.errors.BackendUnavailableError` when the server does not
    answer.
    """
    return StoreOpener(url, tenant, dict(options))
