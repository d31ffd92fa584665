"""Moving keys of another layout in, on Redis: the calls of ``lua/migrate_*.lua``.

Reading and removing an old key happen on the old key's hash slot, writing
the new key on the tenant's: on a cluster they are different slots, so the
three steps are three scripts (see :mod:`tenantkv.migration` for the rule
that makes that safe). The read and remove scripts stop at the budget of work
they are sent and reply for the keys they got to; :func:`read_all` and
:func:`delete_all` send the rest again. Each call's budget comes from its
pacer (:class:`~tenantkv.pacing.MovePacer`): half the store's
``budget_ms`` over the time per unit of work measured from the calls' round
trips less a ``PING``'s (:class:`RoundTrips`), and never more than
:data:`~tenantkv.pacing.MOVE_BUDGET` however long the lists are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from ...codec import decode_key
from ...pacing import MovePacer
from ..base import MoveIn, OldKey, fingerprint, move_cost
from .scripts import script_source

__all__ = ["RoundTrips", "delete_all", "moving_scripts", "read_all", "write_args"]


class RoundTrips:
    """What a call that does no work takes, per server: the least of a few ``PING`` round
    trips, measured again after :data:`REFRESH_S` (the floor of
    :class:`~tenantkv.pacing.MoveCost`)."""

    #: PINGs per measurement, and how long one holds.
    PINGS = 3
    REFRESH_S = 10.0

    __slots__ = ("_floors",)

    def __init__(self) -> None:
        #: server -> (floor in seconds, when measured: time.monotonic()).
        self._floors: dict[object, tuple[float, float]] = {}

    async def floor(self, server: object, ping: Callable[[], Awaitable[object]]) -> float:
        """The floor of ``server``, measured with ``ping`` when unknown or old."""
        now = time.monotonic()
        known = self._floors.get(server)
        if known is not None and now - known[1] < self.REFRESH_S:
            return known[0]
        least = math.inf
        for _ in range(self.PINGS):
            started = time.perf_counter()
            await ping()
            least = min(least, time.perf_counter() - started)
        self._floors[server] = (least, now)
        return least


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


async def read_all(
    script: AsyncScript, keys: Sequence[str], max_items: int, pacer: MovePacer
) -> list[OldKey]:
    """``migrate_read.lua`` over ``keys`` (one slot), as many calls as the budget needs."""
    out: list[OldKey] = []
    while len(out) < len(keys):
        budget = pacer.budget()
        # A key is a unit at least: no more keys than that could be read.
        part = list(keys[len(out) : len(out) + budget])
        started = time.perf_counter()
        replies = await script(keys=part, args=[max_items, budget])
        seconds = time.perf_counter() - started
        read = _parse_read(part, replies)
        # What the script counted (``cost`` in _common.lua), from what it replied.
        spent = sum(move_cost(old.kind, old.items) for old in read)
        pacer.measured(seconds, keys=len(read), spent=spent, full=spent >= budget)
        out += read
    return out


async def delete_all(
    script: AsyncScript, keys: Sequence[tuple[str, str, int]], max_items: int, pacer: MovePacer
) -> list[str]:
    """``migrate_delete.lua`` over ``(key, fingerprint, expire_at_ms)`` (one slot), as many
    calls as the budget needs: ``removed``, ``changed`` or ``gone`` per key."""
    out: list[str] = []
    while len(out) < len(keys):
        budget = pacer.budget()
        part = keys[len(out) : len(out) + budget]  # (as in read_all)
        args: list[Any] = [max_items, budget]
        for _, print_, at in part:
            args += [print_, at]
        started = time.perf_counter()
        spent, replies = await script(keys=[key for key, _, _ in part], args=args)
        seconds = time.perf_counter() - started
        spent = int(spent)
        pacer.measured(seconds, keys=len(replies), spent=spent, full=spent >= budget)
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
