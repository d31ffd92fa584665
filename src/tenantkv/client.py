"""One client for many tenants: a service's connections, shared by every tenant's store.

A multi-tenant service opens one :class:`TenantClient` per Redis (or
cluster) and asks it for a store per tenant, per request if it likes::

    async with tenantkv.open_client("redis://localhost:6379/0") as client:
        store = await client.store("buyer-app.example.com", index=True)
        await store.set("search:txn-1", {...}, ttl_ms=30_000)

The client owns the backend: its connection pool (bounded by redis-py's
``max_connections``) and one pub/sub connection per server, whatever the
number of tenants. A store it makes holds no connection of its own, so
making one costs no server call after the first for its tenant (what the
first call learns, whether the tenant has a key index and whether the server
can keep one, is remembered). What the backend learns of the server's cost
per key (which sizes every enumeration command, :mod:`tenantkv.pacing`) is
shared by all its stores, whatever their ``budget_ms``. Closing the client
closes every store it made; closing such a store ends only its own
subscriptions.

:func:`tenantkv.open_store` is the one-tenant shorthand: a client with one
store, closed with it.
"""

from __future__ import annotations

import asyncio
import weakref

from .backends.base import Backend
from .enumeration import ScanEnumerator
from .errors import PermissionDeniedError, StoreClosedError
from .index import attach_index, existing_index_writer
from .index.protocols import KeyWriter
from .namespace import Namespace
from .store import TenantStore
from .urls import StoreOptions, StoreURL
from .validation import (
    check_bool_option,
    check_budget_ms,
    check_count,
    check_prefix,
    check_shards,
    check_tenant,
)

__all__ = ["TenantClient"]

#: What identifies a tenant's data: its namespace (app prefix, tenant, shards).
_NamespaceKey = tuple[str, str, int]


class TenantClient:
    """Connections to one Redis (or cluster, or memory keyspace), shared by many tenants' stores.

    Make one with :func:`tenantkv.open_client`; make stores with :meth:`store`.
    """

    def __init__(self, backend: Backend, url: StoreURL) -> None:
        self._backend = backend
        self._url = url
        self._stores: weakref.WeakSet[TenantStore] = weakref.WeakSet()
        # Per namespace: the writer a store without the index uses (the tenant's
        # index writer if it has an index, else the backend), found once.
        self._plain_writers: dict[_NamespaceKey, asyncio.Future[KeyWriter]] = {}
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"TenantClient(url={self._url.redacted!r}, stores={len(self._stores)}, {state})"

    @property
    def url(self) -> str:
        """The client's URL, without password."""
        return self._backend.url

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def defaults(self) -> StoreOptions:
        """The store options a :meth:`store` call does not give (from the URL and keywords)."""
        return self._url.options

    async def store(
        self,
        tenant: str,
        *,
        index: bool | None = None,
        shards: int | None = None,
        prefix: str | None = None,
        count: int | None = None,
        budget_ms: float | None = None,
    ) -> TenantStore:
        """The store of ``tenant`` on this client's connections.

        Options left ``None`` take the client's defaults (:attr:`defaults`).
        The first store of a tenant may make a server call or two (is there an
        index? can this server keep one?); later ones make none. Raises
        :class:`~tenantkv.errors.InvalidTenantError`,
        :class:`~tenantkv.errors.InvalidValueError` for a bad option,
        :class:`~tenantkv.errors.EvictionPolicyError` for ``index=True`` on a
        server that may evict the index, or
        :class:`~tenantkv.errors.StoreClosedError` once the client is closed.
        """
        self._check_open()
        defaults = self._url.options
        namespace = Namespace(
            check_tenant(tenant),
            defaults.prefix if prefix is None else check_prefix(prefix),
            defaults.shards if shards is None else check_shards(shards),
        )
        per_call = defaults.count if count is None else check_count(count)
        budget = defaults.budget_ms if budget_ms is None else check_budget_ms(budget_ms)
        indexed = defaults.index if index is None else check_bool_option(index, "index")
        if indexed:
            attached = await attach_index(self._backend, namespace, budget_ms=budget)
            # A store without the index of this tenant, made later, writes through it.
            self._plain_writers[_key(namespace)] = _done(attached.writer)
            store = TenantStore(
                self._backend,
                namespace,
                attached.enumerator,
                count=per_call,
                writer=attached.writer,
            )
        else:
            writer = await self._plain_writer(namespace)
            enumerator = ScanEnumerator(self._backend, namespace, budget_ms=budget)
            store = TenantStore(self._backend, namespace, enumerator, count=per_call, writer=writer)
        self._stores.add(store)
        return store

    async def _plain_writer(self, namespace: Namespace) -> KeyWriter:
        key = _key(namespace)
        found = self._plain_writers.get(key)
        if found is None:
            found = asyncio.ensure_future(self._find_plain_writer(namespace))
            self._plain_writers[key] = found
        try:
            return await asyncio.shield(found)
        except BaseException:
            if found.done() and (found.cancelled() or found.exception() is not None):
                self._plain_writers.pop(key, None)  # ask the server again next time
            raise

    async def _find_plain_writer(self, namespace: Namespace) -> KeyWriter:
        try:
            writer = await existing_index_writer(self._backend, namespace)
        except PermissionDeniedError:
            # These credentials may not read the tenant's keys (an ACL user of
            # another tenant): no index can be kept true by them anyway, and
            # each call will be refused on its own.
            return self._backend
        return self._backend if writer is None else writer

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the client for {self._backend.url} is closed")

    async def aclose(self) -> None:
        """Close every store this client made, then its connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for store in list(self._stores):
            await store.aclose()
        for found in self._plain_writers.values():
            found.cancel()
        await self._backend.aclose()

    async def __aenter__(self) -> TenantClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _key(namespace: Namespace) -> _NamespaceKey:
    return (namespace.prefix, namespace.tenant, namespace.shards)


def _done(writer: KeyWriter) -> asyncio.Future[KeyWriter]:
    future: asyncio.Future[KeyWriter] = asyncio.get_running_loop().create_future()
    future.set_result(writer)
    return future
