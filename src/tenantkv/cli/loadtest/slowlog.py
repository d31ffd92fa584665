"""The server's own view of blocking: the longest single command, from SLOWLOG.

The tool lowers ``slowlog-log-slower-than`` (and raises ``slowlog-max-len``)
for the run and puts the original values back at the end. Where ``CONFIG`` or
``SLOWLOG`` is refused (renamed away, or denied by an ACL, as on managed
services) the run goes on without the server's view: the table's "server max"
column says ``n/a`` and the note is printed and written to the JSON
(``environment.server_view``). Instead of
``SLOWLOG RESET``, which would erase a shared server's own entries, each
strategy remembers the newest entry ID before it starts and reads only the
entries logged after it.

On a Redis Cluster every primary is watched (:class:`SlowlogWatches`): the
longest command of a strategy is the longest on any of them.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc

from .results import ServerView

__all__ = ["SlowlogWatch", "SlowlogWatches"]

#: Room for every command of a long strategy (SCAN COUNT 10 over 1M keys makes 100,000).
MAX_LEN = 65_536
_PARAMETERS = ("slowlog-log-slower-than", "slowlog-max-len")
#: Commands the tool itself sends between strategies; not part of what is measured.
_OWN_COMMANDS = {b"SLOWLOG", b"CONFIG", b"INFO", b"DBSIZE", b"PING", b"CLIENT", b"HELLO"}


class SlowlogWatch:
    """Reads the longest command per strategy; ``available`` is false when CONFIG is refused."""

    def __init__(self, client: aioredis.Redis, threshold_us: int) -> None:
        self._client = client
        self.threshold_us = threshold_us
        self._original: dict[str, str] = {}
        self.available = False
        self.note: str | None = None

    async def setup(self) -> None:
        """Save the server's SLOWLOG settings and set the tool's."""
        try:
            for name in _PARAMETERS:
                reply: dict[Any, Any] = await self._client.config_get(name)
                for key, value in reply.items():
                    self._original[_text(key)] = _text(value)
            await self._client.config_set("slowlog-log-slower-than", self.threshold_us)
            current = int(self._original.get("slowlog-max-len", "128"))
            await self._client.config_set("slowlog-max-len", max(current, MAX_LEN))
            await self._client.slowlog_get(1)
        except rexc.ResponseError as exc:
            # Managed Redis services often rename or forbid CONFIG.
            self.note = f"SLOWLOG view unavailable (the server refuses CONFIG or SLOWLOG): {exc}"
            await self.restore()
            return
        self.available = True

    async def restore(self) -> None:
        """Put the original settings back (idempotent)."""
        original, self._original = self._original, {}
        for name, value in original.items():
            await self._client.config_set(name, value)

    async def mark(self) -> int | None:
        """The newest SLOWLOG entry's ID now (``None`` if the log is empty)."""
        if not self.available:
            return None
        entries: list[dict[str, Any]] = await self._client.slowlog_get(1)
        return int(entries[0]["id"]) if entries else None

    async def since(self, mark: int | None) -> ServerView:
        """The longest command logged after ``mark``."""
        if not self.available:
            return ServerView(self.threshold_us, None, None, 0, complete=False)
        entries: list[dict[str, Any]] = await self._client.slowlog_get(MAX_LEN)
        fresh = [e for e in entries if mark is None or int(e["id"]) > mark]
        complete = len(fresh) < MAX_LEN or (
            mark is not None and min(int(e["id"]) for e in fresh) == mark + 1
        )
        measured = [e for e in fresh if _name(e) not in _OWN_COMMANDS]
        if not measured:
            return ServerView(self.threshold_us, None, None, 0, complete)
        longest = max(measured, key=lambda e: int(e["duration"]))
        return ServerView(
            threshold_us=self.threshold_us,
            longest_ms=int(longest["duration"]) / 1000.0,
            command=_name(longest).decode("ascii", "replace"),
            entries=len(measured),
            complete=complete,
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _name(entry: dict[str, Any]) -> bytes:
    command = entry.get("command", b"")
    raw = command if isinstance(command, bytes) else str(command).encode()
    return raw.split(b" ", 1)[0].upper()


class SlowlogWatches:
    """:class:`SlowlogWatch` on every node, read as one: the longest command on any node."""

    def __init__(self, clients: list[aioredis.Redis], threshold_us: int) -> None:
        self.threshold_us = threshold_us
        self._watches = [SlowlogWatch(client, threshold_us) for client in clients]

    @property
    def note(self) -> str | None:
        return next((w.note for w in self._watches if w.note), None)

    async def setup(self) -> None:
        for watch in self._watches:
            await watch.setup()

    async def restore(self) -> None:
        """Put every node's original settings back (each restore is idempotent)."""
        for watch in self._watches:
            await watch.restore()

    async def mark(self) -> list[int | None]:
        return [await watch.mark() for watch in self._watches]

    async def since(self, marks: list[int | None]) -> ServerView:
        views = [await w.since(m) for w, m in zip(self._watches, marks, strict=True)]
        if len(views) == 1:
            return views[0]
        longest = max(
            (v for v in views if v.longest_ms is not None),
            key=lambda v: v.longest_ms or 0.0,
            default=None,
        )
        return ServerView(
            threshold_us=self.threshold_us,
            longest_ms=None if longest is None else longest.longest_ms,
            command=None if longest is None else longest.command,
            entries=sum(v.entries for v in views),
            complete=all(v.complete for v in views),
        )
