"""How much work one server command of a walk may do: a time budget, and the COUNT that keeps to it.

A walk (SCAN pages, index chunks, a clear's deletions) is a loop of commands
that each visit about ``count`` keys. A fixed COUNT cannot keep every command
short: the server's time per key grows with the key length and the memory
layout (SCAN COUNT 1000 took 1.0 ms per call with 19-byte keys and 1.4 ms with
80-byte keys on a 2-vCPU VM). So each walk sizes its commands from a **time
budget** (the store option ``budget_ms``, default 1 ms):

- What one command costs per key is measured, per server and per kind of
  walk, from the server's own accounting (``INFO commandstats``, read on the
  walk's connection every few commands), or, where ``INFO`` is refused, from
  the round-trip time, which overstates it (so COUNT errs low); the index's
  scripts that work per member reply how long they ran (their own ``TIME``
  readings); the in-process backend times its own batches.
- ``count = budget x TARGET_SHARE / cost per key``, within the kind's bounds
  and never above the ``count`` the caller gave. The mean command is thus held
  at half the budget, which on a loaded 2-vCPU VM kept 99 % of them under the
  budget: a strict maximum is not a promise any COUNT can keep there (a
  descheduled server makes even a 100-key SCAN take several ms).
- The cost learned is shared by every walk of a backend (several stores of a
  :class:`~tenantkv.TenantClient` share one), so a walk starts from what the
  previous ones measured; a measurement above the estimate replaces it at
  once, one below moves it part of the way.

The migration's script calls (:mod:`tenantkv.migration`) keep to the same rule,
in move units rather than keys, timed from their round trip (:class:`MoveCost`,
:class:`MovePacer`).

Nothing here does I/O: backends feed :class:`WalkPacer` and :class:`MovePacer`
what they measured.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

__all__ = [
    "DEFAULT_BUDGET_MS",
    "INDEX_CLEAR",
    "INDEX_RANGE",
    "INDEX_SCRIPT",
    "MOVE_BUDGET",
    "MOVE_DELETE",
    "MOVE_INDEX_WRITE",
    "MOVE_MEASURED_KEYS",
    "MOVE_READ",
    "MOVE_WRITE",
    "SCAN",
    "SCAN_UNLINK",
    "TARGET_SHARE",
    "MoveCost",
    "MoveCosts",
    "MovePacer",
    "Pace",
    "StepCost",
    "StepCosts",
    "StepKind",
    "WalkPacer",
]

#: Target server time of one enumeration or clear command, in ms.
DEFAULT_BUDGET_MS = 1.0
#: What share of the budget the mean command aims at (the rest is headroom for the spread).
TARGET_SHARE = 0.5
#: How much of a lower measurement is taken in at once (a higher one is taken whole).
_EASE = 0.3


@dataclass(frozen=True, slots=True)
class Pace:
    """How large one command of a walk may be: its time budget, and the caller's COUNT."""

    #: Target server time per command, in ms.
    budget_ms: float = DEFAULT_BUDGET_MS
    #: Most keys per command the caller asked for (``None``: the walk's own bounds).
    count: int | None = None


@dataclass(frozen=True, slots=True)
class StepKind:
    """One kind of walk step, with what it assumes before anything was measured."""

    name: str
    #: Server microseconds per key assumed until measured (a 2-vCPU VM, ~60-byte keys).
    first_us_per_key: float
    #: Smallest COUNT (a caller's smaller ``count`` still wins).
    least: int
    #: Largest COUNT when the caller gave none.
    most: int


#: ``SCAN cursor MATCH m COUNT n``: about 1 us per key visited (more for long keys).
SCAN = StepKind("scan", 1.0, 10, 10_000)
#: A clear by SCAN: each step is a SCAN and the UNLINK of its page (1.5-3 us per key).
SCAN_UNLINK = StepKind("scan+unlink", 2.0, 10, 5_000)
#: A chunk of the key index (``ZRANGE idx r-1 r+n-1``, by rank; by name where a prefix's rank is
#: refused): 0.1-0.7 us per member.
INDEX_RANGE = StepKind("index range", 0.6, 10, 10_000)
#: A clear by the index: each step reads a chunk and deletes the previous one's keys and
#: entries in one MULTI/EXEC (UNLINK and two ZREMs, all in EXEC's time: 1.3-2.8 us per key with
#: short names and no TTL, 3.6-7.9 with the load test's; bench/bench_clear_key_shapes.py on two
#: 2-vCPU VMs).
INDEX_CLEAR = StepKind("index clear", 2.0, 10, 5_000)
#: An index script that works per member (prune and filter a chunk, check, repair, unlink
#: with entries): 2-8 us per member, as the script itself times it (its reply says how long
#: it ran: a round trip would also hold whatever was queued on the server ahead of it).
INDEX_SCRIPT = StepKind("index script", 4.0, 10, 10_000)


class StepCost:
    """What one kind of step costs per key on one server, as measured so far.

    Shared by every walk of a backend: asyncio runs one task at a time, and
    each update is one assignment.
    """

    __slots__ = ("kind", "samples", "us_per_key")

    def __init__(self, kind: StepKind) -> None:
        self.kind = kind
        #: Estimated server microseconds per key (``None``: nothing measured yet).
        self.us_per_key: float | None = None
        #: How many measurements went into the estimate.
        self.samples = 0

    def __repr__(self) -> str:
        shown = "unmeasured" if self.us_per_key is None else f"{self.us_per_key:.3f} us/key"
        return f"StepCost({self.kind.name}, {shown}, samples={self.samples})"

    def observe(self, us_per_key: float) -> None:
        """Take in one measurement (a higher one at once, a lower one part of the way)."""
        if not math.isfinite(us_per_key) or us_per_key <= 0:
            return
        old = self.us_per_key
        self.us_per_key = (
            us_per_key if old is None or us_per_key >= old else old + _EASE * (us_per_key - old)
        )
        self.samples += 1

    def count(self, pace: Pace) -> int:
        """The COUNT of the next command: the budget's share over the cost per key, in bounds."""
        kind = self.kind
        most = kind.most if pace.count is None else pace.count
        least = min(kind.least, most)
        per_key = kind.first_us_per_key if self.us_per_key is None else self.us_per_key
        wanted = pace.budget_ms * 1000.0 * TARGET_SHARE / per_key
        return max(least, min(most, int(wanted)))


class StepCosts:
    """The :class:`StepCost` of each kind of step on each server of a backend."""

    __slots__ = ("_costs",)

    def __init__(self) -> None:
        self._costs: dict[tuple[object, str], StepCost] = {}

    def __call__(self, kind: StepKind, server: object = None) -> StepCost:
        """The cost of ``kind`` on ``server`` (any hashable name; ``None`` for the only one)."""
        cost = self._costs.get((server, kind.name))
        if cost is None:
            cost = self._costs[(server, kind.name)] = StepCost(kind)
        return cost


class WalkPacer:
    """One walk's side of the rule: the COUNT of each step, and what the walk measured.

    A step is one command (or one pipelined group of commands) of about
    ``count`` keys. A walk reports either the server time of a window of
    steps (:meth:`window`, read from the server's own accounting) or the
    elapsed time of one step (:meth:`elapsed`: a round trip, or an
    in-process batch).
    """

    __slots__ = ("_pace", "cost")

    def __init__(self, cost: StepCost, pace: Pace) -> None:
        self.cost = cost
        self._pace = pace

    def __repr__(self) -> str:
        return f"WalkPacer({self.cost!r}, {self._pace!r})"

    def count(self) -> int:
        """The COUNT for the next step."""
        return self.cost.count(self._pace)

    def window(self, server_us: float, keys: int) -> None:
        """The server spent ``server_us`` per command kind (the slowest kind's total) on steps
        whose COUNTs add up to ``keys``."""
        if keys > 0:
            self.cost.observe(server_us / keys)

    def elapsed(self, seconds: float, count: int) -> None:
        """One step of ``count`` keys took ``seconds`` (at least the server's own time)."""
        if count > 0:
            self.cost.observe(seconds * 1e6 / count)


# -- the migration's script calls (tenantkv.migration) -----------------------------------------
# Their work is counted in *move units* (tenantkv.backends.base.move_cost): a unit per key,
# per list item and per 256 bytes of content.

#: The most server work one migration script call may do, in move units:
#: a list item or 256 bytes of content is about 0.3 us to read, 0.5 us to write, 1 us to compare
#: (hashed) on a 2-vCPU VM, so a call stays near the 1 ms command budget. A key over the budget
#: goes alone in its call, which then takes what that key takes (about 1.2 ms to compare a list
#: of 1,000 items of 70 bytes). Each call's own budget is sized from measured cost (the kinds
#: below), at most this.
MOVE_BUDGET = 1_000

# The kinds of migration script call, paced as the walks' commands are (as above),
# but in move units rather than keys (see :class:`MoveCost`). Until measured
# they assume what a quiet 2-vCPU VM gave (round trip less a PING's, per unit: small JSON
# strings and one-item lists, 1.5 units a key), so that with the default 1 ms budget the
# keys-per-call caps of tenantkv.migration (50 keys read or removed, 16 written) are what binds.
#: ``migrate_read.lua``: ``TYPE``, ``PEXPIRETIME`` and ``GET`` or ``LLEN`` + ``LRANGE`` per key
#: (measured 3.9-4.3 us per unit; the server's own time, 3.1).
MOVE_READ = StepKind("migrate read", 4.5, 1, MOVE_BUDGET)
#: ``migrate_delete.lua``: the read's calls, a hash of the content, ``UNLINK`` (5.2-6.1 us).
MOVE_DELETE = StepKind("migrate remove", 6.0, 1, MOVE_BUDGET)
#: ``migrate_write.lua`` without an index: the new key checked and written, the ledger noted
#: (10.5 us; the values travel as arguments).
MOVE_WRITE = StepKind("migrate write", 11.0, 1, MOVE_BUDGET)
#: ``migrate_write.lua`` with the index: also two ``ZADD``/``ZREM`` per key (15.2 us).
MOVE_INDEX_WRITE = StepKind("migrate index write", 16.0, 1, MOVE_BUDGET)
#: A call that carried fewer keys than this without reaching its budget is not measured: its
#: round trip is mostly the fixed cost of a call, not the work (a page's last few keys, a
#: cluster slot holding one key of the page), and would make the next calls too small.
MOVE_MEASURED_KEYS = 8


class MoveCost:
    """What one kind of migration call costs on one server, per move unit:
    shared by every migration of a backend, as the walks' :class:`StepCost`
    (which it feeds) is.

    Calls are timed from their round trip, less ``floor_s``: what a call that does no work
    takes (the least of a few ``PING`` round trips, kept up to date by the backend; 0 in
    process, or where nothing was measured). Without it the round trip's fixed part (about
    0.1 ms from Python on a 2-vCPU VM, half a 50-key read's server time) would count as work.
    So that a floor measured too long cannot make calls too large, at least half of each round
    trip counts. One round trip is a noisy measure, and its noise is one-sided (the client,
    the server and the network share two cores: a call preempted on either side takes long
    whatever its size): what the cost learns is the median of a window of calls, the first
    :data:`FIRST`, then every :data:`EVERY`. The first window is three calls, not two: the
    median of two is their mean, so one call preempted among the first two would be learned
    as the cost; the small calls that follow are mostly fixed cost, and bring the cost back
    down only slowly.
    """

    FIRST, EVERY = 3, 8

    __slots__ = ("_wanted", "_window", "cost", "floor_s")

    def __init__(self, cost: StepCost) -> None:
        self.cost = cost
        self.floor_s = 0.0
        #: Microseconds per unit of the calls measured since the last window closed.
        self._window: list[float] = []
        self._wanted = self.FIRST

    def __repr__(self) -> str:
        return f"MoveCost({self.cost!r}, floor={self.floor_s * 1e6:.0f} us)"

    def measured(self, seconds: float, *, keys: int, spent: int, full: bool) -> None:
        """A call of ``keys`` keys and ``spent`` units took ``seconds``; ``full``: its budget
        set its size. Not taken in if it was small for want of keys (:data:`MOVE_MEASURED_KEYS`)."""
        if spent <= 0 or (not full and keys < MOVE_MEASURED_KEYS):
            return
        self._window.append(max(seconds - self.floor_s, seconds / 2) * 1e6 / spent)
        if len(self._window) >= self._wanted:
            self.cost.observe(statistics.median(self._window))
            self._window.clear()
            self._wanted = self.EVERY


class MoveCosts:
    """The :class:`MoveCost` of each kind of migration call on each server of a backend."""

    __slots__ = ("_costs", "_moves")

    def __init__(self, costs: StepCosts) -> None:
        self._costs = costs
        self._moves: dict[tuple[object, str], MoveCost] = {}

    def __call__(self, kind: StepKind, server: object = None) -> MoveCost:
        """The cost of ``kind`` on ``server`` (any hashable name; ``None`` for the only one)."""
        move = self._moves.get((server, kind.name))
        if move is None:
            move = self._moves[(server, kind.name)] = MoveCost(self._costs(kind, server))
        return move


@dataclass(frozen=True, slots=True)
class MovePacer:
    """One migration's side of the rule for one kind of call on one server: the work the next
    call may do, in move units (``budget_ms x TARGET_SHARE / us per unit``,
    at most :data:`MOVE_BUDGET`, a key at least), and what the calls took."""

    cost: MoveCost
    pace: Pace

    def budget(self) -> int:
        """The units of work the next call may do (it stops after the key that reaches them)."""
        return self.cost.cost.count(self.pace)

    def measured(self, seconds: float, *, keys: int, spent: int, full: bool) -> None:
        """See :meth:`MoveCost.measured`."""
        self.cost.measured(seconds, keys=keys, spent=spent, full=full)
