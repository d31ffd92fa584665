"""One pooled connection held by a walk: requests written ahead of the replies they wait for.

A walk (SCAN pages, index chunks, a clear) reads a reply, and as soon as it
knows the next position (the cursor, the last member) it writes the next
request, before the page it has is decoded and handed on: while the client
works, the server does. :class:`Wire` holds one connection of the client's
pool for the walk, because requests and replies are paired in order and
redis-py's command calls (one request, then its reply) cannot leave a reply
pending. ``await wire.send(...)`` returns once the bytes are written to the
socket, so the request is really in flight when the walk yields (an
``asyncio`` task would only send when the current task next yields).

Cleanliness: every reply is read before the connection goes back to the
pool; a walk that stops with replies outstanding (the consumer stopped,
an error, a cancellation) closes the connection instead, as redis-py itself
does on an interrupted read. The pool opens a new connection on next use.
(A clear's ``MULTI`` leaves no state behind once its ``EXEC`` is answered:
``EXEC`` ends the transaction even when it is refused, ``EXECABORT``.)

:func:`pack` and :func:`pack_keys` write RESP by hand for the commands of a
walk (``UNLINK`` of a page, ``SCAN``, the index reads): redis-py's
``pack_command`` costs about 1 us per argument, which for a 1,000-key
``UNLINK`` is as much as the server's own work; these cost 30-130 ns.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, NoReturn

from redis import exceptions as rexc
from redis.asyncio.connection import AbstractConnection, ConnectionPool

from ...pacing import Pace, StepCosts, StepKind, WalkPacer
from ...telemetry import not_counted

__all__ = ["CommandStats", "ErrorScope", "Pacing", "Wire", "held_wire", "pack", "pack_keys"]

ErrorScope = Callable[[str], contextlib.AbstractContextManager[None]]


def pack(*args: bytes) -> bytes:
    """The RESP encoding of one command whose arguments are all ``bytes``.

    Byte for byte what redis-py's ``Connection.pack_command`` writes for the
    same arguments (tests/test_walks.py checks it), at a fraction of its
    per-argument cost.
    """
    return b"*%d\r\n%b" % (len(args), _bulk(args))


def pack_keys(head: Sequence[bytes], keys: Sequence[bytes], prefix: bytes = b"") -> bytes:
    """:func:`pack` of ``head`` then ``prefix + key`` for each of ``keys`` (no key joined
    with the prefix first: an index's members become the data keys as they are written)."""
    return b"*%d\r\n%b%b" % (len(head) + len(keys), _bulk(head), _bulk(keys, prefix))


def _bulk(args: Sequence[bytes], prefix: bytes = b"") -> bytes:
    if not args:
        return b""
    lengths = set(map(len, args))
    if len(lengths) == 1:
        # Keys of one shape (fixed-width IDs) have one length: one join, no work per key
        # in Python (about 30 ns per key instead of 130).
        head = b"$%d\r\n%b" % (lengths.pop() + len(prefix), prefix)
        return head + (b"\r\n" + head).join(args) + b"\r\n"
    extra = len(prefix)
    return b"".join([b"$%d\r\n%b%b\r\n" % (len(arg) + extra, prefix, arg) for arg in args])


class Wire:
    """A walk's connection: :meth:`send` requests ahead, :meth:`read` their replies in order.

    Every call runs inside ``errors(command)`` (the backend's translation,
    which also raises a cancellation redis-py swallowed on Python 3.11).
    Use :func:`held_wire` to get one.
    """

    __slots__ = ("_command", "_conn", "_errors", "pending")

    def __init__(self, conn: AbstractConnection, errors: ErrorScope, command: str) -> None:
        self._conn = conn
        self._errors = errors
        self._command = command
        #: Replies written for and not yet read.
        self.pending = 0

    async def send(self, *commands: bytes, replies: int | None = None) -> None:
        """Write packed ``commands`` in one go; each expects one reply (or ``replies`` in all)."""
        # Counted first: a send that fails or is cancelled half-way (or a cancellation
        # raised once the bytes are out, see .errors) leaves the connection to be closed.
        self.pending += len(commands) if replies is None else replies
        # Telemetry counts a command when its reply is read (below), not when it is sent.
        with not_counted(), self._errors(self._command):
            await self._conn.send_packed_command(list(commands), check_health=False)

    async def read(self, *, error_ok: bool = False) -> Any:
        """The next reply. A reply that is an error is raised (and counted as read), or with
        ``error_ok`` returned (redis-py's exception object)."""
        try:
            with self._errors(self._command):
                try:
                    reply = await self._conn.read_response()
                except rexc.ResponseError as exc:
                    if not error_ok:
                        raise
                    reply = exc
        except BaseException:
            # redis-py raises an error reply only after it read it whole; any other
            # failure leaves the connection closed, which the exit handles anyway.
            self.pending -= 1
            raise
        self.pending -= 1
        return reply

    def fail(self, reply: Exception) -> NoReturn:
        """Raise an error reply :meth:`read` returned (``error_ok``), translated as if
        :meth:`read` had raised it (and not counted again)."""
        with not_counted(), self._errors(self._command):
            raise reply

    async def rest(self) -> None:
        """Read and drop every reply still pending (errors included)."""
        while self.pending > 0:
            with contextlib.suppress(Exception):
                await self.read()


@contextlib.asynccontextmanager
async def held_wire(pool: ConnectionPool, errors: ErrorScope, command: str) -> AsyncIterator[Wire]:
    """A connection of ``pool`` held for one walk; given back clean, or closed."""
    # Not counted by telemetry: a connection (and its HELLO) is not a command of the walk.
    with not_counted(), errors(command):
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    wire = Wire(conn, errors, command)
    try:
        yield wire
    finally:
        try:
            if wire.pending:
                # A reply still on its way must not reach the connection's next user:
                # drop the connection, the pool makes a new one.
                await conn.disconnect(nowait=True)
        finally:
            await pool.release(conn)


class Pacing:
    """A Redis backend's step costs (:mod:`tenantkv.pacing`), and the servers that refuse
    ``INFO``; shared by every walk of the backend."""

    __slots__ = ("costs", "info_refused")

    def __init__(self) -> None:
        self.costs = StepCosts()
        self.info_refused: set[object] = set()

    def stats(
        self, kind: StepKind, pace: Pace, names: tuple[bytes, ...], server: object = None
    ) -> CommandStats:
        """The :class:`CommandStats` of one walk of ``kind`` on ``server``."""
        pacer = WalkPacer(self.costs(kind, server), pace)
        return CommandStats(pacer, names, self, server)


class CommandStats:
    """A walk's reading of ``INFO commandstats``: the server time its own commands took.

    The walk writes ``INFO commandstats`` on its own connection now and then
    (:meth:`due`): once before its first step, then after a few steps. Two
    readings differ by the walk's own commands only if the server counted
    exactly the calls the walk wrote in between; otherwise another client's
    commands of the same names are in the counts, and the window is dropped.
    Where ``INFO`` is refused (an ACL, a managed service), each step is timed
    from its write to its reply instead (:meth:`replied`), which overstates
    the server's time, so COUNT errs low.
    """

    #: Steps between readings: the first after 2 steps, then every 8.
    FIRST, EVERY = 2, 8
    INFO = pack(b"INFO", b"commandstats")

    __slots__ = (
        "_calls",
        "_keys",
        "_last",
        "_names",
        "_next",
        "_pacing",
        "_server",
        "_steps",
        "_windows",
        "_written",
        "pacer",
    )

    def __init__(
        self, pacer: WalkPacer, names: tuple[bytes, ...], pacing: Pacing, server: object
    ) -> None:
        self.pacer = pacer
        #: Command names whose time counts (``b"scan"``, ``b"unlink"``...), as INFO spells them.
        self._names = names
        self._pacing = pacing
        self._server = server
        self._last: dict[bytes, tuple[int, int]] | None = None
        self._calls = dict.fromkeys(names, 0)
        self._keys = 0
        self._steps = 0
        self._next = 0
        #: Per INFO written and not yet read: the calls and keys written before it.
        self._windows: deque[tuple[dict[bytes, int], int]] = deque()
        self._written = False

    @property
    def fresh(self) -> bool:
        """No INFO written yet: the next one is the walk's starting point."""
        return not self._written

    @property
    def refused(self) -> bool:
        return self._server in self._pacing.info_refused

    def due(self) -> bool:
        """Whether the next write should carry an INFO."""
        return not self.refused and self._steps >= self._next

    def sent(self, count: int, *calls: bytes) -> None:
        """One step of ``count`` keys was written: these command names, once each."""
        for name in calls:
            self._calls[name] += 1
        self._keys += count
        self._steps += 1

    def info_written(self) -> None:
        """An INFO was written after the steps :meth:`sent` so far."""
        self._written = True
        self._windows.append((self._calls, self._keys))
        self._calls = dict.fromkeys(self._names, 0)
        self._keys = 0
        self._next = self._steps + (self.FIRST if self._last is None else self.EVERY)

    def replied(self, seconds: float, count: int) -> None:
        """A step of ``count`` keys was answered ``seconds`` after it was written."""
        if self.refused:
            self.pacer.elapsed(seconds, count)

    def reading(self, reply: object) -> None:
        """Take in the reply to an INFO the walk wrote (an error reply: INFO is refused)."""
        if isinstance(reply, Exception):
            self._pacing.info_refused.add(self._server)
            self._windows.clear()
            return
        if not self._windows:  # written before INFO was found refused (by another walk)
            return
        calls, keys = self._windows.popleft()
        now = _parse_commandstats(reply, self._names)
        before, self._last = self._last, now
        if before is None:
            return
        slowest = 0
        for name in self._names:
            if now[name][0] - before[name][0] != calls[name]:
                return  # another client's commands are in the counts
            slowest = max(slowest, now[name][1] - before[name][1])
        self.pacer.window(slowest, keys)


def _parse_commandstats(reply: object, names: tuple[bytes, ...]) -> dict[bytes, tuple[int, int]]:
    """``{name: (calls, usec)}`` from an ``INFO commandstats`` reply (absent: no calls yet)."""
    text = reply if isinstance(reply, bytes) else str(reply).encode()
    out: dict[bytes, tuple[int, int]] = {}
    for name in names:
        head = b"cmdstat_" + name + b":"
        start = text.find(head)
        if start < 0:
            out[name] = (0, 0)
            continue
        fields = dict(_fields(text, start + len(head)))
        out[name] = (fields.get(b"calls", 0), fields.get(b"usec", 0))
    return out


def _fields(text: bytes, start: int) -> Iterator[tuple[bytes, int]]:
    end = text.find(b"\r\n", start)
    line = text[start : end if end >= 0 else len(text)]
    for item in line.split(b","):
        key, _, value = item.partition(b"=")
        if value.isdigit():
            yield key, int(value)
