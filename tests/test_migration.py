"""Moving in from the predecessor's layout (``tenant:<id>:<key>``): every backend kind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

import tenantkv
from tenantkv import TenantStore
from tenantkv.backends.base import MoveIn
from tenantkv.backends.memory import MemoryBackend, MemoryKeyspace
from tenantkv.backends.redis.scripts import script_source
from tenantkv.migration import READ_BATCH, WRITE_BATCH, _part
from tenantkv.pacing import MOVE_BUDGET, MOVE_READ, MoveCost, MovePacer, Pace, StepCost, StepKind

from .conftest import OpenTenant, new_tenant
from .servers import FixtureServer
from .slowlog_checks import assert_only_preempted


class OldLayout:
    """Writes keys the way the old service did, straight into the same Redis (or keyspace)."""

    def __init__(self, store: TenantStore) -> None:
        self.prefix = f"tenant:{store.tenant}:"
        backend = store.backend
        self.keyspace: MemoryKeyspace | None = None
        self.client: Any = None
        if isinstance(backend, MemoryBackend):
            self.keyspace = backend.keyspace
        else:
            self.client = backend.client  # type: ignore[attr-defined]

    def key(self, name: str) -> str:
        return self.prefix + name

    async def set(self, name: str, value: str | bytes, px: int | None = None) -> None:
        raw = value.encode() if isinstance(value, str) else value
        if self.keyspace is not None:
            at = None if px is None else self.keyspace.clock() + px
            self.keyspace.put(self.key(name), raw, at)
        else:
            await self.client.set(self.key(name), raw, px=px)

    async def rpush(self, name: str, *items: str) -> None:
        if self.keyspace is not None:
            entry = self.keyspace.lookup(self.key(name))
            if entry is None:
                self.keyspace.put(self.key(name), deque(i.encode() for i in items), None)
            else:
                assert isinstance(entry.value, deque)
                entry.value.extend(i.encode() for i in items)
        else:
            await self.client.rpush(self.key(name), *items)

    async def hset(self, name: str) -> None:
        if self.keyspace is None:
            await self.client.hset(self.key(name), "f", "v")

    async def exists(self, name: str) -> bool:
        if self.keyspace is not None:
            return self.keyspace.lookup(self.key(name)) is not None
        return bool(await self.client.exists(self.key(name)))

    async def drop(self, name: str) -> None:
        if self.keyspace is not None:
            self.keyspace.remove(self.key(name))
        else:
            await self.client.delete(self.key(name))


@pytest.fixture
async def store(open_tenant: OpenTenant) -> TenantStore:
    return await open_tenant(new_tenant("buyer.example"))


@pytest.fixture
def old(store: TenantStore) -> OldLayout:
    return OldLayout(store)


async def seed(old: OldLayout, n: int = 40) -> None:
    for i in range(n):
        await old.set(f"search:{i}", json.dumps({"txn": i}), px=1_800_000)
        await old.rpush(f"search:{i}:responses", json.dumps({"bpp": i}), json.dumps({"bpp": -i}))
    await old.set("status:o1", json.dumps({"paid": True}))  # no TTL (24 h in the app)


async def test_every_key_moves_with_its_value_type_and_ttl(
    store: TenantStore, old: OldLayout
) -> None:
    await seed(old)
    await old.set("not-json", "<xml/>")
    await old.rpush("list-not-json", json.dumps(1), "oops")
    await old.hset("a-hash")
    report = await store.migrate_from(old.prefix)
    assert report.moved == 81
    assert sorted(report.not_json) == [old.key("list-not-json"), old.key("not-json")]
    assert report.not_json_count == 2
    if old.keyspace is None:  # memory:// has no hashes
        assert report.unsupported == [old.key("a-hash")]
    for i in range(40):
        assert await store.get(f"search:{i}") == {"txn": i}
        assert await store.list_get_all(f"search:{i}:responses") == [{"bpp": i}, {"bpp": -i}]
        ttl = await store.get_ttl(f"search:{i}")
        assert ttl is not None
        assert 1_700_000 < ttl <= 1_800_000
        assert not await old.exists(f"search:{i}")
    assert await store.get_ttl("status:o1") is None
    assert await store.get("status:o1") == {"paid": True}
    # What was not moved is still where it was, untouched.
    assert await old.exists("not-json")
    assert await old.exists("list-not-json")
    assert await store.count_keys() == 81
    if store.strategy == "index":
        assert (await store.verify_index()).clean


async def test_dry_run_counts_and_moves_nothing(store: TenantStore, old: OldLayout) -> None:
    await seed(old, 10)
    report = await store.migrate_from(old.prefix, dry_run=True)
    assert (report.dry_run, report.moved, report.scanned) == (True, 21, 21)
    assert await store.keys() == []
    assert await old.exists("search:3")


async def test_copy_keeps_the_old_keys_and_running_again_moves_nothing_twice(
    store: TenantStore, old: OldLayout
) -> None:
    await seed(old, 10)
    copied = await store.migrate_from(old.prefix, copy=True)
    assert copied.moved == 21
    assert await old.exists("search:3")
    again = await store.migrate_from(old.prefix, copy=True)
    assert (again.moved, again.already_present) == (0, 21)
    moved = await store.migrate_from(old.prefix)  # now for real: the copies are the same
    assert (moved.moved, moved.conflict_count) == (21, 0)
    assert not await old.exists("search:3")
    final = await store.migrate_from(old.prefix)
    assert (final.scanned, final.moved) == (0, 0)
    assert await store.count_keys() == 21


async def test_an_old_key_written_again_after_the_move_replaces_the_copy(
    store: TenantStore, old: OldLayout
) -> None:
    """Last writer wins: the old service writes a key again after a copy was made; the
    next run overwrites the copy (still the migration's own) with the newer value."""
    await old.set("select:t1:m1", json.dumps({"v": 1}))
    await store.migrate_from(old.prefix, copy=True)
    await old.set("select:t1:m1", json.dumps({"v": 2}))  # the old service, later
    report = await store.migrate_from(old.prefix)
    assert (report.moved, report.conflict_count) == (1, 0)
    assert await store.get("select:t1:m1") == {"v": 2}


async def test_a_key_the_new_service_wrote_is_never_overwritten(
    store: TenantStore, old: OldLayout
) -> None:
    await old.set("select:t1:m1", json.dumps({"from": "old"}))
    await old.set("select:t1:m2", json.dumps({"from": "old"}))
    await store.set("select:t1:m1", {"from": "new"})  # written through tenantkv first
    await store.migrate_from(old.prefix, copy=True)
    await store.set("select:t1:m2", {"from": "new"})  # after the copy, before the move
    report = await store.migrate_from(old.prefix)
    assert report.conflict_count == 2
    assert sorted(report.conflicts) == [old.key("select:t1:m1"), old.key("select:t1:m2")]
    assert await store.get("select:t1:m1") == {"from": "new"}
    assert await store.get("select:t1:m2") == {"from": "new"}
    assert await old.exists("select:t1:m1")  # left in place, reported: nothing lost
    assert report.left_behind == 2


async def test_a_key_that_expires_is_not_resurrected(store: TenantStore, old: OldLayout) -> None:
    for i in range(200):
        await old.set(f"short:{i}", json.dumps(i), px=1 + i % 20)
    await old.set("long", json.dumps(0), px=60_000)
    await asyncio.sleep(0.01)
    report = await store.migrate_from(old.prefix, count=10)
    assert accounted(report) == report.scanned
    await asyncio.sleep(0.03)
    # Whatever was moved kept its expiry time: nothing outlived its old key.
    assert await store.keys() == ["long"]
    assert report.moved >= 1
    for i in range(200):
        assert await store.get(f"short:{i}") is None


async def test_a_writer_of_the_old_service_during_the_move_loses_nothing(
    store: TenantStore, old: OldLayout
) -> None:
    await seed(old, 100)
    stop = asyncio.Event()
    last: dict[str, int] = {}

    async def old_service() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            name = f"search:{n % 100}"
            await old.set(name, json.dumps({"txn": n % 100, "rev": n}), px=1_800_000)
            last[name] = n
            await asyncio.sleep(0)

    writer = asyncio.create_task(old_service())
    try:
        report = await store.migrate_from(old.prefix, count=20)
    finally:
        stop.set()
        await writer
    assert accounted(report) == report.scanned == 201
    await store.migrate_from(old.prefix)  # the cut-over: the old service has stopped
    for name, rev in last.items():
        assert await store.get(name) == {"txn": int(name.split(":")[1]), "rev": rev}
        assert not await old.exists(name)
    assert await store.count_keys() == 201


async def test_a_run_cut_short_is_finished_by_running_it_again(
    store: TenantStore, old: OldLayout
) -> None:
    await seed(old, 200)
    calls = 0

    def interrupt(progress: tenantkv.Progress) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await store.migrate_from(old.prefix, count=50, progress=interrupt)
    moved_so_far = await store.count_keys()
    assert 0 < moved_so_far < 401
    report = await store.migrate_from(old.prefix, count=50)
    assert report.moved == 401 - moved_so_far
    assert await store.count_keys() == 401
    if store.strategy == "index":
        assert (await store.verify_index()).clean


def accounted(report: tenantkv.MigrationReport) -> int:
    """Every old key seen, counted once by its outcome."""
    return (
        report.moved
        + report.already_present
        + report.expired
        + report.vanished
        + report.left_behind
    )


def before_each_removal(
    monkeypatch: pytest.MonkeyPatch, store: TenantStore, act: Callable[[], Awaitable[None]]
) -> None:
    """Run ``act`` (the old service, say) between the copy and the removal of old keys: at the
    worst moment, every time (the backend's own removal then runs, against the real server)."""
    backend: Any = store.backend
    remove = backend.migrate_delete

    async def late(keys: Any, max_items: int, pace: Any) -> list[str]:
        await act()
        result: list[str] = await remove(keys, max_items, pace)
        return result

    monkeypatch.setattr(backend, "migrate_delete", late)


async def test_a_ttl_the_old_service_refreshes_during_the_move_is_kept(
    store: TenantStore, old: OldLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old service re-SETs an entry with the same value and a fresh TTL after it was
    copied: the old key is not removed with the stale TTL; the next pass carries the new one."""
    value = json.dumps({"state": "selected"})
    await old.set("select:t1:m1", value, px=60_000)
    refreshed = 0

    async def refresh() -> None:
        nonlocal refreshed
        if refreshed == 0:
            await old.set("select:t1:m1", value, px=1_800_000)
        refreshed += 1

    before_each_removal(monkeypatch, store, refresh)
    report = await store.migrate_from(old.prefix)
    assert refreshed == 2  # the first removal found the TTL changed; the second pass removed it
    assert (report.moved, report.left_behind) == (1, 0)
    ttl = await store.get_ttl("select:t1:m1")
    assert ttl is not None
    assert ttl > 1_700_000
    assert await store.get("select:t1:m1") == {"state": "selected"}
    assert not await old.exists("select:t1:m1")


async def test_a_copy_takes_the_ttl_the_old_key_has_now(store: TenantStore, old: OldLayout) -> None:
    value = json.dumps({"state": "on"})
    await old.set("status:o1", value, px=60_000)
    await old.set("status:o2", value, px=60_000)
    await store.migrate_from(old.prefix, copy=True)
    await old.set("status:o1", value, px=1_800_000)  # refreshed by the old service
    await old.set("status:o2", value)  # made permanent
    report = await store.migrate_from(old.prefix)
    assert (report.moved, report.conflict_count) == (2, 0)
    ttl = await store.get_ttl("status:o1")
    assert ttl is not None
    assert ttl > 1_700_000
    assert await store.get_ttl("status:o2") is None


async def test_a_key_the_old_service_deletes_during_the_move_does_not_live_on(
    store: TenantStore, old: OldLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(old, 5)

    async def cancel_transaction() -> None:
        # Once it is copied, before its removal. (Dropped before the SCAN reached it, it would
        # never be seen: with small SCAN pages, the removal of an earlier page comes first.)
        if await store.exists("search:3"):
            await old.drop("search:3")

    before_each_removal(monkeypatch, store, cancel_transaction)
    report = await store.migrate_from(old.prefix, count=2)  # several pages, several removals
    assert report.vanished == 1
    assert report.moved == 10
    assert accounted(report) == report.scanned == 11
    assert await store.get("search:3") is None  # the copy was withdrawn
    assert await store.list_get_all("search:3:responses") != []
    assert await store.count_keys() == 10
    if store.strategy == "index":
        assert (await store.verify_index()).clean


async def test_a_dry_run_tells_conflicts_and_copies_apart(
    store: TenantStore, old: OldLayout
) -> None:
    await seed(old, 10)
    await store.migrate_from(old.prefix, copy=True)
    await store.set("search:4", {"from": "new"})  # the new service wrote it since
    await old.set("search:new", json.dumps({"txn": "new"}))  # the old service, since
    report = await store.migrate_from(old.prefix, dry_run=True)
    assert report.scanned == 22
    assert (report.moved, report.already_present, report.conflict_count) == (1, 20, 1)
    assert report.conflicts == [old.key("search:4")]
    assert accounted(report) == report.scanned
    assert await store.get("search:new") is None  # nothing written
    assert await old.exists("search:4")


async def test_bad_old_prefixes_are_refused(store: TenantStore) -> None:
    for prefix in ("", store.namespace.key_prefix, store.namespace.key_prefix[:3]):
        with pytest.raises(tenantkv.InvalidValueError):
            await store.migrate_from(prefix)


# -- Redis: the server's view ------------------------------------------------------------------


@pytest.fixture
def slow_server() -> Iterator[FixtureServer]:
    """A server whose SLOWLOG keeps every command over 1 ms. (At 0 it would also keep each
    command the scripts call, 13 per key moved: 20,000 keys would overflow it.)"""
    with FixtureServer(extra_args=("--slowlog-log-slower-than", "1000")) as server:
        yield server


@pytest.fixture
def every_command_server() -> Iterator[FixtureServer]:
    """A server whose SLOWLOG keeps every command (for a small move)."""
    with FixtureServer(extra_args=("--slowlog-log-slower-than", "0")) as server:
        yield server


@pytest.mark.redis
async def test_the_move_never_blocks_and_never_sends_keys(slow_server: FixtureServer) -> None:
    async with tenantkv.open_store(
        slow_server.url, tenant="buyer.example.com", index=True
    ) as store:
        old = OldLayout(store)
        with redis.Redis(host=slow_server.host, port=slow_server.port) as raw:
            pipe = raw.pipeline(transaction=False)
            for i in range(20_000):
                pipe.set(old.key(f"search:{i:05d}"), json.dumps({"txn": i}), px=1_800_000)
            pipe.execute()
            raw.slowlog_reset()
            raw.config_set("slowlog-max-len", 100_000)
            report = await store.migrate_from(old.prefix)
            entries = raw.slowlog_get(100_000)
            stats: dict[str, Any] = raw.info("commandstats")
        assert report.moved == 20_000
        assert (await store.verify_index()).clean
    assert len(entries) < 100_000  # SLOWLOG holds the whole move
    assert "cmdstat_keys" not in stats
    # Every command stays short (COUNT 1000 per page, bounded scripts); one preempted on this
    # 2-vCPU machine may show up, a long one may not.
    assert_only_preempted([entry for entry in entries if entry["duration"] >= 10_000])


@pytest.mark.redis
async def test_long_lists_move_in_short_commands(slow_server: FixtureServer) -> None:
    """Lists of 1,000 responses: the read, write and remove scripts split their work by the
    move budget, where one call per 200 keys would read 60,000 items at once."""
    async with tenantkv.open_store(slow_server.url, tenant="buyer.example.com") as store:
        old = OldLayout(store)
        items = [json.dumps({"bpp": f"bpp-{i:04d}.example.com", "price": i}) for i in range(1_000)]
        with redis.Redis(host=slow_server.host, port=slow_server.port) as raw:
            for n in range(60):
                raw.rpush(old.key(f"search:{n}:responses"), *items)
            raw.slowlog_reset()
            raw.config_set("slowlog-max-len", 100_000)
            raw.config_resetstat()
            report = await store.migrate_from(old.prefix)
            entries = raw.slowlog_get(100_000)
            calls = raw.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert report.moved == 60
        assert await store.list_get_all("search:7:responses") == [json.loads(i) for i in items]
    # Read, write and remove: about one call per list each (each is most of the budget).
    assert calls >= 3 * 60, calls
    scripts = [entry for entry in entries if entry["command"].startswith(b"EVALSHA")]
    assert_only_preempted([entry for entry in scripts if entry["duration"] >= 10_000])


#: The migration's scripts by the SHA1 that EVALSHA names them by.
SCRIPTS = {
    hashlib.sha1(script_source(f"migrate_{name}").encode()).hexdigest().encode(): name
    for name in ("read", "write", "delete")
}


def keys_per_script(entries: list[dict[str, Any]]) -> dict[str, list[int]]:
    """How many keys each migration script of SLOWLOG ``entries`` was sent, per script: the
    ``numkeys`` of ``EVALSHA sha numkeys ...`` (a write's first three keys are bookkeeping; a
    read or remove may stop before its last key, at its budget)."""
    carried: dict[str, list[int]] = {}
    for entry in entries:
        words = entry["command"].split(b" ", 3)
        if words[0].upper() == b"EVALSHA" and words[1] in SCRIPTS:
            name = SCRIPTS[words[1]]
            carried.setdefault(name, []).append(int(words[2]) - (3 if name == "write" else 0))
    return carried


@pytest.mark.redis
@pytest.mark.parametrize("index", [False, True], ids=["plain", "index"])
async def test_the_scripts_carry_what_the_budget_allows(
    every_command_server: FixtureServer, index: bool
) -> None:
    """The same 2,000 keys moved by a store with the default budget and by one with a
    twentieth of it: the second's scripts carry far fewer keys each (sized from the cost
    measured, where the first's reach the caps or near), and neither's exceed the caps."""
    server = every_command_server
    with redis.Redis(host=server.host, port=server.port) as raw:
        for name in ("read", "write", "delete"):  # (no first EVALSHA refused: NOSCRIPT)
            raw.script_load(script_source(f"migrate_{name}"))
    carried: dict[float, dict[str, list[int]]] = {}
    for budget_ms in (1.0, 0.05):
        tenant = f"buyer-{budget_ms}.example.com"
        async with tenantkv.open_store(
            server.url, tenant=tenant, index=index, budget_ms=budget_ms
        ) as store:
            old = OldLayout(store)
            with redis.Redis(host=server.host, port=server.port) as raw:
                pipe = raw.pipeline(transaction=False)
                for i in range(1_000):
                    pipe.set(old.key(f"search:{i:04d}"), json.dumps({"txn": i}), px=1_800_000)
                    pipe.rpush(old.key(f"search:{i:04d}:responses"), json.dumps({"bpp": i}))
                pipe.execute()
                raw.config_set("slowlog-max-len", 200_000)
                raw.slowlog_reset()
                report = await store.migrate_from(old.prefix)
                entries = raw.slowlog_get(200_000)
            assert report.moved == 2_000
            assert accounted(report) == report.scanned
            assert await store.list_get_all("search:0042:responses") == [{"bpp": 42}]
            if index:
                assert (await store.verify_index()).clean
        assert len(entries) < 200_000  # SLOWLOG holds the whole move
        carried[budget_ms] = keys_per_script(entries)
        if budget_ms == 1.0:
            assert_only_preempted([entry for entry in entries if entry["duration"] >= 10_000])
    default, small = carried[1.0], carried[0.05]
    assert set(default) == set(small) == {"read", "write", "delete"}
    for name, caps in (("read", READ_BATCH), ("delete", READ_BATCH), ("write", WRITE_BATCH)):
        assert max(default[name] + small[name]) <= caps, name
        # Each key is written once, and read and removed at least once: in more calls.
        assert sum(default[name]) >= 2_000, name
        assert sum(small[name]) >= 2_000, name
        assert len(small[name]) > len(default[name]), name
        assert statistics.fmean(small[name]) <= statistics.fmean(default[name]) / 2, (
            name,
            statistics.fmean(small[name]),
            statistics.fmean(default[name]),
        )
    assert sum(default["write"]) == sum(small["write"]) == 2_000


# -- the pacing of the scripts, without a server -----------------------------------------------


def move_cost_of(kind: StepKind = MOVE_READ) -> MoveCost:
    return MoveCost(StepCost(kind))


def test_a_move_cost_learns_the_median_of_a_window_of_calls() -> None:
    cost = move_cost_of()
    # The first window is three calls; their median is what is learned (us per unit), so
    # one of them preempted for 5 ms does not count.
    cost.measured(100e-6, keys=50, spent=100, full=False)
    cost.measured(5e-3, keys=50, spent=100, full=False)
    assert cost.cost.us_per_key is None
    cost.measured(200e-6, keys=50, spent=100, full=False)
    assert cost.cost.us_per_key == pytest.approx(2.0)
    # Then windows of eight: one call preempted for 5 ms does not make the next calls small.
    for seconds in [200e-6] * 7 + [5e-3]:
        cost.measured(seconds, keys=50, spent=100, full=True)
    assert cost.cost.us_per_key == pytest.approx(2.0)


def test_a_move_cost_takes_off_the_round_trip_of_a_call_that_does_nothing() -> None:
    cost = move_cost_of()
    cost.floor_s = 100e-6
    cost.measured(300e-6, keys=50, spent=100, full=True)
    cost.measured(300e-6, keys=50, spent=100, full=True)
    cost.measured(300e-6, keys=50, spent=100, full=True)
    assert cost.cost.us_per_key == pytest.approx(2.0)  # (300 - 100) / 100
    # A floor measured too long: half the round trip counts all the same.
    cost = move_cost_of()
    cost.floor_s = 1e-3
    cost.measured(300e-6, keys=50, spent=100, full=True)
    cost.measured(300e-6, keys=50, spent=100, full=True)
    cost.measured(300e-6, keys=50, spent=100, full=True)
    assert cost.cost.us_per_key == pytest.approx(1.5)


def test_a_small_call_for_want_of_keys_is_not_measured() -> None:
    cost = move_cost_of()
    for _ in range(4):  # a page's last key or two: mostly the fixed cost of a call
        cost.measured(200e-6, keys=2, spent=3, full=False)
    assert cost.cost.us_per_key is None
    # A call its budget cut short is measured, however few keys it carried (one long list).
    cost.measured(400e-6, keys=1, spent=1_001, full=True)
    cost.measured(400e-6, keys=1, spent=1_001, full=True)
    cost.measured(400e-6, keys=1, spent=1_001, full=True)
    assert cost.cost.us_per_key == pytest.approx(400 / 1_001)


def test_a_pacer_gives_half_the_budget_over_the_cost_within_the_bounds() -> None:
    cost = move_cost_of()
    # Unmeasured: the kind's first guess.
    assert MovePacer(cost, Pace(1.0)).budget() == int(500 / MOVE_READ.first_us_per_key)
    cost.cost.observe(5.0)
    assert MovePacer(cost, Pace(1.0)).budget() == 100
    assert MovePacer(cost, Pace(0.1)).budget() == 10
    assert MovePacer(cost, Pace(0.001)).budget() == 1  # one key at least
    cost.cost.observe(0.01)
    assert MovePacer(cost, Pace(10.0)).budget() == MOVE_BUDGET  # never above


def moves_of(*sizes: int) -> list[MoveIn]:
    """One string move per size: a value of ``size`` bytes (``move_cost``: 1 + size // 256)."""
    return [MoveIn(f"k{i}", f"m{i}", "string", "", -1, [b"x" * n]) for i, n in enumerate(sizes)]


def test_a_write_carries_the_keys_that_fit_its_budget() -> None:
    moves = moves_of(*[10] * 40)  # 1 unit each
    positions = list(range(40))
    assert _part(moves, positions, 1_000) == (positions[:WRITE_BATCH], WRITE_BATCH, False)
    assert _part(moves, positions, 5) == (positions[:5], 5, True)
    assert _part(moves, positions[38:], 1_000) == ([38, 39], 2, False)
    big = moves_of(10, 10, 256 * 99, 10)  # 1, 1, 100, 1 units
    assert _part(big, [0, 1, 2, 3], 50) == ([0, 1], 2, True)  # the long value waits
    assert _part(big, [2, 3], 50) == ([2], 100, True)  # and goes alone, over the budget


async def test_the_memory_backend_reads_and_removes_in_parts_with_others_between() -> None:
    """With a budget of a unit per part, each key is its own part, and other tasks run
    between parts, as other clients do between a server's script calls."""
    keyspace = MemoryKeyspace()
    backend = MemoryBackend(keyspace)
    for i in range(5):
        keyspace.put(f"old:{i}", json.dumps({"txn": i}).encode(), None)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        tiny = Pace(0.000_001)
        olds = await backend.migrate_read([f"old:{i}" for i in range(5)], 1_000, tiny)
        read_ticks = ticks
        outcomes = await backend.migrate_delete(
            [(old.key, old.fingerprint, old.expire_at_ms) for old in olds], 1_000, tiny
        )
    finally:
        task.cancel()
    assert [old.key for old in olds] == [f"old:{i}" for i in range(5)]
    assert [json.loads(old.items[0]) for old in olds] == [{"txn": i} for i in range(5)]
    assert outcomes == ["removed"] * 5
    # Four pauses in each (the ticker ran once before).
    assert read_ticks >= 1 + 4
    assert ticks >= read_ticks + 4
