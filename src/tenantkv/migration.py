"""Moving in: adopt a tenant's keys from another key layout, live, without losing a write.

The service tenantkv replaces kept a tenant's data under ``tenant:<id>:<key>``;
:meth:`TenantStore.migrate_from` moves every key under such a prefix into the
tenant's namespace, with its value, its type (string or list) and what is
left of its TTL, and the index entry when the tenant has an index. It SCANs
the old prefix (bounded COUNT, never KEYS) and handles each page in three
bounded server calls per hash slot involved:

1. **read** each old key atomically: type, content, fingerprint (a hash of
   type and content), absolute expiry time;
2. **write** each new key, in one script on the tenant's slot: unless its
   expiry time has passed (an expired key is not resurrected), and unless the
   new key already holds something else than the migration's own last copy
   of it (a **conflict**: the new key is kept, nothing is overwritten, the old
   key stays, and both are reported). What the migration writes is noted in
   the tenant's *ledger*, ``<prefix>:{<tenant>}#moved`` (per shard: member ->
   fingerprint), so a later run knows its own copies; ``clear()`` drops it. A
   new key that already holds the same content counts as copied (a run that
   was interrupted, or a ``copy`` run before);
3. **remove** each old key, in one script on its slot, *only if its
   fingerprint is still the one read in step 1*.

The rule for live traffic, then (last writer wins, nothing lost): the old
service may go on writing old keys during the move. A key it writes again
after step 1 is not removed in step 3: it is read and copied again in a later
pass, or by a later run (overwriting the new key, since that still holds the
migration's own copy), until it is removed unchanged. So the last write to
the old key is the one that ends up in the new layout. If the *new* service
has written the new key meanwhile, the new key is newer: it is kept, and the
old key is left and reported as a conflict, never silently dropped. Every step
is idempotent, so a run that was interrupted (Ctrl-C, a crash) is finished by
running it again, and nothing is moved twice.

Values must be what tenantkv stores (JSON); a string or list item that is not
JSON is reported, not moved. Other Redis types are reported, and so are lists
longer than ``max_list_items`` (read in one command, they would exceed the
time budget of a command).

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
from .backends.base import MigratingBackend, MoveIn, OldKey
from .codec import decode_keys
from .errors import DecodeError, InvalidValueError
from .glob import escape_glob
from .namespace import Namespace
from .pacing import Pace
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
DEFAULT_MAX_LIST_ITEMS = 10_000
#: Keys per read or remove script (about 4 us of server time each on a 2-vCPU VM), and per
#: write script (about 12 us each with the index: it also checks the new key, notes the
#: ledger and updates the index), so that each command stays near 1 ms of server time.
READ_BATCH = 200
WRITE_BATCH = 64
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

    Counts are exact; the key lists (old keys) name at most ``max_reported`` each.
    """

    tenant: str
    old_prefix: str
    dry_run: bool = False
    copy: bool = False
    #: Old keys seen by the SCAN of the old prefix.
    scanned: int = 0
    #: Written into the tenant's namespace and removed from the old layout (with
    #: ``copy``: written, old key kept; with ``dry_run``: would be).
    moved: int = 0
    #: The new layout already held the same content (an earlier run, a copy).
    already_present: int = 0
    #: Expired before they could be written: not resurrected.
    expired: int = 0
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
    seen: set[str] = set()
    # Old keys the old service changed while this run moved them: another pass.
    retry: set[str] = set()

    def relative_of(old_key: str) -> str | None:
        try:
            return check_key(old_key[len(old_prefix) :])
        except ValueError:
            return None

    async def handle(old_keys: list[str]) -> None:
        for first in range(0, len(old_keys), READ_BATCH):
            await handle_part(old_keys[first : first + READ_BATCH])

    async def handle_part(old_keys: list[str]) -> None:
        olds = await backend.migrate_read(old_keys, max_list_items)
        moves: list[MoveIn] = []
        sources: list[OldKey] = []
        for old in olds:
            if old.kind == "none":
                continue  # gone meanwhile (expired, or deleted by the old service)
            relative = relative_of(old.key)
            if old.kind not in ("string", "list") or relative is None:
                tally.name("unsupported", old.key)
                continue
            if not _is_json(old):
                tally.name("not_json", old.key)
                continue
            if dry_run:
                report.moved += 1
                continue
            target = namespace.key(relative)
            move = MoveIn(target, relative, old.kind, old.fingerprint, old.expire_at_ms, old.items)
            moves.append(move)
            sources.append(old)
        if not moves:
            return
        # One write per shard (each shard's keys, index and ledger share one slot).
        by_shard: dict[int, list[int]] = {}
        for position, move in enumerate(moves):
            by_shard.setdefault(namespace.shard_of(move.member), []).append(position)
        statuses: list[str] = [""] * len(moves)
        for shard, positions in by_shard.items():
            ledger = ledgers(namespace)[shard]
            for first in range(0, len(positions), WRITE_BATCH):
                part = positions[first : first + WRITE_BATCH]
                written = await writer.migrate_write(
                    ledger, [moves[i] for i in part], max_list_items
                )
                for position, status in zip(part, written, strict=True):
                    statuses[position] = status
        removable: list[OldKey] = []
        for old, status in zip(sources, statuses, strict=True):
            if status == "expired":
                report.expired += 1
            elif status == "conflict":
                tally.name("conflicts", old.key)
            else:
                if status == "same" and old.key not in retry:
                    report.already_present += 1
                    if copy:
                        continue
                elif copy:
                    report.moved += 1
                    continue
                removable.append(old)
        if copy or not removable:
            return
        removed = await backend.migrate_delete(
            [(old.key, old.fingerprint) for old in removable], max_list_items
        )
        for old, gone in zip(removable, removed, strict=True):
            if gone:
                report.moved += 1
                retry.discard(old.key)
            else:
                retry.add(old.key)  # written again meanwhile: another pass

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
        await handle(sorted(retry))  # (handle goes READ_BATCH keys at a time)
    for key in retry:
        tally.name("changed", key)
    report.duration_s = time.perf_counter() - started
    return report
