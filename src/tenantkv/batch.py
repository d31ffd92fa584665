"""Batches: several calls of one tenant's store, sent in one round trip, applied atomically.

::

    async with store.batch() as b:
        entry = b.get("search:txn-1")
        b.list_push("search:txn-1:responses", response, ttl_ms=1_800_000)
        reached = b.publish("search:txn-1:updates", {"type": "response_added"})
    print(entry.value, reached.value)

Every call is checked (key, value, TTL) when it is queued, so a bad one
raises before anything is sent; an exception inside the block sends
nothing. When the block exits, the calls go to the server in one round trip
and are applied in the order queued, with no other client's command in
between, all or none: a call that meets a key of the wrong type
(``WrongTypeError``) stops the whole batch before anything is written. Each
call returns a :class:`BatchResult` whose ``value`` is what the store's own
call would have returned, available once the block has exited (a ``get`` of a
value that is not JSON raises ``DecodeError`` when its ``value`` is read; the
batch was applied all the same).

Where that holds: a single Redis server (one script), and a cluster for a
tenant without shards (its keys and channels share one hash slot, one
script). A tenant spread over shards (``shards=N``) gets one such atomic
step per shard involved, the shards side by side; each shard's part is all
or none on its own, and a ``publish`` is sent only once every call queued
before it has been applied, in every shard (so a subscriber that reads on a
message sees the batch's writes). ``memory://`` applies the whole batch with no other task
running in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import codec, telemetry
from .backends.base import BatchOp
from .errors import StoreClosedError
from .validation import check_mapping, check_ttl

if TYPE_CHECKING:
    from .store import TenantStore

__all__ = ["Batch", "BatchResult"]

T = TypeVar("T")


class BatchResult(Generic[T]):
    """What one queued call returned; its :attr:`value` is there once the batch was sent."""

    __slots__ = ("_decode", "_done", "_value", "call")

    def __init__(self, call: str, decode: Any = None) -> None:
        self.call = call
        #: Turns the reply into the value, when it is read (a value that is not JSON then
        #: raises there, not in the middle of handing out the batch's other results).
        self._decode = decode
        self._done = False
        self._value: Any = None

    def __repr__(self) -> str:
        shown = (
            "pending" if not self._done else "not decoded" if self._decode else repr(self._value)
        )
        return f"BatchResult({self.call}: {shown})"

    @property
    def done(self) -> bool:
        """Whether the batch was sent and this call's result is known."""
        return self._done

    @property
    def value(self) -> T:
        """The call's result; raises ``LookupError`` before the batch was sent, and
        ``DecodeError`` for a ``get`` whose value is not JSON (the batch was applied)."""
        if not self._done:
            raise LookupError(f"{self.call}: the batch has not been sent yet")
        if self._decode is not None:
            self._value = self._decode(self._value)
            self._decode = None
        result: T = self._value
        return result

    def _set(self, raw: Any) -> None:
        self._value = raw
        self._done = True


class Batch:
    """The calls queued in ``async with store.batch() as b:`` (see the module docstring)."""

    def __init__(self, store: TenantStore) -> None:
        self._store = store
        self._ops: list[BatchOp] = []
        self._results: list[BatchResult[Any]] = []
        # Results of calls made of several ops (set_many): done when the batch is sent.
        self._groups: list[BatchResult[Any]] = []
        self._sent = False

    def __repr__(self) -> str:
        state = "sent" if self._sent else f"{len(self._ops)} queued"
        return f"Batch(tenant={self._store.tenant!r}, {state})"

    def _check_not_sent(self) -> None:
        if self._sent:
            raise StoreClosedError("the batch was already sent; start a new one")

    def _queue(self, op: BatchOp, result: BatchResult[T]) -> BatchResult[T]:
        self._check_not_sent()
        self._ops.append(op)
        self._results.append(result)
        return result

    # -- writes ---------------------------------------------------------------
    def set(self, key: str, value: Any, *, ttl_ms: int | None = None) -> BatchResult[None]:
        """Queue :meth:`TenantStore.set`."""
        physical = self._store._key(key)
        ttl = None if ttl_ms is None else check_ttl(ttl_ms)
        return self._queue(BatchOp("set", physical, codec.encode(value), ttl), BatchResult("set"))

    def set_many(
        self, mapping: Mapping[str, Any], *, ttl_ms: int | None = None
    ) -> BatchResult[None]:
        """Queue :meth:`TenantStore.set_many` (one ``set`` per item, same TTL)."""
        self._check_not_sent()
        ttl = None if ttl_ms is None else check_ttl(ttl_ms)
        items = [
            (self._store._key(key), codec.encode(value))
            for key, value in check_mapping(mapping, "set_many").items()
        ]
        result: BatchResult[None] = BatchResult("set_many")
        for physical, encoded in items:
            self._ops.append(BatchOp("set", physical, encoded, ttl))
            self._results.append(BatchResult("set"))
        self._groups.append(result)
        return result

    def delete(self, key: str) -> BatchResult[bool]:
        """Queue :meth:`TenantStore.delete`."""
        return self._queue(BatchOp("delete", self._store._key(key)), BatchResult("delete"))

    def set_ttl(self, key: str, ttl_ms: int) -> BatchResult[bool]:
        """Queue :meth:`TenantStore.set_ttl`."""
        physical = self._store._key(key)
        op = BatchOp("set_ttl", physical, ttl_ms=check_ttl(ttl_ms))
        return self._queue(op, BatchResult("set_ttl"))

    def list_push(self, key: str, value: Any, *, ttl_ms: int | None = None) -> BatchResult[int]:
        """Queue :meth:`TenantStore.list_push`."""
        physical = self._store._key(key)
        ttl = None if ttl_ms is None else check_ttl(ttl_ms)
        op = BatchOp("list_push", physical, codec.encode(value), ttl)
        return self._queue(op, BatchResult("list_push"))

    def publish(self, channel: str, data: Any) -> BatchResult[int]:
        """Queue :meth:`TenantStore.publish`; it goes out after the calls queued before it."""
        physical = self._store._key(channel, "channel")
        return self._queue(BatchOp("publish", physical, codec.encode(data)), BatchResult("publish"))

    # -- reads: what the batch sees, in its place among the writes ------------------
    def get(self, key: str) -> BatchResult[Any]:
        """Queue :meth:`TenantStore.get`: the value as the calls queued before it left it."""

        def decode(raw: bytes | None) -> Any:
            return None if raw is None else codec.decode(raw, key=key)

        return self._queue(BatchOp("get", self._store._key(key)), BatchResult("get", decode))

    def exists(self, key: str) -> BatchResult[bool]:
        """Queue :meth:`TenantStore.exists`."""
        return self._queue(BatchOp("exists", self._store._key(key)), BatchResult("exists"))

    # -- sending -----------------------------------------------------------------
    @property
    def results(self) -> list[Any]:
        """The value of every call queued, in order (``set_many`` counts one per item);
        ``LookupError`` before the batch was sent."""
        return [result.value for result in self._results]

    async def send(self) -> None:
        """Send the queued calls now (the ``async with`` block does it on exit); then each
        call's result has its value (and :attr:`results` all of them)."""
        self._check_not_sent()
        self._store._check_open()
        self._sent = True
        if self._ops:
            with telemetry.operation("batch", self._store.tenant, "batch") as record:
                record.keys = len(self._ops)
                replies = await self._store._writer.batch(self._ops)
            for result, reply in zip(self._results, replies, strict=True):
                result._set(reply)
        for group in self._groups:
            group._set(None)

    async def __aenter__(self) -> Batch:
        self._store._check_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            await self.send()
        else:
            self._sent = True  # an exception in the block: nothing is sent
