"""Moving keys of another layout in, on the in-process backend (as ``lua/migrate_*.lua``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..base import MoveIn, OldKey, fingerprint

if TYPE_CHECKING:
    from .backend import MemoryBackend

__all__ = ["migrate_delete", "migrate_read", "migrate_write"]


def _content(backend: MemoryBackend, key: str, max_items: int) -> tuple[str, str, list[bytes], int]:
    """Type, fingerprint, items and length of ``key`` (as the scripts' ``fingerprint``)."""
    entry = backend.keyspace.lookup(key)
    if entry is None:
        return "none", "", [], 0
    if isinstance(entry.value, bytes):
        return "string", fingerprint("string", [entry.value]), [entry.value], 1
    if len(entry.value) > max_items:
        return "toolarge", "", [], len(entry.value)
    items = list(entry.value)
    return "list", fingerprint("list", items), items, len(items)


def migrate_read(backend: MemoryBackend, keys: Sequence[str], max_items: int) -> list[OldKey]:
    backend._check_open()
    out: list[OldKey] = []
    for key in keys:
        kind, print_, items, length = _content(backend, key, max_items)
        entry = backend.keyspace.lookup(key)
        at = -2 if entry is None else -1 if entry.expire_at_ms is None else entry.expire_at_ms
        out.append(OldKey(key, kind, print_, at, items, length if kind == "toolarge" else 0))
    return out


def migrate_write(
    backend: MemoryBackend,
    ledger: str,
    moves: Sequence[MoveIn],
    max_items: int,
    synced: Callable[[str], None] | None = None,
) -> list[str]:
    """As ``lua/migrate_write.lua``; ``synced(key)`` updates the key's index entry, if any."""
    backend._check_open()
    now = backend.keyspace.clock()
    copies = backend.keyspace.ledgers.setdefault(ledger, {})
    statuses: list[str] = []
    for move in moves:
        own = copies.get(move.member, "")
        status = "written"
        if move.expire_at_ms != -1 and move.expire_at_ms <= now:
            status = "expired"
        else:
            kind, print_, _, _ = _content(backend, move.key, max_items)
            if kind != "none":
                if kind == move.kind and print_ == move.old_fingerprint:
                    status = "same"
                elif not own or (kind, print_) != (move.kind, own):
                    status = "conflict"
        if status == "written":
            backend.keyspace.remove(move.key)
            value: bytes | deque[bytes] = (
                move.items[0] if move.kind == "string" else deque(move.items)
            )
            at = None if move.expire_at_ms == -1 else move.expire_at_ms
            backend.keyspace.put(move.key, value, at)
        if status in ("written", "same"):
            copies[move.member] = move.old_fingerprint
        if synced is not None and status != "conflict":
            synced(move.key)
        statuses.append(status)
    return statuses


def migrate_delete(
    backend: MemoryBackend, keys: Sequence[tuple[str, str]], max_items: int
) -> list[bool]:
    backend._check_open()
    out: list[bool] = []
    for key, expected in keys:
        _, print_, _, _ = _content(backend, key, max_items)
        out.append(bool(print_) and print_ == expected and backend.keyspace.remove(key))
    return out
