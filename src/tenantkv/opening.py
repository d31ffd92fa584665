"""The front door: ``open_client(url)``, ``open_store(url, tenant=...)``, and ``parse_url``.

Store options may be given as keyword arguments or as URL query parameters
(keywords win); every other query parameter and keyword goes to the backend
(for Redis: redis-py's connection options such as ``socket_timeout``).
A bad option value raises :class:`~tenantkv.errors.InvalidURLError` naming
the option, however it was given (:mod:`tenantkv.validation`).

========== ================= ===================================================
option     default           meaning
========== ================= ===================================================
prefix     ``tkv``           app prefix in front of every tenant namespace
count      none              most keys one enumeration command visits (SCAN
                             COUNT, index chunk, a clear's page); without it
                             the time budget alone sizes each command
budget_ms  ``1``             target server time of each enumeration or clear
                             command, in ms (a number > 0, ``0.5`` too): the
                             COUNT is adapted to what the server reports per
                             key, aiming the mean at half of it so that 99 %
                             stay under it (tenantkv.pacing)
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
from .client import TenantClient
from .namespace import DEFAULT_PREFIX
from .pacing import DEFAULT_BUDGET_MS
from .store import TenantStore
from .urls import STORE_OPTIONS, BackendKind, StoreOptions, StoreURL, split_url
from .validation import (
    check_bool_option,
    check_budget_ms,
    check_count,
    check_prefix,
    check_shards,
    check_tenant,
    store_option,
)

__all__ = ["ClientOpener", "StoreOpener", "connect", "open_client", "open_store", "parse_url"]

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
        count=None
        if given.get("count") is None
        else store_option("count", given["count"], check_count),
        budget_ms=store_option(
            "budget_ms", given.get("budget_ms", DEFAULT_BUDGET_MS), check_budget_ms, integer=False
        ),
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


async def connect(url: StoreURL) -> Backend:
    """The backend of a parsed ``url``, once it has answered a PING (closed again if not)."""
    backend = BACKENDS[url.backend].create(url)
    try:
        await backend.ping()
    except BaseException:
        await backend.aclose()
        raise
    return backend


async def _open_client(url: object, options: dict[str, Any]) -> TenantClient:
    parsed = parse_url(url, **options)
    return TenantClient(await connect(parsed), parsed)


class ClientOpener:
    """What :func:`open_client` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, url: object, options: dict[str, Any]) -> None:
        self._args = (url, options)
        self._client: TenantClient | None = None

    def __await__(self) -> Generator[Any, None, TenantClient]:
        return _open_client(*self._args).__await__()

    async def __aenter__(self) -> TenantClient:
        self._client = await _open_client(*self._args)
        return self._client

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()


def open_client(url: str | StoreURL = DEFAULT_URL, **options: Any) -> ClientOpener:
    """Open a client of ``url`` whose stores serve many tenants on shared connections.

    ``async with open_client("redis://localhost:6379/0") as client:`` then
    ``store = await client.store("shop-1")``; or ``client = await open_client(...)``
    and later ``await client.aclose()``. URL and options are those of
    :func:`open_store`; its store options (``prefix``, ``count``, ``budget_ms``,
    ``index``, ``shards``) become the defaults of :meth:`~tenantkv.TenantClient.store`.
    See :mod:`tenantkv.client`. Raises
    :class:`~tenantkv.errors.InvalidURLError`, or
    :class:`~tenantkv.errors.BackendUnavailableError` when the server does not
    answer.
    """
    return ClientOpener(url, dict(options))


async def _open_store(url: object, tenant: object, options: dict[str, Any]) -> TenantStore:
    check_tenant(tenant)
    client = await _open_client(url, options)
    try:
        store = await client.store(str(tenant))
    except BaseException:
        await client.aclose()
        raise
    store.on_close(client.aclose)
    return store


class StoreOpener:
    """What :func:`open_store` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, url: object, tenant: object, options: dict[str, Any]) -> None:
        self._args = (url, tenant, options)
        self._store: TenantStore | None = None

    def __await__(self) -> Generator[Any, None, TenantStore]:
        return _open_store(*self._args).__await__()

    async def __aenter__(self) -> TenantStore:
        self._store = await _open_store(*self._args)
        return self._store

    async def __aexit__(self, *exc_info: object) -> None:
        if self._store is not None:
            await self._store.aclose()


def open_store(url: str | StoreURL = DEFAULT_URL, *, tenant: str, **options: Any) -> StoreOpener:
    """Open the store of ``tenant`` at ``url`` (one tenant's shorthand for :func:`open_client`).

    ``async with open_store("redis://localhost:6379/0", tenant="shop-1") as store: ...``
    or ``store = await open_store(...)`` and later ``await store.aclose()``,
    which closes its connections too.

    Schemes: ``memory://[name]`` (in-process, shared by name within the
    process), ``redis://`` and ``rediss://`` (user, password, db and TLS from
    the URL), ``redis+cluster://[user:password@]host:port[,host:port...]`` and
    ``rediss+cluster://`` (Redis Cluster; any reachable startup node will do).
    ``url`` may also be a :class:`~tenantkv.StoreURL` from :func:`parse_url`.
    Options: see the module docstring. Raises
    :class:`~tenantkv.errors.InvalidTenantError`,
    :class:`~tenantkv.errors.InvalidURLError`,
    :class:`~tenantkv.errors.EvictionPolicyError` (``index=True`` on a server
    that may evict the index), or
    :class:`~tenantkv.errors.BackendUnavailableError` when the server does not
    answer.
    """
    return StoreOpener(url, tenant, dict(options))
