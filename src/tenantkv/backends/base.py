"""The narrow interface every backend implements.

A backend sees physical keys (the tenant namespace is already applied) and
encoded payloads (``bytes``); it does I/O and translates its own failures
into :mod:`tenantkv.errors`. Validation, namespacing, encoding and
de-duplication belong to :class:`tenantkv.store.TenantStore`, not here.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import StoreClosedError
from ..fanout import branches
from ..pacing import MovePacer, Pace, StepKind

__all__ = [
    "Backend",
    "BackendBase",
    "BatchOp",
    "MigratingBackend",
    "MoveIn",
    "OldKey",
    "Subscription",
    "batch_steps",
    "fingerprint",
    "move_cost",
]


@runtime_checkable
class Subscription(Protocol):
    """One channel subscription: an async context manager and async iterator of payloads.

    Entering it subscribes (raising if the server refuses); leaving it
    unsubscribes, when it was the last local subscription of that channel.
    """

    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def get(self, timeout: float | None) -> bytes | None:  # noqa: ASYNC109 - on purpose
        """The next message, or ``None`` when none came within ``timeout`` seconds."""
        ...

    async def close(self, reason: BaseException) -> None:
        """Unsubscribe now; a reader then gets ``reason`` (raised) instead of a message."""
        ...

    @property
    def active(self) -> bool:
        """Entered, and still subscribed (its connection has not failed, its store is open)."""
        ...


BatchKind = Literal["set", "delete", "set_ttl", "list_push", "publish", "get", "exists"]


@dataclass(frozen=True, slots=True)
class BatchOp:
    """One call of a batch, as a writer receives it (see :meth:`Backend.batch`)."""

    kind: BatchKind
    #: The physical key (for ``publish``: the physical channel).
    key: str
    #: The encoded value (``set``, ``list_push``) or message (``publish``).
    value: bytes | None = None
    #: ``set``: the TTL the value gets (``None``: none); ``set_ttl``: the TTL;
    #: ``list_push``: the TTL the list gets (``None``: it keeps its own).
    ttl_ms: int | None = None

    def result(self, reply: Any) -> Any:
        """What the store's own call would have returned, from the server's reply."""
        if self.kind == "set":
            return None
        if self.kind in ("delete", "set_ttl", "exists"):
            return bool(reply)
        if self.kind == "get":
            return reply if reply is None or isinstance(reply, bytes) else bytes(reply)
        return int(reply)


def batch_steps(ops: Sequence[BatchOp], groups: int) -> list[list[int]]:
    """The positions of ``ops`` in the steps a batch spread over ``groups`` hash slots (or
    shards) is sent in, one after the other, each step's groups side by side.

    One group: one step, all of it (one atomic call). Several: runs of calls
    that are not ``publish``, then runs of ``publish``, so that a message goes
    out only once every call queued before it has been applied, in whatever
    group (a subscriber that reads on a message sees what the batch wrote).
    """
    if groups <= 1:
        return [list(range(len(ops)))]
    steps: list[list[int]] = []
    for position, op in enumerate(ops):
        publishing = op.kind == "publish"
        if not steps or (ops[steps[-1][-1]].kind == "publish") != publishing:
            steps.append([])
        steps[-1].append(position)
    return steps


# -- moving in from another key layout (tenantkv.migration) --------------------------------


@dataclass(frozen=True, slots=True)
class OldKey:
    """A key of another layout as read to be moved in (one atomic read per key)."""

    key: str
    #: ``string``, ``list``, ``none`` (gone), ``toolarge`` (a list over the limit), or
    #: another Redis type, which is not moved.
    kind: str
    #: What :func:`fingerprint` gives for its content ("" unless string or list).
    fingerprint: str
    #: Absolute expiry in server ms; -1 none, -2 gone.
    expire_at_ms: int
    #: The value (one item) or the list's items; empty otherwise.
    items: list[bytes]
    #: A list over the limit: its length.
    length: int = 0


@dataclass(frozen=True, slots=True)
class MoveIn:
    """One key to write into the tenant's namespace (see ``lua/migrate_write.lua``)."""

    key: str
    #: The tenant-relative key (its index entry, its ledger field).
    member: str
    #: ``string`` or ``list``; ``none`` to withdraw the migration's copy of an old key that
    #: is gone (``items`` then empty).
    kind: str
    #: The old key's fingerprint as read: a new key with this content is the same.
    old_fingerprint: str
    expire_at_ms: int
    items: list[bytes]


def fingerprint(kind: str, items: Sequence[bytes]) -> str:
    """A key's content as the migration scripts fingerprint it: ``<type>:<sha1>`` of type and
    value only (a list's item lengths, then its items), "" for other types."""
    if kind == "string":
        return "string:" + hashlib.sha1(items[0]).hexdigest()
    if kind == "list":
        lengths = b",".join(b"%d" % len(item) for item in items)
        return "list:" + hashlib.sha1(lengths + b"|" + b"".join(items)).hexdigest()
    return ""


def move_cost(kind: str, items: Sequence[bytes]) -> int:
    """What handling a key costs a migration script (``cost`` in ``lua/_common.lua``)."""
    if kind == "list":
        return 1 + len(items) + sum(map(len, items)) // 256
    if kind == "string":
        return 1 + len(items[0]) // 256
    return 1


@runtime_checkable
class MigratingBackend(Protocol):
    """A backend that can move keys of another layout in (read, then remove if unchanged).

    Reads and removes go in calls of the work :meth:`move_pacer` allows under ``pace``
    (one key at least), as many as ``keys`` need; the caller paces the writes the same way.
    """

    async def move_pacer(self, kind: StepKind, pace: Pace, key: str) -> MovePacer:
        """The pacer of migration calls of ``kind`` (``MOVE_*``) on the server of ``key``."""
        ...

    async def migrate_read(self, keys: Sequence[str], max_items: int, pace: Pace) -> list[OldKey]:
        """Each key's type, fingerprint, expiry and content, each read atomically."""
        ...

    async def migrate_delete(
        self, keys: Sequence[tuple[str, str, int]], max_items: int, pace: Pace
    ) -> list[str]:
        """Remove each ``(key, fingerprint, expire_at_ms)`` whose content and expiry are still
        those: ``removed``, ``changed`` (left) or ``gone`` per key (``lua/migrate_delete.lua``)."""
        ...


class Backend(Protocol):
    """Storage operations on physical keys, with Redis semantics."""

    @property
    def url(self) -> str:
        """The backend's URL with any password removed."""
        ...

    @property
    def subscription_count(self) -> int:
        """Subscriptions currently open through this backend."""
        ...

    def fanout(self, holds: int = 1) -> int:
        """How many branches of one fan-out (one call per shard, slot or shard walk) may run
        at once, each holding up to ``holds`` connections of the backend's pool
        (:func:`~tenantkv.fanout.branches`)."""
        ...

    async def ping(self) -> None:
        """Check that the backend answers; raise ``BackendUnavailableError`` if not."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values of ``keys`` in order, in one round trip."""
        ...

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        """Store ``value``; with ``ttl_ms`` the key expires, set in the same command."""

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """Store all ``items`` in one round trip, all or none."""

    async def delete(self, key: str) -> bool: ...

    async def exists(self, key: str) -> bool: ...

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        """Set a key's time to live; false when the key does not exist."""
        ...

    async def get_ttl(self, key: str) -> int | None:
        """Remaining time to live in ms; ``None`` when missing or without TTL."""
        ...

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        """Append to the list at ``key`` (created if missing); the new length.

        With ``ttl_ms`` the list expires that many ms from now, set in the same
        atomic step; without, it keeps the TTL it had.
        """
        ...

    async def list_range(self, key: str, start: int, stop: int) -> list[bytes]:
        """``LRANGE`` semantics: inclusive ``stop``, negative indexes from the end."""
        ...

    async def list_length(self, key: str) -> int: ...

    async def publish(self, channel: str, data: bytes) -> int:
        """Send ``data`` on ``channel``; the number of subscriber connections reached."""
        ...

    def subscribe(self, channel: str) -> Subscription: ...

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        """Write keys moved in from another layout, all of one shard whose migration ledger
        is ``ledger`` (see ``lua/migrate_write.lua``): one of ``written``, ``same``,
        ``conflict``, ``expired``, ``withdrawn``, ``absent`` per key. ``check`` decides the
        statuses and writes nothing."""
        ...

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """Apply ``ops`` in order, atomically (one script, or per hash slot on a cluster):
        all of them, or, if one meets a key of the wrong type, none. One result per op."""
        ...

    def scan(self, match: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Walk the keyspace with a cursor, yielding each page of keys matching ``match``.

        Keys come as the server holds them (UTF-8 ``bytes``; the caller
        decodes). Every key present for the whole walk is yielded at least
        once; a key may repeat and a page may be empty. Each server call
        visits as many keys as ``pace`` allows (its time budget, at most its
        ``count``); the next call may already be on its way while a page is
        handed on (at most one ahead). Stopping early (``aclose``, an error,
        a cancellation) leaves nothing unread on a pooled connection.
        """
        ...

    def scan_unlink(self, match: str, pace: Pace) -> AsyncGenerator[int, None]:
        """Delete every key a :meth:`scan` of ``match`` walks to, page by page; yield how many
        each page deleted. Stopped early, it stops after the page in flight."""
        ...

    async def unlink(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (memory reclaimed in the background); how many existed."""
        ...

    async def aclose(self) -> None: ...


class BackendBase:
    """What every backend class shares: its redacted URL and the closed check each call makes."""

    def __init__(self, url: str, *, connections: int | None = None) -> None:
        self._url = url
        self._closed = False
        self._connections = connections

    @property
    def url(self) -> str:
        """The backend's URL with any password removed."""
        return self._url

    @property
    def connections(self) -> int | None:
        """The most connections the backend opens to one server (redis-py's
        ``max_connections``); ``None``: no limit (in process, or none given)."""
        return self._connections

    def fanout(self, holds: int = 1) -> int:
        """How many branches of one fan-out may run at once, each holding up to ``holds``
        connections (:func:`~tenantkv.fanout.branches`)."""
        return branches(self._connections, holds)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the backend for {self._url} is closed")
