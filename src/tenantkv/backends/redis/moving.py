"""Moving keys of another layout in, on Redis: the calls of ``lua/migrate_*.lua``.

Reading and removing an old key happen on the old key's hash slot, writing
the new key on the tenant's: on a cluster they are different slots, so the
three steps are three scripts (see :mod:`tenantkv.migration` for the rule
that makes that safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from ...codec import decode_key
from ..base import MoveIn, OldKey
from .scripts import script_source

__all__ = ["delete_args", "moving_scripts", "parse_read", "write_args"]


def moving_scripts(client: aioredis.Redis | RedisCluster) -> dict[str, AsyncScript]:
    """The three scripts of a move, registered with ``client`` (``read``, ``write``, ``delete``)."""
    return {
        name: client.register_script(script_source(f"migrate_{name}"))
        for name in ("read", "write", "delete")
    }


def _text(raw: Any) -> str:
    return decode_key(raw) if isinstance(raw, bytes | str) else str(raw)


def parse_read(keys: Sequence[str], replies: Sequence[Any]) -> list[OldKey]:
    """The replies of ``migrate_read.lua`` as :class:`OldKey` objects, in order."""
    out: list[OldKey] = []
    for key, (kind_raw, print_raw, at, payload) in zip(keys, replies, strict=True):
        kind = _text(kind_raw)
        items: list[bytes] = []
        length = 0
        if kind == "string":
            items = [payload]
        elif kind == "list":
            items = list(payload)
        elif kind == "toolarge":
            length = int(_text(payload))
        out.append(OldKey(key, kind, _text(print_raw), int(at), items, length))
    return out


def write_args(moves: Sequence[MoveIn], *, indexed: bool, max_items: int) -> list[Any]:
    """``ARGV`` of ``migrate_write.lua`` (its data keys: the ledger, then the moves' keys)."""
    args: list[Any] = ["1" if indexed else "0", max_items]
    for move in moves:
        args += [
            move.member,
            move.kind,
            move.old_fingerprint,
            move.expire_at_ms,
            len(move.items),
            *move.items,
        ]
    return args


def delete_args(keys: Sequence[tuple[str, str]], max_items: int) -> list[Any]:
    """``ARGV`` of ``migrate_delete.lua`` (its keys are the old keys, in order)."""
    return [max_items, *(fingerprint for _, fingerprint in keys)]
