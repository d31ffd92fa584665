"""Moving keys of another layout in, on the in-process backend (as ``lua/migrate_*.lua``).

Reads and removes go in parts of the work the pacer allows (in units of
:func:`~tenantkv.backends.base.move_cost`, a key at least), each timed in
process, with other tasks running between parts: the scripts' rule, for the
event loop instead of a server.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ...pacing import MovePacer
from ..base import MoveIn, OldKey, fingerprint, move_cost

if TYPE_CHECKING:
    from .backend import MemoryBackend

__all__ = ["migrate_delete", "migrate_read", "migrate_write"]

T = TypeVar("T")


def _content(backend: MemoryBackend, key: str, max_items: int) -> tuple[str, str, list[bytes], int]:
    """Type, fingerprint, items and length of ``key`` (as the scripts' ``content``)."""
    entry = backend.keyspace.lookup(key)
    if entry is None:
        return "none", "", [], 0
    if isinstance(entry.value, bytes):
        return "string", fingerprint("string", [entry.value]), [entry.value], 1
    if len(entry.value) > max_items:
        return "toolarge", "", [], len(entry.value)
    items = list(entry.value)
    return "list", fingerprint("list", items), items, len(items)


def _expiry(backend: MemoryBackend, key: str) -> int:
    """PEXPIRETIME of ``key``: -2 gone, -1 no TTL, else the absolute time in ms."""
    entry = backend.keyspace.lookup(key)
    return -2 if entry is None else -1 if entry.expire_at_ms is None else entry.expire_at_ms


async def _paced(
    backend: MemoryBackend, pacer: MovePacer, total: int, one: Callable[[int], tuple[T, int]]
) -> list[T]:
    """``one(position)`` for every position below ``total``, in parts: each part runs up to
    the key that reaches the pacer's budget of units (a key at least; ``one`` gives a key's
    result and units), timed, with other tasks running between parts."""
    out: list[T] = []
    while len(out) < total:
        if out:
            await asyncio.sleep(0)
            backend._check_open()
        budget = pacer.budget()
        started = time.perf_counter()
        first, spent = len(out), 0
        while len(out) < total and (len(out) == first or spent < budget):
            result, cost = one(len(out))
            out.append(result)
            spent += cost
        seconds = time.perf_counter() - started
        pacer.measured(seconds, keys=len(out) - first, spent=spent, full=spent >= budget)
    return out


async def migrate_read(
    backend: MemoryBackend, keys: Sequence[str], max_items: int, pacer: MovePacer
) -> list[OldKey]:
    backend._check_open()

    def one(position: int) -> tuple[OldKey, int]:
        key = keys[position]
        kind, print_, items, length = _content(backend, key, max_items)
        at = _expiry(backend, key)
        old = OldKey(key, kind, print_, at, items, length if kind == "toolarge" else 0)
        return old, move_cost(kind, items)

    return await _paced(backend, pacer, len(keys), one)


def migrate_write(
    backend: MemoryBackend,
    ledger: str,
    moves: Sequence[MoveIn],
    max_items: int,
    *,
    check: bool = False,
    synced: Callable[[str], None] | None = None,
) -> list[str]:
    """As ``lua/migrate_write.lua``; ``synced(key)`` updates the key's index entry, if any."""
    backend._check_open()
    keyspace = backend.keyspace
    now = keyspace.clock()
    copies = keyspace.ledgers.setdefault(ledger, {})
    statuses: list[str] = []
    for move in moves:
        own = copies.get(move.member, "")
        kind, print_, _, _ = _content(backend, move.key, max_items)
        own_copy = kind != "none" and bool(own) and print_ == own
        if move.kind == "none":
            status = "withdrawn" if own_copy else "absent"
        elif move.expire_at_ms != -1 and move.expire_at_ms <= now:
            status = "expired"
        elif kind == "none":
            status = "written"
        elif print_ == move.old_fingerprint:
            status = "same"
        else:
            status = "written" if own_copy else "conflict"
        statuses.append(status)
        if check:
            continue
        at = None if move.expire_at_ms == -1 else move.expire_at_ms
        if status == "written":
            keyspace.remove(move.key)
            value: bytes | deque[bytes] = (
                move.items[0] if move.kind == "string" else deque(move.items)
            )
            keyspace.put(move.key, value, at)
        elif status == "same" and own_copy:
            entry = keyspace.lookup(move.key)
            if entry is not None:  # (it is: it holds the copy)
                entry.expire_at_ms = at
                keyspace.schedule_expiry(move.key)
        elif status == "withdrawn":
            keyspace.remove(move.key)
            del copies[move.member]
        if status in ("written", "same"):
            copies[move.member] = move.old_fingerprint
        if synced is not None and status not in ("conflict", "absent"):
            synced(move.key)
    return statuses


async def migrate_delete(
    backend: MemoryBackend, keys: Sequence[tuple[str, str, int]], max_items: int, pacer: MovePacer
) -> list[str]:
    backend._check_open()

    def one(position: int) -> tuple[str, int]:
        key, expected, at = keys[position]
        kind, print_, items, _ = _content(backend, key, max_items)
        if kind == "none":
            status = "gone"
        elif print_ and print_ == expected and _expiry(backend, key) == at:
            backend.keyspace.remove(key)
            status = "removed"
        else:
            status = "changed"
        return status, move_cost(kind, items)

    return await _paced(backend, pacer, len(keys), one)
