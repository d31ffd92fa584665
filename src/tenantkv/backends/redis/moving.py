"""Moving keys of another layout in, on Redis: the calls of ``lua/migrate_*.lua``.

Reading and removing an old key happen on the old key's hash slot, writing
the new key on the tenant's: on a cluster they are different slots, so the
three steps are three scripts (see :mod:`tenantkv.migration` for the rule
that makes that safe). The read and remove scripts stop at :data:`MOVE_BUDGET`
of work and reply for the keys they got to; :func:`read_all` and
:func:`delete_all` send the rest again, so no call exceeds the budget however
long the lists are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from ...codec import decode_key
from ..base import MOVE_BUDGET, MoveIn, OldKey, fingerprint
from .scripts import script_source

__all__ = ["delete_all", "moving_scripts", "read_all", "write_args"]


def moving_scripts(client: aioredis.Redis | RedisCluster) -> dict[str, AsyncScript]:
    """The three scripts of a move, registered with ``client`` (``read``, ``write``, ``delete``)."""
    return {
        name: client.register_script(script_source(f"migrate_{name}"))
        for name in ("read", "write", "delete")
    }


def _text(raw: Any) -> str:
    return decode_key(raw) if isinstance(raw, bytes | str) else str(raw)


def _parse_read(keys: Sequence[str], replies: Sequence[Any]) -> list[OldKey]:
    out: list[OldKey] = []
    for key, (kind_raw, at, payload) in zip(keys, replies, strict=False):
        kind = _text(kind_raw)
        items: list[bytes] = []
        length = 0
        if kind == "string":
            items = [payload]
        elif kind == "list":
            items = list(payload)
        elif kind == "toolarge":
            length = int(_text(payload))
        out.append(OldKey(key, kind, fingerprint(kind, items), int(at), items, length))
    return out


async def read_all(script: AsyncScript, keys: Sequence[str], max_items: int) -> list[OldKey]:
    """``migrate_read.lua`` over ``keys`` (one slot), as many calls as the budget needs."""
    out: list[OldKey] = []
    while len(out) < len(keys):
        part = list(keys[len(out) :])
        replies = await script(keys=part, args=[max_items, MOVE_BUDGET])
        out += _parse_read(part, replies)
    return out


async def delete_all(
    script: AsyncScript, keys: Sequence[tuple[str, str, int]], max_items: int
) -> list[str]:
    """``migrate_delete.lua`` over ``(key, fingerprint, expire_at_ms)`` (one slot), as many
    calls as the budget needs: ``removed``, ``changed`` or ``gone`` per key."""
    out: list[str] = []
    while len(out) < len(keys):
        part = keys[len(out) :]
        args: list[Any] = [max_items, MOVE_BUDGET]
        for _, print_, at in part:
            args += [print_, at]
        replies = await script(keys=[key for key, _, _ in part], args=args)
        out += [_text(reply) for reply in replies]
    return out


def write_args(moves: Sequence[MoveIn], *, indexed: bool, max_items: int, check: bool) -> list[Any]:
    """``ARGV`` of ``migrate_write.lua`` (its data keys: the ledger, then the moves' keys)."""
    args: list[Any] = ["1" if indexed else "0", max_items, "check" if check else "write"]
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
