"""A batch of a store's calls as one ``EVALSHA`` of ``lua/batch.lua`` (see that script)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..base import BatchOp

__all__ = ["batch_call", "batch_results", "unindexed_keys"]

_CODES = {
    "set": "S",
    "delete": "D",
    "set_ttl": "E",
    "list_push": "L",
    "publish": "P",
    "get": "G",
    "exists": "X",
}


def _ttl(ttl_ms: int | None) -> str:
    return "" if ttl_ms is None else str(ttl_ms)


def batch_call(
    ops: Sequence[BatchOp], *, indexed: bool, prefix_bytes: int = 0
) -> tuple[list[str], list[Any]]:
    """The data keys (``KEYS[3]`` on) and ``ARGV`` of one batch script call."""
    data_keys: list[str] = []
    args: list[Any] = ["1" if indexed else "0", prefix_bytes]
    for op in ops:
        code = _CODES[op.kind]
        args.append(code)
        if op.kind == "publish":
            args += [op.key, op.value]
            continue
        data_keys.append(op.key)
        if op.kind in ("set", "list_push"):
            args += [op.value, _ttl(op.ttl_ms)]
        elif op.kind == "set_ttl":
            args.append(op.ttl_ms)
    return data_keys, args


def unindexed_keys(ops: Sequence[BatchOp], data_keys: list[str]) -> list[str]:
    """All ``KEYS`` of a call for a store without the index: where the index keys would be,
    the batch's first key twice (a script names keys of its own slot; these stay untouched)."""
    stand_in = ops[0].key
    return [stand_in, stand_in, *data_keys]


def batch_results(ops: Sequence[BatchOp], replies: Sequence[Any]) -> list[Any]:
    """What each op's own call would have returned."""
    return [op.result(reply) for op, reply in zip(ops, replies, strict=True)]
