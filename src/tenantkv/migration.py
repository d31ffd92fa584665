"""Moving in: adopt a tenant's keys from another key layout, live, without losing a write.

The service tenantkv replaces kept a tenant's data under ``tenant:<id>:<key>``;
:meth:`TenantStore.migrate_from` moves every key under such a prefix into the
tenant's namespace, with its value, its type (string or list) and what is
left of its TTL, and the index entry when the tenant has an index. It SCANs
the old prefix (bounded COUNT, never KEYS) and handles each page in bounded
server calls of three kinds, per hash slot involved:

1. **read** each old key atomically: type, content, fingerprint (a hash of
   type and content), absolute expiry time;
2. **write** each new key, in one script on the tenant's slot: unless its
   expiry time has passed (an expired key is not resurrected), and unless the
   new key already holds something else than the migration's own last copy
   of it (a **conflict**: the new key is kept, nothing is overwritten, the old
   key stays, and both are reported). What the migration writes is noted in
   the tenant's *ledger*, ``<prefix>:{<tenant>}#moved`` (per shard: member ->
   fingerprint), so a later run knows its own copies; ``clear()`` drops it. A
   new key that already holds the same content (a run that was interrupted, a
   ``copy`` run before) is not written again; if it is the migration's own
   copy, its expiry is set to the old key's;
3. **remove** each old key, in one script on its slot, *only if its
   fingerprint and its expiry time are still those read in step 1*.

The rule for live traffic, then (last writer wins, nothing lost): the old
service may go on writing old keys during the move. A key it writes again
after step 1, or whose TTL it refreshes, is not removed in step 3: it is read
and copied again in a later pass, or by a later run (overwriting the new key,
or setting its expiry, since that still holds the migration's own copy),
until it is removed unchanged. So the last write to the old key is the one
that ends up in the new layout, TTL included. A key the old service *deletes*
after step 1 is not resurrected either: the migration withdraws its copy (if
the new key still holds it) and counts the key as ``vanished``. If the *new*
service has written the new key meanwhile, the new key is newer: it is kept,
and the old key is left and reported as a conflict, never silently dropped.
Every step is idempotent, so a run that was interrupted (Ctrl-C, a crash) is
finished by running it again, and nothing is moved twice. One window stays:
a run killed between steps 2 and 3 of a key that the old service then
deletes leaves the copy, since no later run sees the old key again.

The scripts' calls are sized as the walks' commands are (:mod:`tenantkv.pacing`):
each gets a budget of work, in units of :func:`~tenantkv.backends.base.move_cost`
(a unit per key, per list item, per 256 bytes of content): half the store's
``budget_ms`` over the time per unit measured so far, per server and per kind
of call (read, remove, write, write with the index; see
:class:`~tenantkv.pacing.MoveCost`), and never more than
:data:`~tenantkv.pacing.MOVE_BUDGET` units, :data:`READ_BATCH` keys read
or removed or :data:`WRITE_BATCH` keys written. The time is a call's round
trip less a ``PING``'s, which overstates the server's own (the client's work
is in it), so calls err small. A read or remove call stops at its budget and
the rest is sent again, and writes are split to fit, so no command runs long
however long the values are (a key over the budget goes alone in its call).

Values must be what tenantkv stores (JSON); a string or list item that is not
JSON is reported, not moved. Other Redis types are reported, and so are lists
longer than ``max_list_items`` (read in one command, they would exceed the
time budget of a command; raise ``max_list_items`` to move them in longer commands).

On a cluster the old keys live in any slot and the new ones in the tenant's:
steps 1 and 3 run per old slot, step 2 on the tenant's slot (the commands:
``EVALSHA`` of ``lua/migrate_read.lua``, ``migrate_write.lua`` and
``migrate_delete.lua``; a value travels through the client, so no
``MIGRATE``, ``COPY`` or ``DUMP``/``RESTORE`` across slots is needed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from . import codec
from .backends.base import MigratingBackend, MoveIn, OldKey, move_cost
from .codec import decode_keys
from .errors import DecodeError, InvalidValueError
from .glob import escape_glob
from .namespace import Namespace
from .pacing import MOVE_INDEX_WRITE, MOVE_WRITE, Pace
from .progress import Progress, ProgressMeter
from .validation import check_key

if TYPE_CHECKING:
    from .store import TenantStore

__all__ = [
    "DEFAULT_MAX_LIST_ITEMS",
    "MigrationReport",
    "ledgers",
    "migrate",
]

#: Longest list moved (its items are read, compared and written in one command each).
DEFAULT_MAX_LIST_ITEMS = 1_000
#: The most keys per read or remove script, and per write script: caps over the paced budget
#: of work (MOVE_READ... in tenantkv.pacing). Small keys take about 4.5 us of server
#: time each to read or remove on this project's 2-vCPU VM (three or five calls from Lua), and
#: 8 us (16 us with the index: it also checks the new key, notes the ledger and updates the
#: index) to write, so that a script of small keys stays under half the 1 ms budget; larger
#: values, a smaller ``budget_ms`` or a slower server make the calls smaller.
READ_BATCH = 50
WRITE_BATCH = 16
#: Passes over keys the old service changed during the move before they are left, reported.
MAX_PASSES = 5
#: The bookkeeping key (per shard) where the migration notes what it wrote:
#: ``<prefix>:{<tenant>}#moved``, member -> fingerprint of the copy.
LEDGER = "moved"


def ledgers(namespace: Namespace) -> list[str]:
    """The migration ledgers of a tenant: one per shard, in that shard's slot."""
    return [namespace.meta_key(LEDGER, shard) for shard in range(namespace.shards)]


@dataclass
class MigrationReport:
    """What :meth:`~tenantkv.TenantStore.migrate_from` did (or, with ``dry_run``, would do).

    Counts are exact, and every old key seen is counted once: ``scanned == moved +
    already_present + expired + vanished + left_behind``. The key lists (old keys) name at
    most ``max_reported`` each.
    """

    tenant: str
    old_prefix: str
    dry_run: bool = False
    copy: bool = False
    #: Old keys seen by the SCAN of the old prefix.
    scanned: int = 0
    #: In the tenant's namespace and removed from the old layout (whether this run wrote the
    #: copy or an earlier run had); with ``copy``: written, old key kept; with ``dry_run``:
    #: would be written.
    moved: int = 0
    #: With ``copy`` or ``dry_run``: the new layout already held the same content (an earlier
    #: run's copy), nothing to write.
    already_present: int = 0
    #: Expired before they could be written: not resurrected.
    expired: int = 0
    #: Gone (deleted or expired) between the SCAN and their removal: not moved, and a copy
    #: this migration had made of one is withdrawn, so a key the old service deleted does
    #: not live on in the new layout.
    vanished: int = 0
    #: The new key holds something else: kept, old key left in place.
    conflicts: list[str] = field(default_factory=list)
    conflict_count: int = 0
    #: Values (or list items) that are not JSON: not moved.
    not_json: list[str] = field(default_factory=list)
    not_json_count: int = 0
    #: Keys of another Redis type, or lists over the limit: not moved.
    unsupported: list[str] = field(default_factory=list)
    unsupported_count: int = 0
    #: Still being changed by the old service after every pass: left in place.
    changed: list[str] = field(default_factory=list)
    changed_count: int = 0
    duration_s: float = 0.0

    @property
    def left_behind(self) -> int:
        """Old keys not moved, of every kind (conflicts, not JSON, unsupported, changed)."""
        return (
            self.conflict_count + self.not_json_count + self.unsupported_count + self.changed_count
        )


class _Report:
    """Fills a :class:`MigrationReport`, naming at most ``max_reported`` keys per list."""

    def __init__(self, report: MigrationReport, max_reported: int) -> None:
        self.report = report
        self.max_reported = max_reported

    #: Each list of keys, and the field that counts them.
    COUNTS: ClassVar[dict[str, str]] = {
        "conflicts": "conflict_count",
        "not_json": "not_json_count",
        "unsupported": "unsupported_count",
        "changed": "changed_count",
    }

    def name(self, kind: str, key: str) -> None:
        counter = self.COUNTS[kind]
        setattr(self.report, counter, getattr(self.report, counter) + 1)
        names: list[str] = getattr(self.report, kind)
        if len(names) < self.max_reported:
            names.append(key)


def _is_json(old: OldKey) -> bool:
    try:
        for item in old.items:
            codec.decode(item, key=old.key)
    except DecodeError:
        return False
    return True


async def migrate(
    store: TenantStore,
    old_prefix: str,
    *,
    copy: bool,
    dry_run: bool,
    count: int | None,
    max_list_items: int,
    max_reported: int,
    progress: Callable[[Progress], None] | None,
) -> MigrationReport:
    """Move the keys under ``old_prefix`` into ``store``'s tenant (see the module docstring)."""
    backend = store.backend
    namespace = store.namespace
    if not isinstance(backend, MigratingBackend):
        raise InvalidValueError(f"the backend of {backend.url} cannot move keys in")
    if not isinstance(old_prefix, str) or not old_prefix:
        raise InvalidValueError(f"old_prefix must be a non-empty str, not {old_prefix!r}")
    if namespace.key_prefix.startswith(old_prefix) or old_prefix.startswith(namespace.key_prefix):
        raise InvalidValueError(
            f"old_prefix {old_prefix!r} overlaps the tenant's own namespace "
            f"{namespace.key_prefix!r}: there is nothing to move"
        )
    started = time.perf_counter()
    meter = ProgressMeter("migrate_from", progress)
    report = MigrationReport(store.tenant, old_prefix, dry_run=dry_run, copy=copy)
    tally = _Report(report, max_reported)
    writer = store._writer
    # The scripts' pace: the store's budget (its ``count`` is the SCAN's).
    pace = Pace(store.budget_ms)
    write_kind = MOVE_WRITE if writer is backend else MOVE_INDEX_WRITE
    seen: set[str] = set()
    # Old keys the old service changed while this pass moved them: another pass.
    retry: set[str] = set()

    def relative_of(old_key: str) -> str | None:
        try:
            return check_key(old_key[len(old_prefix) :])
        except ValueError:
            return None

    def withdrawal(relative: str) -> MoveIn:
        return MoveIn(namespace.key(relative), relative, "none", "", -2, [])

    async def write(moves: list[MoveIn]) -> list[str]:
        """One ``migrate_write`` per shard and part (a shard's keys, index and ledger share
        one slot); with ``dry_run``, only the statuses."""
        statuses = [""] * len(moves)
        by_shard: dict[int, list[int]] = {}
        for position, move in enumerate(moves):
            by_shard.setdefault(namespace.shard_of(move.member), []).append(position)
        for shard, positions in by_shard.items():
            ledger = ledgers(namespace)[shard]
            pacer = await backend.move_pacer(write_kind, pace, ledger)
            rest = positions
            while rest:
                budget = pacer.budget()
                part, spent, full = _part(moves, rest, budget)
                rest = rest[len(part) :]
                started = time.perf_counter()
                written = await writer.migrate_write(
                    ledger, [moves[i] for i in part], max_list_items, check=dry_run
                )
                seconds = time.perf_counter() - started
                pacer.measured(seconds, keys=len(part), spent=spent, full=full)
                for position, status in zip(part, written, strict=True):
                    statuses[position] = status
        return statuses

    async def handle(old_keys: list[str]) -> None:
        for first in range(0, len(old_keys), READ_BATCH):
            await handle_part(old_keys[first : first + READ_BATCH])

    async def handle_part(old_keys: list[str]) -> None:
        olds = await backend.migrate_read(old_keys, max_list_items, pace)
        moves: list[MoveIn] = []
        sources: list[OldKey] = []
        for old in olds:
            relative = relative_of(old.key)
            if old.kind == "none" and relative is not None:
                # Gone since it was seen (deleted, expired): if this migration copied it
                # (an earlier pass or run), the copy is withdrawn.
                moves.append(withdrawal(relative))
            elif old.kind == "none":
                report.vanished += 1
                continue
            elif old.kind not in ("string", "list") or relative is None:
                tally.name("unsupported", old.key)
                continue
            elif not _is_json(old):
                tally.name("not_json", old.key)
                continue
            else:
                target = namespace.key(relative)
                moves.append(
                    MoveIn(target, relative, old.kind, old.fingerprint, old.expire_at_ms, old.items)
                )
            sources.append(old)
        if not moves:
            return
        statuses = await write(moves)
        removable: list[tuple[OldKey, MoveIn]] = []
        for old, move, status in zip(sources, moves, statuses, strict=True):
            if status in ("withdrawn", "absent"):
                report.vanished += 1
            elif status == "expired":
                report.expired += 1
            elif status == "conflict":
                tally.name("conflicts", old.key)
            elif copy or dry_run:  # the old key stays
                if status == "same":
                    report.already_present += 1
                else:
                    report.moved += 1
            else:
                removable.append((old, move))
        if not removable:
            return
        outcomes = await backend.migrate_delete(
            [(old.key, old.fingerprint, old.expire_at_ms) for old, _ in removable],
            max_list_items,
            pace,
        )
        gone: list[MoveIn] = []
        for (old, move), outcome in zip(removable, outcomes, strict=True):
            if outcome == "removed":
                report.moved += 1
            elif outcome == "changed":  # written again, or its TTL changed: another pass
                retry.add(old.key)
            else:  # gone: deleted after the copy was made, so the copy goes too
                gone.append(withdrawal(move.member))
                report.vanished += 1
        if gone:
            await write(gone)

    def tell() -> None:
        meter.add(0, moved=report.moved - meter.moved)

    pages = backend.scan(escape_glob(old_prefix) + "*", Pace(store.budget_ms, count))
    async with contextlib.aclosing(pages):
        async for page in pages:
            fresh = [key for key in dict.fromkeys(decode_keys(page)) if key not in seen]
            if not fresh:
                continue
            seen.update(fresh)
            report.scanned += len(fresh)
            await handle(fresh)
            meter.add(len(fresh), moved=report.moved - meter.moved)
    for _ in range(MAX_PASSES):
        if not retry:
            break
        pending = sorted(retry)
        retry.clear()
        await handle(pending)  # (handle goes READ_BATCH keys at a time)
        tell()
    for key in sorted(retry):
        tally.name("changed", key)
    report.duration_s = time.perf_counter() - started
    return report


def _part(moves: list[MoveIn], positions: list[int], budget: int) -> tuple[list[int], int, bool]:
    """The first positions of ``positions`` that one write may carry: at most
    :data:`WRITE_BATCH` keys and ``budget`` units of work, one key at least; the units they
    weigh, and whether the budget cut the part short."""
    part: list[int] = []
    spent = 0
    for position in positions[:WRITE_BATCH]:
        move = moves[position]
        cost = move_cost(move.kind, move.items)
        if part and spent + cost > budget:
            return part, spent, True
        part.append(position)
        spent += cost
    return part, spent, spent >= budget
