"""The Redis backend: redis-py's asyncio client (hiredis parser) on one server.

Every command runs inside ``_errors(command)``, which refuses a closed backend
and translates redis-py's exceptions into :mod:`tenantkv.errors` with the
URL's password removed. Pub/sub uses one dedicated subscriber connection per backend, shared
by all its subscriptions, read by one background task.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from ..errors import (
    BackendError,
    BackendUnavailableError,
    InvalidURLError,
    StoreClosedError,
    WrongTypeError,
)
from ..namespace import KEY_ENCODING
from .keyindex import IndexKeys
from .luascripts import lua_source
from .redisindex import RedisKeyIndex

__all__ = [
    "RedisBackend",
    "RedisSubscription",
    "SingleKeyCommands",
    "SubscriberHub",
    "check_client_options",
    "client_defaults",
    "decode_key",
    "translate_errors",
]


# How long to wait for the server to confirm SUBSCRIBE / UNSUBSCRIBE.
_PUBSUB_CONFIRM_S = 10.0


def client_defaults() -> dict[str, Any]:
    """redis-py client options tenantkv sets unless the caller passes them.

    redis-py >= 8 enables RESP3 maintenance notifications in ``"auto"`` mode,
    and while that mode is on its pool hands out a pooled connection without
    checking whether the server has closed it (redis-py issue #4128). The
    first command after an idle timeout or a server restart then failed with
    "Connection closed by server". With the notifications off (tenantkv uses
    none of them), the pool notices the closed connection and opens a new one.
    """
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py < 8 has no such mode
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


# redis-py client options a store accepts, as keywords or URL query parameters.
# tenantkv decides the encoding itself; the rest is the single-server
# client's constructor (TLS options only with rediss://).
_OWN_OPTIONS = frozenset({"decode_responses", "encoding", "encoding_errors"})
_CLIENT_OPTIONS = frozenset(inspect.signature(aioredis.Redis.__init__).parameters) - {
    "self",
    "host",
    "port",
    "connection_pool",
    "unix_socket_path",
    "auto_close_connection_pool",
    "event_dispatcher",
    "ssl",  # TLS is the scheme's choice: rediss://
    *_OWN_OPTIONS,
}
_TLS_OPTIONS = frozenset(name for name in _CLIENT_OPTIONS if name.startswith("ssl"))
# A URL's query goes to the connection class, which lacks the client's own options.
_CLIENT_ONLY_OPTIONS = frozenset({"single_connection_client"})
# Numeric options that redis-py would only reject, with a TypeError, on connecting
# (as URL query parameters it converts them itself).
_NUMBER_OPTIONS = frozenset(
    {
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_read_size",
        "health_check_interval",
        "max_connections",
        "protocol",
    }
)


def check_client_options(
    keywords: Iterable[str], query: Iterable[str], *, tls: bool, redacted_url: str
) -> None:
    """Refuse option names (given as keywords, or in the URL's query) that redis-py's
    client does not take, or that tenantkv sets itself."""
    accepted = _CLIENT_OPTIONS if tls else _CLIENT_OPTIONS - _TLS_OPTIONS
    named = [(name, accepted) for name in keywords]
    named += [(name, accepted - _CLIENT_ONLY_OPTIONS) for name in query]
    for name, allowed in named:
        if name in _OWN_OPTIONS:
            raise InvalidURLError(
                f"option {name!r} is not accepted for {redacted_url}: tenantkv sets it itself"
            )
        if name not in allowed:
            hint = ""
            if name in _TLS_OPTIONS or name == "ssl":
                hint = " (a TLS option: use rediss://)"
            elif name in _CLIENT_ONLY_OPTIONS:
                hint = " (give it to open_store as a keyword, not in the URL)"
            elif name == "topology_wait_ms":
                hint = " (a redis+cluster:// option)"
            elif close := difflib.get_close_matches(name, allowed, n=1):
                hint = f" (did you mean {close[0]!r}?)"
            raise InvalidURLError(f"unknown option {name!r} for {redacted_url}{hint}")


def decode_key(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode(*KEY_ENCODING)


@contextlib.contextmanager
def translate_errors(url: str, command: str) -> Iterator[None]:
    """Turn redis-py's exceptions into tenantkv's, naming ``url`` (already redacted)."""
    try:
        yield
    except rexc.AuthenticationError as exc:  # a ConnectionError to redis-py, but not "unreachable"
        raise BackendUnavailableError(
            f"{command} failed: {url} refused the credentials: {exc}", url=url, command=command
        ) from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        raise BackendUnavailableError(
            f"{command} failed: cannot reach {url}: {exc}", url=url, command=command
        ) from exc
    except rexc.ResponseError as exc:
        if str(exc).startswith("WRONGTYPE"):
            raise WrongTypeError(
                f"{command} failed on {url}: the key holds another kind of value ({exc})",
                url=url,
                command=command,
            ) from exc
        raise BackendError(f"{command} failed on {url}: {exc}", url=url, command=command) from exc
    except rexc.RedisError as exc:
        raise BackendError(f"{command} failed on {url}: {exc}", url=url, command=command) from exc


class SubscriberHub:
    """One subscriber connection shared by all subscriptions of a backend.

    ``client`` is any redis-py asyncio client of one server; the Redis Cluster
    backend gives it a client of the node it subscribes on.
    """

    def __init__(self, client: aioredis.Redis, url: str) -> None:
        self._client = client
        self._url = url
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues: dict[str, list[asyncio.Queue[bytes | BaseException]]] = {}
        self._confirmations: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None

    @property
    def subscription_count(self) -> int:
        return sum(len(queues) for queues in self._queues.values())

    async def _confirm(self, kind: str, channel: str) -> None:
        """Send SUBSCRIBE/UNSUBSCRIBE and wait until the server acknowledges it."""
        assert self._pubsub is not None
        future = asyncio.get_running_loop().create_future()
        self._confirmations[(kind, channel)] = future
        try:
            with translate_errors(self._url, kind.upper()):
                if kind == "subscribe":
                    await self._pubsub.subscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(self._pubsub))
            await asyncio.wait_for(asyncio.shield(future), _PUBSUB_CONFIRM_S)
        except TimeoutError as exc:
            raise BackendUnavailableError(
                f"{kind.upper()} {channel!r} was not confirmed by {self._url}",
                url=self._url,
                command=kind.upper(),
            ) from exc
        finally:
            self._confirmations.pop((kind, channel), None)

    async def add(self, channel: str, queue: asyncio.Queue[bytes | BaseException]) -> None:
        async with self._lock:
            if self._failure is not None:
                # The old connection failed and its subscriptions were told so;
                # a new subscription starts over on a new connection.
                await self._discard_connection()
                self._queues.clear()
                self._failure = None
            queues = self._queues.setdefault(channel, [])
            queues.append(queue)
            if len(queues) > 1:
                return
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            try:
                await self._confirm("subscribe", channel)
            except BaseException:
                queues.remove(queue)
                self._queues.pop(channel, None)
                raise

    async def remove(self, channel: str, queue: asyncio.Queue[bytes | BaseException]) -> None:
        async with self._lock:
            queues = self._queues.get(channel, [])
            if queue not in queues:
                return  # a subscription of a connection that failed and was replaced
            queues.remove(queue)
            if queues:
                return
            self._queues.pop(channel, None)
            if self._pubsub is not None and self._failure is None:
                await self._confirm("unsubscribe", channel)

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                message: dict[str, Any] | None = await pubsub.get_message(
                    ignore_subscribe_messages=False, timeout=None
                )
                if message is None:
                    continue
                kind = message["type"]
                channel = decode_key(message["channel"])
                if kind == "message":
                    for queue in self._queues.get(channel, ()):
                        queue.put_nowait(message["data"])
                elif kind in ("subscribe", "unsubscribe"):
                    future = self._confirmations.get((kind, channel))
                    if future is not None and not future.done():
                        future.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = BackendUnavailableError(
                f"subscriber connection to {self._url} failed: {exc}",
                url=self._url,
                command="SUBSCRIBE",
            )
            failure.__cause__ = exc
            self._failure = failure
            for queues in self._queues.values():
                for queue in queues:
                    queue.put_nowait(failure)
            for future in self._confirmations.values():
                if not future.done():
                    future.set_exception(failure)

    async def _discard_connection(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def aclose(self) -> None:
        await self._discard_connection()
        closed = StoreClosedError("the store was closed")
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(closed)
        self._queues.clear()


class RedisSubscription:
    def __init__(self, hub: SubscriberHub, channel: str) -> None:
        self._hub = hub
        self._channel = channel
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self._entered = False

    async def __aenter__(self) -> RedisSubscription:
        await self._hub.add(self._channel, self._queue)
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._entered:
            self._entered = False
            await self._hub.remove(self._channel, self._queue)

    def __aiter__(self) -> RedisSubscription:
        return self

    async def __anext__(self) -> bytes:
        if not self._entered:
            raise StoreClosedError("the subscription is not active (use 'async with')")
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item


class SingleKeyCommands:
    """The single-key commands, alike on one server and on a cluster (redis-py routes by key).

    Both :class:`RedisBackend` and the cluster backend mix this in; they provide
    ``_key_client`` and ``_errors`` (refuse a closed backend, translate exceptions).
    """

    @property
    def _key_client(self) -> aioredis.Redis | RedisCluster:
        raise NotImplementedError

    def _errors(self, command: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def get(self, key: str) -> bytes | None:
        with self._errors("GET"):
            value = await self._key_client.get(key)
        return cast("bytes | None", value)

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        with self._errors("SET"):
            await self._key_client.set(key, value, px=ttl_ms)

    async def delete(self, key: str) -> bool:
        with self._errors("UNLINK"):
            return bool(await self._key_client.unlink(key))

    async def exists(self, key: str) -> bool:
        with self._errors("EXISTS"):
            return bool(await self._key_client.exists(key))

    async def set_ttl(self, key: str, ttl_ms: int) -> bool:
        with self._errors("PEXPIRE"):
            return bool(await self._key_client.pexpire(key, ttl_ms))

    async def get_ttl(self, key: str) -> int | None:
        with self._errors("PTTL"):
            ttl: int = await self._key_client.pttl(key)
        return ttl if ttl >= 0 else None

    async def list_push(self, key: str, value: bytes) -> int:
        with self._errors("RPUSH"):
            length: int = await self._key_client.rpush(key, value)
        return length

    async def list_range(self, key: str, start: int, stop: int) -> list[bytes]:
        with self._errors("LRANGE"):
            items = await self._key_client.lrange(key, start, stop)
        return cast("list[bytes]", items)

    async def list_length(self, key: str) -> int:
        with self._errors("LLEN"):
            length: int = await self._key_client.llen(key)
        return length


class RedisBackend(SingleKeyCommands):
    """A backend on one Redis server (``redis://`` or ``rediss://``)."""

    def __init__(self, client: aioredis.Redis, *, url: str) -> None:
        self._client = client
        self._url = url
        self._hub = SubscriberHub(client, url)
        self._set_many_script = client.register_script(lua_source("set_many_unindexed"))
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, redacted_url: str, **options: Any) -> RedisBackend:
        """Build a backend from a ``redis://`` URL; redis-py options may be given as keywords.

        Option names, from the keywords and the URL's query, are checked here
        (redis-py would only fail on the first connection, with a TypeError).
        """
        parts = urlsplit(url)
        check_client_options(
            options,
            [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)],
            tls=parts.scheme.lower() == "rediss",
            redacted_url=redacted_url,
        )
        for name in _NUMBER_OPTIONS.intersection(options):
            value = options[name]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise InvalidURLError(
                    f"option {name!r} for {redacted_url} must be a number, not {value!r}"
                )
        if not re.fullmatch(r"/?[0-9]*/?", unquote(parts.path)):
            raise InvalidURLError(
                f"invalid Redis URL {redacted_url}: the path must be a database number"
            )
        try:
            client = aioredis.Redis.from_url(
                url,
                decode_responses=False,
                encoding_errors=KEY_ENCODING[1],
                **{**client_defaults(), **options},
            )
        except (ValueError, TypeError) as exc:
            raise InvalidURLError(f"invalid Redis URL {redacted_url}: {exc}") from exc
        return cls(client, url=redacted_url)

    @property
    def url(self) -> str:
        return self._url

    @property
    def client(self) -> aioredis.Redis:
        """The underlying redis-py client (for diagnostics and tests)."""
        return self._client

    @property
    def _key_client(self) -> aioredis.Redis:
        return self._client

    @property
    def subscription_count(self) -> int:
        return self._hub.subscription_count

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the backend for {self._url} is closed")

    def _errors(self, command: str) -> contextlib.AbstractContextManager[None]:
        self._check_open()
        return translate_errors(self._url, command)

    async def ping(self) -> None:
        with self._errors("PING"):
            await self._client.ping()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with self._errors("MGET"):
            values = await self._client.mget(list(keys))
        return cast("list[bytes | None]", values)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """One atomic script call (``lua/set_many_unindexed.lua``): MSET, or SET … PX per key.

        A MULTI/EXEC of the same SETs is as atomic, but costs the client several
        times as much per key: redis-py queues, packs and parses one command per key.
        """
        if not items:
            return
        ttl = "" if ttl_ms is None else str(ttl_ms)
        with self._errors("SET"):
            await self._set_many_script(
                keys=[key for key, _ in items], args=[ttl, *(value for _, value in items)]
            )

    async def publish(self, channel: str, data: bytes) -> int:
        with self._errors("PUBLISH"):
            receivers: int = await self._client.publish(channel, data)
        return receivers

    def subscribe(self, channel: str) -> RedisSubscription:
        self._check_open()
        return RedisSubscription(self._hub, channel)

    async def scan(self, match: str, count: int) -> AsyncIterator[list[str]]:
        cursor = 0
        while True:
            with self._errors("SCAN"):
                cursor, keys = await self._client.scan(cursor=cursor, match=match, count=count)
            yield [decode_key(key) for key in keys]
            if cursor == 0:
                return

    async def unlink(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        with self._errors("UNLINK"):
            removed: int = await self._client.unlink(*keys)
        return removed

    def key_index(self, keys: IndexKeys) -> RedisKeyIndex:
        """The tenant index stored under ``keys`` (kept by Lua scripts; Redis >= 7.0)."""
        return RedisKeyIndex(self._client, keys, errors=self._errors)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._hub.aclose()
        await self._client.aclose()
