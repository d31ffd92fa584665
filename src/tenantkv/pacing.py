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
  the round-trip time, which overstates it (so COUNT errs low); the
  in-process backend times its own batches.
- ``count = budget x TARGET_SHARE / cost per key``, within the kind's bounds
  and never above the ``count`` the caller gave. The mean command is thus held
  at half the budget, which on a loaded 2-vCPU VM kept 99 % of them under the
  budget: a strict maximum is not a promise any COUNT can keep there (a
  descheduled server makes even a 100-key SCAN take several ms).
- The cost learned is shared by every walk of a backend (several stores of a
  :class:`~tenantkv.TenantClient` share one), so a walk starts from what the
  previous ones measured; a measurement above the estimate replaces it at
  once, one below moves it part of the way.

Nothing here does I/O: backends feed :class:`WalkPacer` what they measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DEFAULT_BUDGET_MS",
    "INDEX_CLEAR",
    "INDEX_RANGE",
    "INDEX_SCRIPT",
    "SCAN",
    "SCAN_UNLINK",
    "TARGET_SHARE",
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
#: A chunk of the key index (``ZRANGE ... BYLEX LIMIT 0 n`` in MULTI): 0.1-0.7 us per member.
INDEX_RANGE = StepKind("index range", 0.6, 10, 10_000)
#: A clear by the index: each step reads a chunk and deletes the previous one's keys and
#: entries in one MULTI/EXEC (UNLINK and two ZREMs: 1-1.5 us per key, all in EXEC's time).
INDEX_CLEAR = StepKind("index clear", 2.0, 10, 5_000)
#: An index script that works per member (prune and filter a chunk, check, repair, unlink
#: with entries): 2-5 us per member, timed from the round trip.
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
