"""Batches on the in-process backend: the type check ``lua/batch.lua`` makes first, then the ops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import WrongTypeError
from ...index.protocols import KeyWriter
from ..base import BatchOp

if TYPE_CHECKING:
    from .backend import MemoryBackend

__all__ = ["apply_op", "check_batch"]


def check_batch(backend: MemoryBackend, ops: Sequence[BatchOp]) -> None:
    """Raise ``WrongTypeError`` if an op of ``ops`` would meet a key of the wrong type,
    following the types the ops before it leave (as ``lua/batch.lua`` checks first)."""
    backend._check_open()
    kinds: dict[str, str] = {}
    for op in ops:
        if op.kind == "publish":
            continue
        kind = kinds.get(op.key)
        if kind is None:
            entry = backend.keyspace.lookup(op.key)
            kind = (
                "none" if entry is None else "string" if isinstance(entry.value, bytes) else "list"
            )
        if (op.kind == "get" and kind == "list") or (op.kind == "list_push" and kind == "string"):
            raise WrongTypeError(
                f"batch: key {op.key!r} holds a {kind}, not what {op.kind} needs; "
                "nothing of the batch was written",
                url=backend.url,
                command="EVALSHA",
            )
        kinds[op.key] = {"set": "string", "list_push": "list", "delete": "none"}.get(op.kind, kind)


async def apply_op(backend: MemoryBackend, op: BatchOp, writer: KeyWriter) -> Any:
    """One op of a checked batch: writes through ``writer`` (the backend, or a key index),
    reads and publishes through ``backend``."""
    if op.kind == "set":
        assert op.value is not None
        return await writer.set(op.key, op.value, op.ttl_ms)
    if op.kind == "delete":
        return await writer.delete(op.key)
    if op.kind == "set_ttl":
        assert op.ttl_ms is not None
        return await writer.set_ttl(op.key, op.ttl_ms)
    if op.kind == "list_push":
        assert op.value is not None
        return await writer.list_push(op.key, op.value, op.ttl_ms)
    if op.kind == "publish":
        assert op.value is not None
        return await backend.publish(op.key, op.value)
    if op.kind == "get":
        return await backend.get(op.key)
    return await backend.exists(op.key)
