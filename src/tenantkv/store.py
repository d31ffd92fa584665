"""The tenant-scoped store: the object users hold.

:class:`TenantStore` validates every argument, applies the tenant namespace
once, encodes values as JSON, and only then calls its backend, so a rejected
call writes nothing. Listing, counting and clearing go through the store's
enumeration strategy (:mod:`tenantkv.enumeration`); every write goes
through its writer: the backend itself, or, with the key index on, the
backend's index, which changes data and index together.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import codec, migration, telemetry
from .backends.base import Backend, Subscription
from .batch import Batch
from .enumeration.base import KeyEnumerator
from .errors import DecodeError, IndexNotEnabledError, StoreClosedError, WrongTypeError
from .index.enumerator import DEFAULT_MAX_REPORTED, IndexEnumerator, IndexReport
from .index.protocols import KeyWriter
from .migration import DEFAULT_MAX_LIST_ITEMS, MigrationReport
from .namespace import Namespace
from .progress import ProgressCallback, ProgressMeter
from .validation import (
    check_bool_option,
    check_callback,
    check_count,
    check_key,
    check_key_list,
    check_list_index,
    check_mapping,
    check_ttl,
)

__all__ = ["LIST_SLICE", "KeyInfo", "StoreStats", "TenantStore", "TenantSubscription"]

#: How many list items ``list_get_all`` reads per LRANGE.
LIST_SLICE = 1000


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What :meth:`TenantStore.inspect` found under one key."""

    key: str
    #: ``value``, ``list`` or ``missing``.
    kind: str
    #: Remaining time to live in ms; ``None`` without TTL (or missing).
    ttl_ms: int | None
    #: Bytes stored: the value's, or the first list items' shown.
    size_bytes: int
    #: A list's length (1 for a value, 0 when missing).
    length: int
    #: The decoded value, or the first items of a list.
    value: Any
    #: Whether the stored bytes were JSON (else ``value`` holds them, decoded leniently).
    json: bool = True


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What :meth:`TenantStore.stats` reports."""

    tenant: str
    #: Keys the tenant holds now (expired keys excluded).
    keys: int
    #: Subscriptions open through this store and still subscribed.
    subscriptions: int


class TenantStore:
    """One tenant's view of a key-value store.

    Keys are ``str`` relative to the tenant; values are anything JSON can
    encode; TTLs are integer milliseconds. Open one with
    :func:`tenantkv.open_store`.

    ``writer`` receives every write (default: ``backend``); an indexed store
    gets the backend's key index as writer and an
    :class:`~tenantkv.index.IndexEnumerator` over the same index.
    """

    def __init__(
        self,
        backend: Backend,
        namespace: Namespace,
        enumerator: KeyEnumerator,
        *,
        count: int | None = None,
        writer: KeyWriter | None = None,
    ) -> None:
        self._backend = backend
        self._namespace = namespace
        self._enumerator = enumerator
        self._writer: KeyWriter = backend if writer is None else writer
        self._count = None if count is None else check_count(count)
        self._closed = False
        self._subscriptions: set[TenantSubscription] = set()
        self._on_close: list[Callable[[], Awaitable[None]]] = []

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"TenantStore(tenant={self.tenant!r}, url={self._backend.url!r}, "
            f"enumerator={self._enumerator!r}, count={self._count}, {state})"
        )

    @property
    def tenant(self) -> str:
        return self._namespace.tenant

    @property
    def namespace(self) -> Namespace:
        return self._namespace

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def url(self) -> str:
        """The store's URL, without password."""
        return self._backend.url

    @property
    def budget_ms(self) -> float:
        """Target server time of each enumeration or clear command, in ms."""
        return self._enumerator.budget_ms

    @property
    def strategy(self) -> str:
        """How the store lists, counts and clears: ``"scan"`` or ``"index"``."""
        return self._enumerator.strategy

    @property
    def count(self) -> int | None:
        """Most keys one enumeration command visits when a call gives no ``count``
        (``None``: the time budget alone decides)."""
        return self._count

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store for tenant {self.tenant!r} is closed")

    def _key(self, key: object, what: str = "key") -> str:
        self._check_open()
        return self._namespace.key(check_key(key, what))

    # -- lifecycle --------------------------------------------------------
    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`aclose` await ``callback`` (``open_store``: close the store's client)."""
        self._on_close.append(callback)

    async def aclose(self) -> None:
        """Close the store: its subscriptions end (``StoreClosedError``), later calls raise
        :class:`~tenantkv.errors.StoreClosedError`. Idempotent. A store of
        :func:`~tenantkv.open_store` closes its connections too; one of a
        :class:`~tenantkv.TenantClient` leaves the client's to the client."""
        if self._closed:
            return
        self._closed = True
        closed = StoreClosedError(f"the store for tenant {self.tenant!r} was closed")
        for subscription in list(self._subscriptions):
            await subscription._end(closed)
        for callback in self._on_close:
            await callback()

    async def __aenter__(self) -> TenantStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- values -----------------------------------------------------------
    async def set(self, key: str, value: Any, *, ttl_ms: int | None = None) -> None:
        """Store ``value`` under ``key``; with ``ttl_ms`` it expires after that many ms.

        Value and TTL are written by one command. Overwriting a key without
        ``ttl_ms`` removes any TTL it had (as Redis ``SET`` does).
        """
        physical = self._key(key)
        ttl = None if ttl_ms is None else check_ttl(ttl_ms)
        await self._writer.set(physical, codec.encode(value), ttl)

    async def get(self, key: str) -> Any:
        """The value under ``key``, or ``None`` when it is missing or expired.

        Raises :class:`~tenantkv.errors.WrongTypeError` when the key holds a
        list and :class:`~tenantkv.errors.DecodeError` when it holds bytes
        that are not JSON.
        """
        physical = self._key(key)
        raw = await self._backend.get(physical)
        return None if raw is None else codec.decode(raw, key=key)

    async def get_many(self, keys: Iterable[str]) -> list[Any]:
        """Values of ``keys`` in order (``None`` for missing ones), in one round trip."""
        self._check_open()
        names = check_key_list(keys, "get_many")
        physical = [self._namespace.key(key) for key in names]
        raws = await self._backend.get_many(physical)
        return [
            None if raw is None else codec.decode(raw, key=k)
            for k, raw in zip(names, raws, strict=True)
        ]

    async def set_many(self, mapping: Mapping[str, Any], *, ttl_ms: int | None = None) -> None:
        """Store every item of ``mapping`` (same TTL for all) in one round trip, all or none.

        For a tenant spread over several shards (``shards`` > 1), it is one
        call per shard, shards concurrently, all or none *per shard* on Redis
        Cluster and, with the key index, on a single Redis server too.
        """
        ttl = None if ttl_ms is None else check_ttl(ttl_ms)
        items = [
            (self._key(key), codec.encode(value))
            for key, value in check_mapping(mapping, "set_many").items()
        ]
        await self._writer.set_many(items, ttl)

    async def delete(self, key: str) -> bool:
        """Delete ``key`` (value or list); true when it existed."""
        return await self._writer.delete(self._key(key))

    async def exists(self, key: str) -> bool:
        return await self._backend.exists(self._key(key))

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        """Make ``key`` expire ``ttl_ms`` ms from now; false when it does not exist."""
        physical = self._key(key)
        return await self._writer.set_ttl(physical, check_ttl(ttl_ms))

    async def get_ttl(self, key: str) -> int | None:
        """Remaining time to live in ms; ``None`` when the key is missing or has no TTL."""
        return await self._backend.get_ttl(self._key(key))

    async def inspect(self, key: str, *, items: int = 10) -> KeyInfo:
        """What ``key`` holds, for a person to look at: type, TTL, size and decoded value
        (a list's first ``items`` items and its length). Never raises on bytes that are
        not JSON (they are shown as text); two or three commands."""
        physical = self._key(key)
        shown = check_count(items, "items")
        ttl = await self._backend.get_ttl(physical)
        try:
            raw = await self._backend.get(physical)
        except WrongTypeError:
            length = await self._backend.list_length(physical)
            head = await self._backend.list_range(physical, 0, shown - 1)
            values = [_lenient(item, key) for item in head]
            return KeyInfo(
                key,
                "list",
                ttl,
                sum(len(item) for item in head),
                length,
                [value for value, _ in values],
                all(ok for _, ok in values),
            )
        if raw is None:
            return KeyInfo(key, "missing", None, 0, 0, None)
        value, ok = _lenient(raw, key)
        return KeyInfo(key, "value", ttl, len(raw), 1, value, ok)

    # -- lists ------------------------------------------------------------
    async def list_push(self, key: str, value: Any, *, ttl_ms: int | None = None) -> int:
        """Append ``value`` to the list at ``key`` (created if missing); the new length.

        With ``ttl_ms`` the list expires that many ms from now, set (or
        refreshed) in the same atomic step; without, it keeps the TTL it had.
        """
        physical = self._key(key)
        ttl = None if ttl_ms is None else check_ttl(ttl_ms)
        return await self._writer.list_push(physical, codec.encode(value), ttl)

    async def list_range(self, key: str, start: int, stop: int) -> list[Any]:
        """Items ``start`` to ``stop`` inclusive; negative indexes count from the end."""
        physical = self._key(key)
        first, last = check_list_index(start, "start"), check_list_index(stop, "stop")
        raws = await self._backend.list_range(physical, first, last)
        return [codec.decode(raw, key=key) for raw in raws]

    async def list_get_all(self, key: str, *, slice_size: int = LIST_SLICE) -> list[Any]:
        """Every item of the list, read ``slice_size`` items per command (never one huge LRANGE)."""
        physical = self._key(key)
        size = check_count(slice_size, "slice_size")
        items: list[Any] = []
        start = 0
        while True:
            raws = await self._backend.list_range(physical, start, start + size - 1)
            items.extend(codec.decode(raw, key=key) for raw in raws)
            if len(raws) < size:
                return items
            start += size

    async def list_length(self, key: str) -> int:
        return await self._backend.list_length(self._key(key))

    # -- batches ------------------------------------------------------------
    def batch(self) -> Batch:
        """Queue several calls and send them in one round trip, applied atomically.

        ``async with store.batch() as b: entry = b.get(k); b.set(...); b.publish(...)``;
        after the block, ``entry.value``. See :mod:`tenantkv.batch` for what is
        atomic where.
        """
        self._check_open()
        return Batch(self)

    # -- pub/sub ----------------------------------------------------------
    async def publish(self, channel: str, data: Any) -> int:
        """Send ``data`` (JSON) on the tenant's ``channel``; the subscriber connections reached."""
        physical = self._key(channel, "channel")
        return await self._backend.publish(physical, codec.encode(data))

    def subscribe(self, channel: str) -> TenantSubscription:
        """Subscribe to the tenant's ``channel``.

        Use as ``async with store.subscribe("updates") as sub: async for msg in sub: ...``;
        the subscription is confirmed by the server when the ``async with``
        is entered and removed when it is left.
        """
        physical = self._key(channel, "channel")
        return TenantSubscription(self._backend.subscribe(physical), channel, self._subscriptions)

    # -- enumeration ------------------------------------------------------
    def _pattern_and_count(self, pattern: object, count: object) -> tuple[str, int | None]:
        self._check_open()
        return check_key(pattern, "pattern"), self._per_call(count)

    async def iter_keys(
        self, pattern: str = "*", *, count: int | None = None
    ) -> AsyncGenerator[str, None]:
        """Stream the tenant's keys matching the Redis glob ``pattern``, each once.

        Each server command stays within the store's time budget
        (``budget_ms``) and visits at most ``count`` keys (default: the
        store's ``count``, if it was given one). Escape glob characters with
        :func:`tenantkv.escape_glob` to match them literally. Leaving the loop
        early closes the walk when this iterator is closed (at once with
        ``contextlib.aclosing``, else when it is collected).
        """
        checked, per_call = self._pattern_and_count(pattern, count)
        with self._operation("iter_keys", streaming=True) as record:
            batches = telemetry.instrumented(self._enumerator.batches(checked, per_call), record)
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    for key in batch:
                        yield key

    async def keys(self, pattern: str = "*", *, count: int | None = None) -> list[str]:
        """All matching keys as a list (use :meth:`iter_keys` for large tenants)."""
        checked, per_call = self._pattern_and_count(pattern, count)
        out: list[str] = []
        with self._operation("keys") as record:
            batches = self._enumerator.batches(checked, per_call)
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    out.extend(batch)
            record.keys = len(out)
        return out

    async def count_keys(self, pattern: str = "*", *, count: int | None = None) -> int:
        """How many keys match ``pattern``."""
        checked, per_call = self._pattern_and_count(pattern, count)
        with self._operation("count_keys") as record:
            record.keys = await self._enumerator.count(checked, per_call)
        return record.keys

    async def clear(
        self, *, count: int | None = None, progress: ProgressCallback | None = None
    ) -> int:
        """Delete every key of the tenant, in batches (each command within the time budget, at
        most ``count`` keys); how many were deleted.

        With the key index, "every key" is what the index lists (as for
        :meth:`keys`): run :meth:`reindex` first to include keys written
        behind the store's back. ``progress`` is called after each batch
        (:class:`~tenantkv.Progress`; with the index, its ``total`` is the
        indexed count).
        """
        _, per_call = self._pattern_and_count("*", count)
        meter = ProgressMeter("clear", check_callback(progress, "progress"))
        with self._operation("clear") as record:
            record.keys = await self._enumerator.clear(per_call, meter)
            # The ledger of a migration into this tenant describes keys now gone.
            await self._backend.unlink(migration.ledgers(self._namespace))
        return record.keys

    def _operation(
        self, name: str, *, streaming: bool = False
    ) -> contextlib.AbstractContextManager[telemetry.Operation]:
        return telemetry.operation(name, self.tenant, self.strategy, streaming=streaming)

    async def stats(self) -> StoreStats:
        """The tenant's key count and this store's open subscriptions."""
        keys = await self.count_keys()
        live = sum(1 for subscription in self._subscriptions if subscription.active)
        return StoreStats(self.tenant, keys, live)

    # -- key index (stores opened with index=True) ---------------------------
    def _index(self) -> IndexEnumerator:
        self._check_open()
        if not isinstance(self._enumerator, IndexEnumerator):
            raise IndexNotEnabledError(
                f"the store for tenant {self.tenant!r} was opened without the key index "
                "(open it with index=True or ?index=1)"
            )
        return self._enumerator

    async def reindex(
        self,
        *,
        count: int | None = None,
        max_reported: int = DEFAULT_MAX_REPORTED,
        progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Make the tenant's key index match its data; the drift found (and fixed).

        Adopts keys written behind the store's back (or before the index was
        turned on) and drops entries whose key was deleted behind its back.
        Never blocks the server: a SCAN of the namespace and a walk of the
        index, ``count`` keys per call, each page checked and repaired in one
        call. Raises :class:`~tenantkv.errors.IndexNotEnabledError` on a store
        without the index. ``progress`` is called after each page checked
        (its ``done`` counts data keys scanned, then index entries walked).
        """
        enumerator = self._index()
        meter = ProgressMeter("reindex", check_callback(progress, "progress"))
        with self._operation("reindex") as record:
            report = await enumerator.reindex(
                self._per_call(count), check_count(max_reported), meter
            )
            record.keys = report.scanned_keys
        return report

    async def verify_index(
        self,
        *,
        count: int | None = None,
        max_reported: int = DEFAULT_MAX_REPORTED,
        progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Compare the key index with a SCAN of the tenant's data; repairs nothing.

        (Like any listing, its walk of the index prunes entries of expired keys.)

        The report counts data keys without entries, entries without data and
        expiry mismatches, naming up to ``max_reported`` keys of each. Raises
        :class:`~tenantkv.errors.IndexNotEnabledError` on a store without the index.
        ``progress``: as for :meth:`reindex`.
        """
        enumerator = self._index()
        meter = ProgressMeter("verify_index", check_callback(progress, "progress"))
        with self._operation("verify_index") as record:
            report = await enumerator.verify(
                self._per_call(count), check_count(max_reported), meter
            )
            record.keys = report.scanned_keys
        return report

    async def prune_index(self, *, count: int | None = None) -> int:
        """Remove the index entries of expired keys, ``count`` per call; how many.

        Optional: listing, counting and writes with a TTL prune as they go.
        Raises :class:`~tenantkv.errors.IndexNotEnabledError` on a store without the index.
        """
        enumerator = self._index()
        with self._operation("prune_index") as record:
            record.keys = await enumerator.prune(self._per_call(count))
        return record.keys

    # -- moving in from another key layout --------------------------------------
    async def migrate_from(
        self,
        old_prefix: str,
        *,
        copy: bool = False,
        dry_run: bool = False,
        count: int | None = None,
        max_list_items: int = DEFAULT_MAX_LIST_ITEMS,
        max_reported: int = DEFAULT_MAX_REPORTED,
        progress: ProgressCallback | None = None,
    ) -> MigrationReport:
        """Move every key under ``old_prefix`` (another layout's, e.g. ``tenant:shop-1:``) into
        this tenant's namespace, live; the report of what moved and what was left.

        Each key keeps its value, type (string or list) and remaining TTL, and
        gets its index entry if the tenant has an index; it is removed from the
        old layout only if unchanged since it was copied, so a write the old
        service makes meanwhile is never lost (see :mod:`tenantkv.migration`
        for the rule). ``copy`` keeps the old keys; ``dry_run`` only counts
        what would move. Non-blocking (SCAN ``count`` keys per call, bounded
        scripts), idempotent and resumable: run it again after an interruption.
        ``progress`` is called after each page.
        """
        self._check_open()
        with self._operation("migrate_from") as record:
            report = await migration.migrate(
                self,
                old_prefix,
                copy=check_bool_option(copy, "copy"),
                dry_run=check_bool_option(dry_run, "dry_run"),
                count=self._per_call(count),
                max_list_items=check_count(max_list_items, "max_list_items"),
                max_reported=check_count(max_reported, "max_reported"),
                progress=check_callback(progress, "progress"),
            )
            record.keys = report.moved
        return report

    def _per_call(self, count: object) -> int | None:
        return self._count if count is None else check_count(count)


def _lenient(raw: bytes, key: str) -> tuple[Any, bool]:
    """``raw`` decoded as JSON, or as text when it is not JSON (for showing, not using)."""
    try:
        return codec.decode(raw, key=key), True
    except DecodeError:
        return raw.decode("utf-8", "replace"), False


class TenantSubscription:
    """An open subscription yielding decoded messages; leave the ``async with`` to unsubscribe.

    ``async for message in sub`` waits for each message; ``await sub.get(timeout=1.0)``
    waits at most that long and returns ``None`` if nothing came, without
    cancelling anything (for request handlers that must also check a clock or
    a client going away).
    """

    def __init__(
        self, inner: Subscription, channel: str, registry: set[TenantSubscription]
    ) -> None:
        self._inner = inner
        self._registry = registry
        self.channel = channel

    def __repr__(self) -> str:
        return f"TenantSubscription(channel={self.channel!r})"

    async def __aenter__(self) -> TenantSubscription:
        await self._inner.__aenter__()
        self._registry.add(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._registry.discard(self)
        await self._inner.__aexit__(*exc_info)

    @property
    def active(self) -> bool:
        """Entered and still subscribed: false once its connection failed or its store closed."""
        return self._inner.active

    def __aiter__(self) -> TenantSubscription:
        return self

    async def __anext__(self) -> Any:
        raw = await self._inner.__anext__()
        return codec.decode(raw, key=self.channel)

    async def get(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - see below
        """The next message, or ``None`` if none came within ``timeout`` seconds.

        ``timeout=None`` waits as long as it takes; ``0`` only takes a message
        already there. Raises what ended the subscription (its connection
        failed, its store was closed) like iteration does. A message whose
        JSON is ``null`` also reads as ``None``: iterate to tell them apart.
        """
        raw = await self._inner.get(timeout)
        return None if raw is None else codec.decode(raw, key=self.channel)

    async def _end(self, reason: BaseException) -> None:
        """The store is closing: leave the channel; waiting readers get ``reason``."""
        self._registry.discard(self)
        await self._inner.close(reason)
