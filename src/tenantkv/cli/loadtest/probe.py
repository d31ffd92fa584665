"""The open-loop latency probe: what every other client of the server feels.

A separate process (so neither the GIL nor the enumerating client's event
loop can delay it) holds its own synchronous connection and sends ``GET`` on
a fixed schedule, one every ``interval_ms``. Each reply's latency is measured
from the time the request was *scheduled*, not from when it was actually
sent: if the server stalls for 200 ms, the requests that should have gone out
during the stall are sent as soon as possible afterwards and are charged
200 ms, 199 ms, ... (no coordinated omission), as an SRE's external probe
would see it.

Requests are pipelined on the one connection: each goes out at its
scheduled time even while earlier ones wait for a reply (see :func:`_record`).

The parent drives it through a pipe: ``begin()`` starts a recording,
``end()`` stops it and returns the samples. Clock: ``time.monotonic()``,
which is system-wide on Linux, so the parent's timestamps of an enumeration
and the probe's samples share one time axis.

On a Redis Cluster one probe runs per primary (:class:`Probes`), each in its
own process with its own connection, GETting a key that primary serves;
their samples are pooled.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import selectors
import signal
import socket
import time
from array import array
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Self

import redis

from ..errors import CLIError
from .lifecycle import Started

__all__ = ["Probe", "ProbeRecording", "Probes"]

_READY_TIMEOUT_S = 60.0
_REPLY_TIMEOUT_S = 120.0
#: A GET must come back within this long or the probe reports an error.
_SOCKET_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ProbeRecording:
    """The probe's samples of one recording: scheduled send times and latencies, in seconds."""

    scheduled: array[float]
    latency: array[float]
    #: How late each request was actually sent (the probe process was starved of CPU).
    send_lag: array[float]

    def overlapping(self, start: float, end: float) -> list[int]:
        """Indexes of the requests in flight at any time during ``[start, end]``."""
        return [
            i
            for i, (sched, lat) in enumerate(zip(self.scheduled, self.latency, strict=True))
            if sched <= end and sched + lat >= start
        ]

    @classmethod
    def pooled(cls, recordings: list[ProbeRecording]) -> ProbeRecording:
        """The samples of several probes as one recording, in order of scheduled time."""
        if len(recordings) == 1:
            return recordings[0]
        rows = sorted(
            (sched, lat, lag)
            for rec in recordings
            for sched, lat, lag in zip(rec.scheduled, rec.latency, rec.send_lag, strict=True)
        )
        return cls(
            array("d", (r[0] for r in rows)),
            array("d", (r[1] for r in rows)),
            array("d", (r[2] for r in rows)),
        )

    def timeline(self, origin: float) -> list[tuple[float, float]]:
        """``(ms since origin, latency ms)`` of every sample, for the chart."""
        return [
            ((sched - origin) * 1000.0, lat * 1000.0)
            for sched, lat in zip(self.scheduled, self.latency, strict=True)
        ]


def _probe_main(conn: Connection, url: str, key: str, interval_s: float) -> None:
    """The probe process: answer the parent's ``run`` / ``stop`` / ``quit`` messages."""
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=_SOCKET_TIMEOUT_S,
            socket_connect_timeout=10.0,
            single_connection_client=True,
        )
        value = client.get(key)  # connects, authenticates, selects the database
        connection = client.connection
        assert connection is not None
        assert isinstance(value, bytes)
        packed = b"".join(connection.pack_command("GET", key))  # type: ignore[no-untyped-call]
        # redis-py set the connection up (AUTH, SELECT, TLS); the probe then
        # speaks RESP on its socket directly, to pipeline on a schedule.
        sock = connection._sock
        assert sock is not None
    except (redis.RedisError, OSError, AssertionError) as exc:
        conn.send(("error", f"probe cannot connect: {exc}"))
        return
    # Every reply is the same bulk string, so replies are counted by length.
    reply = b"$%d\r\n%s\r\n" % (len(value), value)
    conn.send(("ready",))
    try:
        while conn.recv() == "run":
            t0 = time.monotonic() + interval_s
            conn.send(("started", t0))
            samples = _record(conn, sock, packed, reply, t0, interval_s)
            conn.send(("samples", *(a.tobytes() for a in samples)))
    except (OSError, ProbeError) as exc:
        conn.send(("error", f"probe GET failed: {exc}"))
    except EOFError:  # the parent went away
        pass
    finally:
        client.close()


class ProbeError(Exception):
    """The server answered the probe with something other than the probe key's value."""


def _record(
    conn: Connection,
    sock: socket.socket,
    packed: bytes,
    reply: bytes,
    t0: float,
    interval_s: float,
) -> tuple[array[float], array[float], array[float]]:
    """Send a GET every ``interval_s`` until the parent says stop; the samples.

    Requests go out on schedule whether or not earlier replies are back
    (pipelined on one connection), as independent clients would send them: a
    server stall delays every request due during it by what is left of the
    stall, and once it ends they are all answered in one go. Waiting for each
    reply before sending the next would let one slow command per request hold
    the probe back and grow a backlog that is the probe's, not the server's.
    """
    scheduled: array[float] = array("d")
    latency: array[float] = array("d")
    send_lag: array[float] = array("d")
    outstanding: deque[tuple[float, float]] = deque()
    pending = b""
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    sock.setblocking(False)
    i = 0
    stopping = False
    drain_deadline = 0.0
    try:
        while True:
            now = time.monotonic()
            if not stopping and conn.poll():
                conn.recv()  # the "stop"
                stopping = True
                drain_deadline = now + _SOCKET_TIMEOUT_S
            if stopping and (not outstanding or now > drain_deadline):
                break
            due = t0 + i * interval_s
            if not stopping and now >= due:
                sock.setblocking(True)
                sock.sendall(packed)
                sock.setblocking(False)
                outstanding.append((due, now))
                i += 1
                continue
            remaining = due - now
            if not stopping and not outstanding:
                time.sleep(remaining)  # nothing to read: sleep to the due time exactly
                continue
            # epoll rounds a timeout up to whole milliseconds, so wait in select()
            # only when the next request is not due within ~1 ms; closer to it,
            # poll and nap in 0.1 ms steps.
            timeout = 0.01 if stopping else remaining - 0.001 if remaining >= 0.002 else 0.0
            if not _readable(selector, sock, min(timeout, 0.01)):
                if timeout == 0.0:
                    time.sleep(min(remaining, 0.0001))
                continue
            try:
                data = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise ProbeError("the server closed the probe's connection")
            done = time.monotonic()
            pending += data
            answered = len(pending) // len(reply)
            if pending[: len(reply)] != reply[: len(pending)]:
                raise ProbeError(f"unexpected reply {pending[:80]!r}")
            pending = pending[answered * len(reply) :]
            for _ in range(answered):
                due_at, sent_at = outstanding.popleft()
                scheduled.append(due_at)
                latency.append(done - due_at)
                send_lag.append(sent_at - due_at)
    finally:
        selector.close()
        sock.setblocking(True)
    return scheduled, latency, send_lag


def _readable(selector: selectors.BaseSelector, sock: socket.socket, timeout: float) -> bool:
    pending = getattr(sock, "pending", None)  # TLS: decrypted bytes select() cannot see
    if callable(pending) and pending():
        return True
    return bool(selector.select(max(timeout, 0.0)))


class Probe(Started):
    """Controls the probe process. Use as a context manager; it is stopped on exit."""

    def __init__(self, url: str, key: str, *, interval_ms: float) -> None:
        self._url = url
        self._key = key
        self.interval_ms = interval_ms
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def __repr__(self) -> str:
        return f"Probe(key={self._key!r}, interval_ms={self.interval_ms})"

    def start(self) -> Self:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_probe_main,
            args=(child, self._url, self._key, self.interval_ms / 1000.0),
            name="tenantkv-probe",
            daemon=True,
        )
        process.start()
        child.close()
        self._conn, self._process = parent, process
        self._expect("ready", _READY_TIMEOUT_S)
        return self

    def _expect(self, kind: str, timeout: float) -> tuple[object, ...]:
        conn = self._connection()
        if not conn.poll(timeout):
            raise CLIError(f"the latency probe did not answer within {timeout:.0f} s")
        try:
            message: tuple[object, ...] = conn.recv()
        except EOFError:
            raise CLIError("the latency probe process exited unexpectedly") from None
        if message[0] == "error":
            raise CLIError(str(message[1]))
        if message[0] != kind:
            raise CLIError(f"the latency probe answered {message[0]!r}, expected {kind!r}")
        return message

    def _connection(self) -> Connection:
        if self._conn is None:
            raise CLIError("the latency probe is not running")
        return self._conn

    def begin(self) -> float:
        """Start a recording; returns the time of its first scheduled request."""
        self._connection().send("run")
        (_, t0) = self._expect("started", _REPLY_TIMEOUT_S)
        assert isinstance(t0, float)
        return t0

    def end(self) -> ProbeRecording:
        """Stop the recording and return its samples."""
        self._connection().send("stop")
        _, *raw = self._expect("samples", _REPLY_TIMEOUT_S)
        arrays: list[array[float]] = []
        for data in raw:
            assert isinstance(data, bytes)
            values: array[float] = array("d")
            values.frombytes(data)
            arrays.append(values)
        scheduled, latency, send_lag = arrays
        return ProbeRecording(scheduled, latency, send_lag)

    def stop(self) -> None:
        """Stop the process (idempotent)."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send("quit")
            conn.close()
        if process is not None:
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join(5.0)


class Probes(Started):
    """One :class:`Probe` per node (one process and connection each), driven as one.

    ``targets`` are ``(url, key)`` pairs; :meth:`end` pools their samples.
    Use as a context manager; every probe is stopped on exit.
    """

    def __init__(self, targets: list[tuple[str, str]], *, interval_ms: float) -> None:
        self.interval_ms = interval_ms
        self._probes = [Probe(url, key, interval_ms=interval_ms) for url, key in targets]
        self._started: list[Probe] = []

    def __repr__(self) -> str:
        return f"Probes({len(self._probes)} x GET every {self.interval_ms:g} ms)"

    def __len__(self) -> int:
        return len(self._probes)

    def start(self) -> Self:
        try:
            for probe in self._probes:
                probe.start()
                self._started.append(probe)
        except BaseException:
            self.stop()
            raise
        return self

    def begin(self) -> float:
        """Start a recording on every probe; the earliest first scheduled request."""
        return min(probe.begin() for probe in self._started)

    def end(self) -> ProbeRecording:
        """Stop every probe's recording; their samples pooled."""
        return ProbeRecording.pooled([probe.end() for probe in self._started])

    def stop(self) -> None:
        """Stop every probe process (idempotent)."""
        started, self._started = self._started, []
        for probe in started:
            probe.stop()
