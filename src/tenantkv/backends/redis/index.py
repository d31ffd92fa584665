"""The per-tenant key index on Redis: two sorted sets kept by Lua scripts.

Each write of an indexed store is one ``EVALSHA`` of a script from
``lua/`` (beside this module) that does the write and updates the index in the same
atomic step (a script the server lost is loaded again on ``NOSCRIPT``). Every read or
repair is one script over at most ``count`` entries. Every key a script
touches is passed in ``KEYS`` and carries the tenant's (or the tenant shard's)
hash tag, so the same
scripts run on Redis Cluster. Needs Redis >= 7.0 (``PEXPIRETIME``,
``ZRANGE ... BYLEX LIMIT``) or any Valkey; the version comes from ``HELLO``,
so opening an indexed store needs no ``INFO``.

Listing (:meth:`RedisKeyIndex.walk`) does not run a script when nothing has
expired: each chunk is ``ZRANGE exp 0 0 WITHSCORES`` (the earliest expiry),
``TIME`` and ``ZRANGE idx r-1 r+n-1`` (by rank: the entry before the chunk
and its n), written together on a connection of the walk's own, the next
chunk's before this one's reply is read. The entry before shows whether
writes meanwhile opened a gap, which is then read by name. If the earliest
expiry is not in the past, every member read was live (an entry added since
has a future expiry, and a prune only removes expired entries); otherwise the
same range is read again through ``range.lua``, which prunes and filters. A
clear (:meth:`RedisKeyIndex.clear`) walks the index by name
(``ZRANGE idx <after> + BYLEX LIMIT 0 n``) and deletes each chunk's keys and
entries in one ``MULTI``/``EXEC``, written before the previous chunk's is
answered (see there).

Layout (see :mod:`tenantkv.index.protocols`): ``<prefix>:{<tenant>}#idx``
holds every key (score 0, ordered by name), ``<prefix>:{<tenant>}#exp`` the
keys with a TTL (score = ``PEXPIRETIME``); a sharded tenant has such a pair
per shard, ``<prefix>:{<tenant>:NN}#idx`` and ``#exp``, for that shard's keys.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import NoScriptError, ResponseError

from ...codec import decode_key, encode_key
from ...errors import (
    BackendError,
    BackendUnavailableError,
    EvictionPolicyError,
    IndexEvictionWarning,
    PermissionDeniedError,
)
from ...fanout import branches, gather_limited
from ...index.protocols import IndexChunk, IndexKeys, IndexStatus, prefix_successor
from ...pacing import INDEX_CLEAR, INDEX_RANGE, INDEX_SCRIPT, Pace, StepKind, WalkPacer
from ..base import BatchOp, MoveIn
from .batching import batch_call, batch_results
from .moving import write_args
from .scripts import script_source
from .walks import Steps
from .wire import ErrorScope, Pacing, Wire, held_wire, pack, pack_keys

__all__ = ["MIN_REDIS_VERSION", "IndexServer", "RedisKeyIndex"]

T = TypeVar("T")

#: Oldest server the index scripts run on.
MIN_REDIS_VERSION = (7, 0)

_SCRIPTS = (
    "set",
    "set_many",
    "unlink",
    "set_ttl",
    "list_push",
    "range",
    "count",
    "check",
    "batch",
    "migrate_write",
)
#: Most keys per check/repair script call. Checking a key costs a PEXPIRETIME call
#: inside the script (several times what SCAN spends per key); the time budget
#: usually makes the slices smaller (see :data:`~tenantkv.pacing.INDEX_SCRIPT`).
CHECK_BATCH = 250
PoolOf = Callable[[str], Awaitable[ConnectionPool]]

#: On a cluster, the errors after which an index walk's own connection is given up and the
#: walk goes on through the cluster client, which follows the slot to its new owner.
_REROUTE = (
    rexc.MovedError,
    rexc.AskError,
    rexc.TryAgainError,
    rexc.ClusterDownError,
    rexc.ConnectionError,
    rexc.TimeoutError,
    OSError,
)


def _ttl_arg(ttl_ms: int | None) -> str:
    return "" if ttl_ms is None else str(ttl_ms)


class IndexServer:
    """What every tenant index of one backend shares: the scripts, and what the server
    allows (checked once, on the first :meth:`prepare`).

    ``errors`` is the backend's error scope: it refuses calls on a closed
    backend and translates redis-py's exceptions.
    """

    def __init__(
        self,
        client: aioredis.Redis | RedisCluster,
        *,
        errors: ErrorScope,
        pacing: Pacing,
        pool: PoolOf,
        connections: int | None = None,
    ) -> None:
        self.client = client
        self.errors = errors
        #: The most connections the backend opens to one server (``None``: no limit).
        self.connections = connections
        #: The backend's learned command costs (:mod:`tenantkv.pacing`).
        self.pacing = pacing
        #: The connection pool of the server holding a key (a cluster: its slot's owner).
        self.pool_of = pool
        self.cluster = isinstance(client, RedisCluster)
        self.scripts = {name: client.register_script(script_source(name)) for name in _SCRIPTS}
        self._ready: asyncio.Future[None] | None = None
        self._eviction: asyncio.Future[str | None] | None = None
        self._warned = False
        #: The server refused ``ZLEXCOUNT``: a prefix's walk goes by name (see ``walk``).
        self.rank_refused = False

    def server_of(self, key: str) -> object:
        """What names the server holding ``key``, for the costs learned per server: ``None``
        on one server; on a cluster the address of the node the slot map names (the key
        itself if the map does not know its slot: a cost of its own until it does)."""
        client = self.client
        if not isinstance(client, RedisCluster):
            return None
        try:
            node = client.get_node_from_key(key)
        except (rexc.RedisError, rexc.RedisClusterException):
            # A slot map out of date (a failover): SlotNotCoveredError is not a RedisError.
            return key
        return key if node is None else (node.host, int(node.port))

    async def prepare(self, *, listing: bool) -> None:
        """Check the server once (version, scripts loaded); with ``listing``, its eviction policy.

        Raises what the check found every time it is asked again (a cached
        answer, no server call).
        """
        await _once(self, "_ready", self._check_version_and_load)
        if not listing:
            return
        warning = await _once(self, "_eviction", self._check_eviction)
        if warning is not None and not self._warned:
            self._warned = True
            warnings.warn(warning, IndexEvictionWarning, stacklevel=3)

    async def _check_version_and_load(self) -> None:
        name, raw = await self._server_version()
        version = tuple(int(part) for part in raw.split(".")[:2] if part.isdigit())
        if name == "redis" and version < MIN_REDIS_VERSION:
            raise BackendError(
                f"the key index needs Redis >= 7.0; the server runs {name} {raw}", command="HELLO"
            )
        # Load the scripts now, so that even the first write is one EVALSHA.
        # (A server that loses them later, e.g. after a restart, gets them
        # again on NOSCRIPT.)
        scripts = list(self.scripts.values())
        with self.errors("SCRIPT EXISTS"):
            loaded = await self.client.script_exists(*(script.sha for script in scripts))
        for script, present in zip(scripts, loaded, strict=True):
            if not present:
                with self.errors("SCRIPT LOAD"):
                    await self.client.script_load(script.script)

    async def _server_version(self) -> tuple[str, str]:
        """``(server name, real version)``: ``("valkey", "9.1.2")``.

        From ``HELLO`` without arguments (a connection command every ACL user
        may send; it switches nothing), so a user denied ``INFO`` can open an
        indexed store. A server without ``HELLO`` (Redis < 6), or a user denied
        it, is asked ``INFO``; there ``redis_version`` is the real version
        (Valkey, whose ``redis_version`` is 7.2.4, always knows HELLO).
        """
        try:
            with self.errors("HELLO"):
                if isinstance(self.client, RedisCluster):  # any node will do
                    await self.client.initialize()  # once: the nodes are known after it
                    node = self.client.get_random_node()
                    reply = await self.client.execute_command("HELLO", target_nodes=node)
                else:
                    reply = await self.client.execute_command("HELLO")  # type: ignore[no-untyped-call]
        except BackendError as exc:
            if not isinstance(exc.__cause__, ResponseError):  # unknown (or refused) HELLO only
                raise
            with self.errors("INFO"):
                info = await self.client.info("server")
            return "redis", str(info.get("redis_version", "0"))
        fields = (
            reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
        )
        text = {decode_key(k): v for k, v in fields.items() if isinstance(k, bytes)}
        name, version = text.get("server", b"redis"), text.get("version", b"0")
        return (
            name.decode() if isinstance(name, bytes) else str(name),
            version.decode() if isinstance(version, bytes) else str(version),
        )

    async def _check_eviction(self) -> str | None:
        """Refuse a server that may evict the index itself; warn if it may evict data early.

        ``maxmemory`` with an ``allkeys-*`` policy evicts any key, the index's
        sorted sets included (listing, counting and clearing would then see
        nothing); with a ``volatile-*`` policy only keys with a TTL go, so the
        index outlives such keys until a prune or ``reindex``. Without
        ``maxmemory`` nothing is evicted whatever the policy. Every primary is
        asked (``INFO memory``, not ``CONFIG``, which managed services refuse). A user
        whose ACL refuses ``INFO`` (a per-tenant user) cannot be told: the check is
        skipped, and ``verify_index()`` is how to find eviction's traces.
        """
        try:
            with self.errors("INFO"):
                if isinstance(self.client, RedisCluster):
                    reply: Any = await self.client.info(
                        "memory", target_nodes=RedisCluster.PRIMARIES
                    )
                    replies = [reply] if "maxmemory_policy" in reply else list(reply.values())
                else:
                    replies = [await self.client.info("memory")]
        except PermissionDeniedError:
            return None
        for info in replies:
            policy = str(info.get("maxmemory_policy", "noeviction"))
            limit = int(info.get("maxmemory", 0))
            if not limit or policy == "noeviction":
                continue
            if policy.startswith("allkeys"):
                raise EvictionPolicyError(
                    f"the key index cannot be kept on this server: maxmemory-policy is {policy} "
                    f"(maxmemory {limit:,} bytes), which may evict the index itself; use "
                    "noeviction or a volatile-* policy, or open the store without index=True",
                    command="INFO",
                )
            return (
                f"maxmemory-policy is {policy} (maxmemory {limit:,} bytes): data keys with a "
                "TTL may be evicted before they expire, and the key index lists them until "
                "they are pruned or reindexed (verify_index() reports them as stale)"
            )
        return None


async def _once(owner: Any, slot: str, check: Callable[[], Awaitable[T]]) -> T:
    """The result of ``check()``, made once and kept in ``owner.<slot>`` (a failed or
    cancelled check, or one that could not reach the server, is made again next time; a
    verdict on the server, another BackendError, is kept)."""
    future: asyncio.Future[T] | None = getattr(owner, slot)
    if future is None:
        future = asyncio.ensure_future(check())
        setattr(owner, slot, future)
    try:
        return await asyncio.shield(future)
    except BackendError as exc:
        if isinstance(exc, BackendUnavailableError) and getattr(owner, slot) is future:
            setattr(owner, slot, None)
        raise
    except BaseException:
        if future.done() and getattr(owner, slot) is future:
            setattr(owner, slot, None)
        raise


class RedisKeyIndex:
    """One tenant's index on a Redis server (or cluster: the server's client may be a
    ``RedisCluster``)."""

    def __init__(self, server: IndexServer, keys: IndexKeys) -> None:
        self._server = server
        self._client = server.client
        self._errors = server.errors
        self._scripts = server.scripts
        self._keys = keys
        #: What every physical key of this index starts with, and where its member starts.
        self._prefix = encode_key(keys.key_prefix)
        self._prefix_bytes = len(self._prefix)

    def __repr__(self) -> str:
        return f"RedisKeyIndex(index={self._keys.index!r}, expiry={self._keys.expiry!r})"

    @property
    def keys(self) -> IndexKeys:
        return self._keys

    async def _run(
        self, script: str, command: str, data_keys: Sequence[str | bytes], args: Sequence[Any]
    ) -> Any:
        code = self._scripts[script]
        keys_and_args = (self._keys.index, self._keys.expiry, *data_keys, *args)
        with self._errors(command):
            # EVALSHA directly: the same command the Script object sends, without its
            # per-call overhead on this hot path.
            try:
                return await self._client.evalsha(code.sha, 2 + len(data_keys), *keys_and_args)
            except NoScriptError:
                # The server lost the script (restart, failover, SCRIPT FLUSH): load it again.
                await self._client.script_load(code.script)
                return await self._client.evalsha(code.sha, 2 + len(data_keys), *keys_and_args)

    async def prepare(self, *, listing: bool = True) -> None:
        await self._server.prepare(listing=listing)

    async def exists(self) -> bool:
        with self._errors("EXISTS"):
            return bool(await self._client.exists(self._keys.index))

    # -- writes -------------------------------------------------------------
    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        await self._run("set", "SET", [key], [self._keys.member(key), value, _ttl_arg(ttl_ms)])

    def queue_set(self, pipe: Pipeline, key: str, value: bytes, ttl_ms: int | None) -> None:
        """Queue the indexed ``set`` on a redis-py pipeline (for batching callers, benchmarks).

        One ``EVALSHA`` queued as directly as ``pipe.set`` queues a ``SET``; the
        script is registered with the pipeline, which loads it before executing
        if the server lacks it.
        """
        script = self._scripts["set"]
        # redis-py annotates the pipeline's set with the sync Script class; it holds async ones.
        pipe.scripts.add(script)  # type: ignore[arg-type]
        pipe.evalsha(
            script.sha,
            3,
            self._keys.index,
            self._keys.expiry,
            key,
            self._keys.member(key),
            value,
            _ttl_arg(ttl_ms),
        )

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if not items:
            return
        keys = [key for key, _ in items]
        args: list[Any] = [_ttl_arg(ttl_ms), self._prefix_bytes]
        args.extend(value for _, value in items)
        await self._run("set_many", "SET", keys, args)

    async def delete(self, key: str) -> bool:
        removed, _spent_us = await self._run("unlink", "UNLINK", [key], [self._keys.member(key)])
        return bool(removed)

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        done = await self._run("set_ttl", "PEXPIRE", [key], [self._keys.member(key), ttl_ms])
        return bool(done)

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        args = [self._keys.member(key), value, _ttl_arg(ttl_ms)]
        length: int = await self._run("list_push", "RPUSH", [key], args)
        return length

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int, *, check: bool = False
    ) -> list[str]:
        """Keys moved in, and their index entries, in one script (``lua/migrate_write.lua``)."""
        if not moves:
            return []
        args = write_args(moves, indexed=True, max_items=max_items, check=check)
        data_keys = [ledger, *(move.key for move in moves)]
        replies = await self._run("migrate_write", "EVALSHA", data_keys, args)
        return [decode_key(reply) for reply in replies]

    async def batch(self, ops: Sequence[BatchOp]) -> list[Any]:
        """One script call (``lua/batch.lua``): the batch and its index entries, atomically."""
        if not ops:
            return []
        data_keys, args = batch_call(ops, indexed=True, prefix_bytes=self._prefix_bytes)
        replies = await self._run("batch", "EVALSHA", data_keys, args)
        return batch_results(ops, replies)

    # -- reads and repair ---------------------------------------------------
    def _bounds(self, prefix: str, after: str | None) -> tuple[bytes, bytes]:
        start = encode_key(prefix)
        low = b"(" + encode_key(after) if after is not None else (b"[" + start if start else b"-")
        end = prefix_successor(start)
        return low, b"+" if end is None else b"(" + end

    async def _range(
        self, low: bytes, high: bytes, count: int
    ) -> tuple[list[bytes], bytes | None, int]:
        """One ``range.lua`` call: the live members of up to ``count`` entries in the range
        (expired ones pruned), the last member read if the range may go on, and the
        microseconds the script ran."""
        fetched, last, members, spent_us = await self._run(
            "range", "ZRANGE", [], [low, high, count]
        )
        return members, (last if int(fetched) >= count else None), int(spent_us)

    def _script_pacer(self, pace: Pace) -> WalkPacer:
        """The pace of the scripts that work per member (``range``, ``unlink``, ``check``).
        Each replies how long it ran on the server (its own ``TIME`` readings), which is what
        the pacer learns from: a round trip would also hold the queue ahead of the call (a
        walk's read written ahead on another connection), and calls sized from it shrank to a
        few keys each. What it learns is kept per server, as the walks' costs are: every
        tenant's index on that server starts from it."""
        server = self._server.server_of(self._keys.index)
        return WalkPacer(self._server.pacing.costs(INDEX_SCRIPT, server), pace)

    async def _timed_range(
        self, pacer: WalkPacer, low: bytes, high: bytes
    ) -> tuple[list[bytes], bytes | None]:
        count = pacer.count()
        members, last, spent_us = await self._range(low, high, count)
        pacer.window(spent_us, count)
        return members, last

    async def chunk(self, prefix: str, after: str | None, count: int) -> IndexChunk:
        low, high = self._bounds(prefix, after)
        members, last, _spent_us = await self._range(low, high, count)
        return IndexChunk(
            [decode_key(member) for member in members], None if last is None else decode_key(last)
        )

    async def walk(self, prefix: str, pace: Pace) -> AsyncGenerator[list[bytes], None]:
        """Every live member starting with ``prefix``, a chunk per step, in name order.

        By rank (:meth:`_rank_walk`); by name (:meth:`_lex_walk`) where a
        prefix needs ``ZLEXCOUNT`` and the server refuses it (an ACL user
        provisioned before the walk by rank). Either way one read is on its
        way while a chunk is handed on. See the module docstring for why a
        chunk needs no script when the earliest expiry is not in the past. On
        a cluster, if the walk's own connection fails or the slot moves, the
        walk goes on from where it was through the cluster client (one
        ``range.lua`` call per chunk).
        """
        start = encode_key(prefix)
        low, high = self._bounds(prefix, None)
        resume = low  # where the chunk not yet handed on starts
        try:
            async with self._wire("ZRANGE", INDEX_RANGE, pace, (b"zrange",)) as steps:
                first = await self._first_rank(steps, start)
                chunks = (
                    self._lex_walk(steps, low, high, pace)
                    if first is None
                    else self._rank_walk(steps, first, start, low, high, pace)
                )
                async with contextlib.aclosing(chunks):
                    async for members, after in chunks:
                        if members:
                            yield members
                        resume = after
                return
        except BackendError as exc:
            if not self._server.cluster or not isinstance(exc.__cause__, _REROUTE):
                raise
        pacer = self._script_pacer(pace)
        position: bytes | None = resume
        while position is not None:
            members, last = await self._timed_range(pacer, position, high)
            if members:
                yield members
            position = None if last is None else b"(" + last

    @contextlib.asynccontextmanager
    async def _wire(
        self, command: str, kind: StepKind, pace: Pace, names: tuple[bytes, ...]
    ) -> AsyncIterator[Steps]:
        pool = await self._server.pool_of(self._keys.index)
        stats = self._server.pacing.stats(kind, pace, names, pool)
        async with held_wire(pool, self._errors, command) as wire:
            yield Steps(wire, stats)

    async def _first_rank(self, steps: Steps, start: bytes) -> int | None:
        """How many entries sort before ``start`` (0 for the whole index): the rank where a
        walk of the prefix starts; ``None`` if the server refuses ``ZLEXCOUNT``."""
        if not start:
            return 0
        if self._server.rank_refused:
            return None
        idx = encode_key(self._keys.index)
        await steps.write([pack(b"ZLEXCOUNT", idx, b"-", b"(" + start)], 0, ())
        (below,) = await steps.read(error_ok=True)
        if isinstance(below, rexc.NoPermissionError):
            self._server.rank_refused = True
            return None
        if isinstance(below, Exception):
            steps.wire.fail(below)
        return int(below)

    async def _rank_walk(
        self, steps: Steps, rank: int, start: bytes, low: bytes, high: bytes, pace: Pace
    ) -> AsyncGenerator[tuple[list[bytes], bytes], None]:
        """``(live members, low bound of the rest)`` per chunk, in name order, each chunk
        read by rank: ``ZRANGE idx r-1 r+n-1``, the last entry of the previous chunk's
        ranks and the next n.

        A read by rank names its start without the previous reply, so the
        next read is written before the reply it follows is read: the
        server has it queued while the client takes in that reply, and one
        read is on its way while a chunk is handed on. Writes meanwhile
        shift ranks, which the first entry read shows:

        * at or before the last member read (an entry added before it, or
          none moved): the chunk follows on without a gap; what is not after
          that member is dropped;
        * after it (an entry before it was deleted): entries may have slipped
          between the two chunks, and that gap is read by name through
          ``range.lua`` before the chunk is handed on. A key present
          throughout the walk is in the gap when it is read, so none is
          missed; each chunk's name range starts where the previous one's
          ended, so none is handed on twice.

        A chunk shorter than asked ends the walk: nothing ranked after it
        then. Ranks shifted by writes need no correction: each chunk is read
        where the previous one ended, at ranks as they are now.
        """
        idx = encode_key(self._keys.index)
        expiry_check = self._expiry_check()
        end = prefix_successor(start)
        #: Per read written and not yet read: its first rank, how many entries it asked for.
        asked: deque[tuple[int, int]] = deque()

        async def write() -> None:
            nonlocal rank
            count = steps.count()
            first = max(rank - 1, 0)  # the entry before the chunk's (none before rank 0)
            read = pack(b"ZRANGE", idx, b"%d" % first, b"%d" % (rank + count - 1))
            # The expiry check first: what the chunk then holds was live at its time.
            await steps.write([*expiry_check, read], count, (b"zrange", b"zrange"))
            asked.append((first, rank + count - first))
            rank += count

        last: bytes | None = None  # the last member read so far
        since = low  # where the next chunk's name range starts
        await write()
        await write()
        while True:
            earliest, now, found = await steps.read()
            first, size = asked.popleft()
            new = (
                bisect.bisect_left(found, start)
                if last is None
                else bisect.bisect_right(found, last)
            )
            stop = len(found) if end is None else bisect.bisect_left(found, end, new)
            done = stop < len(found) or len(found) < size
            # No gap before the chunk: it starts at the index's first entry, or at or
            # before the last member read (the walk's start, for its first chunk).
            follows = first == 0 or new > 0
            members = found[new:stop]
            if members and _expired(earliest, now):
                members = await self._live_between(since, b"[" + members[-1], pace)
            elif not follows:  # (so members, if any, start after an entry gone missing)
                gap_end = b"(" + members[0] if members else high
                members = await self._live_between(since, gap_end, pace) + members
            if stop > new:
                last = found[stop - 1]
                since = b"(" + last
            if done:
                while asked:  # the read written ahead, past the end
                    await steps.read()
                    asked.popleft()
                yield members, since
                return
            yield members, since
            await write()  # on its way while the read before it is taken in

    def _expiry_check(self) -> list[bytes]:
        """The two reads before each chunk of a listing: the earliest expiry (``ZRANGE #exp 0 0
        WITHSCORES``) and the server's ``TIME`` (see :func:`_expired`)."""
        exp = encode_key(self._keys.expiry)
        return [pack(b"ZRANGE", exp, b"0", b"0", b"WITHSCORES"), pack(b"TIME")]

    async def _lex_walk(
        self, steps: Steps, low: bytes, high: bytes, pace: Pace
    ) -> AsyncGenerator[tuple[list[bytes], bytes], None]:
        """``(live members, low bound of the next chunk)`` per chunk, each read by name
        (``ZRANGE idx (<last> <high> BYLEX LIMIT 0 n``) as soon as the previous chunk's
        last member is known."""
        idx = encode_key(self._keys.index)
        expiry_check = self._expiry_check()

        async def ask(low: bytes, count: int) -> None:
            chunk = pack(b"ZRANGE", idx, low, high, b"BYLEX", b"LIMIT", b"0", b"%d" % count)
            # The expiry check comes first: what the chunk then holds was live at its time.
            await steps.write([*expiry_check, chunk], count, (b"zrange", b"zrange"))

        count = steps.count()
        await ask(low, count)
        while True:
            earliest, now, members = await steps.read()
            full = len(members) >= count
            this_low = low
            if full:
                low = b"(" + members[-1]
                count = steps.count()
                await ask(low, count)  # on its way while this chunk is handed on
            if members and _expired(earliest, now):
                members = await self._live_between(this_low, b"[" + members[-1], pace)
            yield members, low
            if not full:
                return

    async def _live_between(self, low: bytes, high: bytes, pace: Pace) -> list[bytes]:
        """The live members between the bounds ``low`` and ``high``, pruning expired entries."""
        pacer = self._script_pacer(pace)
        live: list[bytes] = []
        position: bytes | None = low
        while position is not None:
            members, end = await self._timed_range(pacer, position, high)
            live.extend(members)
            position = None if end is None else b"(" + end
        return live

    async def clear(self, pace: Pace, progress: Callable[[int], None] | None = None) -> int:
        """Delete every key the index lists, with its entry; how many keys existed.

        The fast way, on a connection of its own: read a chunk (``ZRANGE idx
        <after> + BYLEX LIMIT 0 n``), then write the read of the next chunk
        and one transaction for this one (``MULTI``, ``ZREM`` of its members
        from both sorted sets, ``UNLINK`` of its keys, ``EXEC``), before the
        previous chunk's transaction is answered (see :func:`_chunked_clear`).
        No ``WATCH``: each
        chunk's keys and entries go together, so whatever is written
        meanwhile, index and data agree after every step, and a clear stopped
        early (cancelled) leaves only what it did not reach, listed. A key
        written behind the walk (after the chunk that held its name) keeps
        its key and entry, as with a clear by SCAN; an emptied sorted set
        disappears by itself.

        If the server refuses the transaction (a server at ``maxmemory``
        refuses the commands queued in it; an ACL user may lack ``MULTI``,
        ``EXEC`` or ``ZREM``), or on a cluster the walk's connection failed
        or the slot moved, the exact way finishes the job, from the start of
        the index: per chunk, its keys and entries in one ``unlink.lua`` call
        (a script flagged ``allow-oom``).
        """
        deleted = 0
        refused = False
        try:
            async with (
                self._wire("UNLINK", INDEX_CLEAR, pace, (b"zrange", b"exec")) as steps,
                contextlib.aclosing(_chunked_clear(steps, self._keys, self._prefix)) as chunks,
            ):
                async for removed in chunks:
                    if removed is None:
                        refused = True
                        continue
                    deleted += removed
                    if progress is not None:
                        progress(removed)
            if not refused:
                return deleted
        except PermissionDeniedError:
            pass
        except BackendError as exc:
            if not self._server.cluster or not isinstance(exc.__cause__, _REROUTE):
                raise
        return deleted + await self._exact_clear(pace, progress)

    async def _exact_clear(self, pace: Pace, progress: Callable[[int], None] | None) -> int:
        """Per chunk of the index, its keys and entries in one ``unlink.lua`` call."""
        pacer = self._script_pacer(pace)
        deleted = 0
        position = b"-"
        while True:
            count = pacer.count()
            with self._errors("ZRANGE"):
                reply = await self._client.zrange(
                    self._keys.index, position, "+", bylex=True, offset=0, num=count
                )
            members = cast("list[bytes]", reply)
            if not members:
                return deleted
            prefix = self._prefix
            keys = [prefix + member for member in members]
            removed, spent_us = await self._run("unlink", "UNLINK", keys, members)
            pacer.window(int(spent_us), len(members))
            deleted += int(removed)
            if progress is not None:
                progress(int(removed))
            if len(members) < count:
                return deleted
            position = b"(" + members[-1]

    async def live_count(self, prune: int) -> int:
        reply = await self._run("count", "ZCARD", [], [prune])
        return int(reply[1])

    async def prune(self, count: int) -> int:
        reply = await self._run("count", "ZREM", [], [count])
        return int(reply[0])

    async def drop(self) -> None:
        # UNLINK frees a large sorted set in the background, without blocking.
        with self._errors("UNLINK"):
            await self._client.unlink(self._keys.index, self._keys.expiry)

    async def _check(self, mode: str, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
        """``check.lua`` over ``keys`` in parts sized to the budget, two calls in flight (on
        two connections): the server runs one while the client packs the next. One at a
        time on a pool of two connections: the caller holds one (its walk's)."""
        pacer = self._script_pacer(pace)
        connections = self._server.connections
        in_flight = min(2, branches(None if connections is None else connections - 1))
        cut = self._prefix_bytes
        size = min(pacer.count(), CHECK_BATCH)

        async def call(part: Sequence[bytes]) -> list[IndexStatus]:
            *reply, spent_us = await self._run(
                "check", "PEXPIRETIME", part, [mode, *(k[cut:] for k in part)]
            )
            pacer.window(int(spent_us), len(part))
            return [IndexStatus(status) for status in reply]

        parts = [keys[start : start + size] for start in range(0, len(keys), size)]
        if not parts:
            return []
        found = await gather_limited((partial(call, part) for part in parts), limit=in_flight)
        return [status for statuses in found for status in statuses]

    async def check(self, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
        return await self._check("check", keys, pace)

    async def repair(self, keys: Sequence[bytes], pace: Pace) -> list[IndexStatus]:
        return await self._check("repair", keys, pace)


def _expired(earliest: Any, now: Any) -> bool:
    """Whether the earliest expiry (a ``ZRANGE ... 0 0 WITHSCORES`` reply, RESP2 or RESP3)
    is before the server's ``TIME``, in ms (the rule of ``lua/_common.lua``)."""
    if not earliest:
        return False
    score = earliest[0][1] if isinstance(earliest[0], list) else earliest[1]
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    return float(score) < now_ms


_MULTI, _EXEC = pack(b"MULTI"), pack(b"EXEC")


async def _chunked_clear(
    steps: Steps, keys: IndexKeys, prefix: bytes
) -> AsyncGenerator[int | None, None]:
    """Walk every entry of the index (live or not) and delete each chunk's keys and entries
    in one ``MULTI``/``EXEC``; yield how many keys each transaction deleted.

    The server is never left waiting for the client: as soon as chunk i is
    read, the read of chunk i+1 and the transaction of chunk i are written
    (in that order: the read starts after chunk i's last member, which the
    transaction does not touch), and only then is the transaction of chunk
    i-1 answered. So the server runs transaction i-1, read i+1 and
    transaction i back to back while the client packs the next ones; at
    most two transactions are in flight.

    If the server refuses a transaction, the walk yields ``None`` last and
    stops, every reply read (the connection stays clean; a transaction
    written after the refused one is counted if it ran). The transaction
    drops the entries before the keys: if ``MULTI`` itself is refused, its
    commands still run one by one (their count is yielded before the
    ``None``), and a key written between them is left with an entry and
    no key (the exact clear that follows removes it), never with a key and
    no entry.
    """
    idx, exp = encode_key(keys.index), encode_key(keys.expiry)
    wire = steps.wire

    def read(low: bytes, count: int) -> bytes:
        return pack(b"ZRANGE", idx, low, b"+", b"BYLEX", b"LIMIT", b"0", b"%d" % count)

    count = steps.count()
    # A read's keys are counted by the transaction that deletes them (the pacer's cost per
    # key is the transaction's), so a read step counts none.
    await steps.write([read(b"-", count)], 0, (b"zrange",))
    transactions = 0  # written and not yet read (the oldest first, after the next read)
    while True:
        (members,) = await steps.read(error_ok=True)
        full = not isinstance(members, Exception) and len(members) >= count
        if full:
            count = steps.count()
            await steps.write([read(b"(" + members[-1], count)], 0, (b"zrange",))
        if members and not isinstance(members, Exception):
            commands = [
                _MULTI,
                pack_keys((b"ZREM", idx), members),
                pack_keys((b"ZREM", exp), members),
                pack_keys((b"UNLINK",), members, prefix),
                _EXEC,
            ]
            await steps.write(commands, len(members), (b"exec",))
            transactions += 1
        if transactions > 1 or not full:
            # The previous chunk's transaction (or, at the end, every one still out).
            while transactions > (1 if full else 0):
                removed, ran = _transaction_result(wire, await steps.read(error_ok=True))
                transactions -= 1
                if ran or removed:
                    yield removed
                if not ran:
                    async for last in _drain(steps, transactions, full):
                        yield last
                    yield None
                    return
        if isinstance(members, Exception):
            wire.fail(members)
        if not full:
            return


async def _drain(steps: Steps, transactions: int, reading: bool) -> AsyncGenerator[int, None]:
    """After a refused transaction: read what is still out (a read of the next chunk if
    ``reading``, then ``transactions`` transactions) and yield what those that ran deleted."""
    if reading:
        await steps.read(error_ok=True)
    for _ in range(transactions):
        removed, _ran = _transaction_result(steps.wire, await steps.read(error_ok=True))
        if removed:
            yield removed


def _transaction_result(wire: Wire, replies: Sequence[Any]) -> tuple[int, bool]:
    """``(keys the chunk's UNLINK deleted, whether its transaction ran)`` from its replies
    (MULTI, ZREM, ZREM, UNLINK, EXEC; read with ``error_ok``).

    A refused transaction is not raised: its ``EXEC`` answers an error
    (``EXECABORT`` if a queued command was refused: ``OOM``, ``NOPERM``), and
    so does ``MULTI`` if the server refused that (then the commands ran on
    their own, and the UNLINK's reply is what it deleted). An error inside
    ``EXEC``'s reply (a command that failed as it ran, ``WRONGTYPE``) is raised.
    """
    started, _zrem_idx, _zrem_exp, unlinked, result = replies
    if isinstance(result, list):
        for reply in result:
            if isinstance(reply, Exception):
                wire.fail(reply)
        return int(result[-1]), True
    if isinstance(started, Exception) and isinstance(unlinked, int):
        return unlinked, False
    return 0, False
