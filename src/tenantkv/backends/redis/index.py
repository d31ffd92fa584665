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

Layout (see :mod:`tenantkv.index.protocols`): ``<prefix>:{<tenant>}#idx``
holds every key (score 0, ordered by name), ``<prefix>:{<tenant>}#exp`` the
keys with a TTL (score = ``PEXPIRETIME``); a sharded tenant has such a pair
per shard, ``<prefix>:{<tenant>:NN}#idx`` and ``#exp``, for that shard's keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from ...codec import decode_key, encode_key
from ...errors import (
    BackendError,
    BackendUnavailableError,
    EvictionPolicyError,
    IndexEvictionWarning,
    PermissionDeniedError,
)
from ...index.protocols import IndexChunk, IndexKeys, IndexStatus, prefix_successor
from ..base import BatchOp, MoveIn
from .batching import batch_call, batch_results
from .moving import write_args
from .scripts import script_source

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
#: Keys per check/repair script call. Checking a key costs a PEXPIRETIME call
#: inside the script (several times what SCAN spends per key), so a page of
#: ``count`` keys is checked in slices that keep each call well under 10 ms.
CHECK_BATCH = 250
#: Keys per UNLINK script call of ``clear`` (UNLINK plus two ZREMs per key).
UNLINK_BATCH = 500

ErrorScope = Callable[[str], contextlib.AbstractContextManager[None]]


def _ttl_arg(ttl_ms: int | None) -> str:
    return "" if ttl_ms is None else str(ttl_ms)


class IndexServer:
    """What every tenant index of one backend shares: the scripts, and what the server
    allows (checked once, on the first :meth:`prepare`).

    ``errors`` is the backend's error scope: it refuses calls on a closed
    backend and translates redis-py's exceptions.
    """

    def __init__(self, client: aioredis.Redis | RedisCluster, *, errors: ErrorScope) -> None:
        self.client = client
        self.errors = errors
        self.scripts = {name: client.register_script(script_source(name)) for name in _SCRIPTS}
        self._ready: asyncio.Future[None] | None = None
        self._eviction: asyncio.Future[str | None] | None = None
        self._warned = False

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
        #: Where a member starts in a physical key, in bytes (the set_many script cuts it there).
        self._prefix_bytes = len(encode_key(keys.key_prefix))

    def __repr__(self) -> str:
        return f"RedisKeyIndex(index={self._keys.index!r}, expiry={self._keys.expiry!r})"

    @property
    def keys(self) -> IndexKeys:
        return self._keys

    async def _run(
        self, script: str, command: str, data_keys: Sequence[str], args: Sequence[Any]
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
        return bool(await self._run("unlink", "UNLINK", [key], [self._keys.member(key)]))

    async def unlink(self, keys: Sequence[str]) -> int:
        removed = 0
        for start in range(0, len(keys), UNLINK_BATCH):
            part = keys[start : start + UNLINK_BATCH]
            members = [self._keys.member(key) for key in part]
            removed += int(await self._run("unlink", "UNLINK", part, members))
        return removed

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        done = await self._run("set_ttl", "PEXPIRE", [key], [self._keys.member(key), ttl_ms])
        return bool(done)

    async def list_push(self, key: str, value: bytes, ttl_ms: int | None) -> int:
        args = [self._keys.member(key), value, _ttl_arg(ttl_ms)]
        length: int = await self._run("list_push", "RPUSH", [key], args)
        return length

    async def migrate_write(
        self, ledger: str, moves: Sequence[MoveIn], max_items: int
    ) -> list[str]:
        """Keys moved in, and their index entries, in one script (``lua/migrate_write.lua``)."""
        if not moves:
            return []
        args = write_args(moves, indexed=True, max_items=max_items)
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
    async def chunk(self, prefix: str, after: str | None, count: int) -> IndexChunk:
        start = encode_key(prefix)
        low = b"(" + encode_key(after) if after is not None else (b"[" + start if start else b"-")
        end = prefix_successor(start)
        high = b"+" if end is None else b"(" + end
        reply = await self._run("range", "ZRANGE", [], [low, high, count])
        fetched = int(reply[0])
        if fetched == 0:
            return IndexChunk([], None)
        live = [decode_key(member) for member in reply[2]]
        return IndexChunk(live, decode_key(reply[1]) if fetched >= count else None)

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

    async def _check(self, mode: str, keys: Sequence[str]) -> list[IndexStatus]:
        statuses: list[IndexStatus] = []
        for start in range(0, len(keys), CHECK_BATCH):
            part = keys[start : start + CHECK_BATCH]
            args = [mode, *(self._keys.member(key) for key in part)]
            reply = await self._run("check", "PEXPIRETIME", part, args)
            statuses.extend(IndexStatus(int(status)) for status in reply)
        return statuses

    async def check(self, keys: Sequence[str]) -> list[IndexStatus]:
        return await self._check("check", keys)

    async def repair(self, keys: Sequence[str]) -> list[IndexStatus]:
        return await self._check("repair", keys)
