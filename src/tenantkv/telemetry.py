"""OpenTelemetry for what only tenantkv knows: its operations, through ``opentelemetry-api``.

redis-py (>= 7.2) reports every Redis command itself; tenantkv adds one span
and two metrics per store operation that may take many commands: listing
(``keys``, ``iter_keys``, ``count_keys``), ``clear``, ``reindex``,
``verify_index``, ``prune_index`` and ``batch``:

- span ``tenantkv.<operation>`` with attributes ``tenantkv.operation``,
  ``tenantkv.tenant``, ``tenantkv.strategy`` (``scan``, ``index`` or
  ``batch``), ``tenantkv.keys`` (keys listed, counted or deleted; calls in a
  batch) and ``tenantkv.server_calls`` (Redis commands the operation sent);
- histogram ``tenantkv.operation.duration`` (seconds) and counter
  ``tenantkv.operation.keys``, both with ``tenantkv.operation`` and
  ``tenantkv.strategy`` only: a tenant attribute on metrics would make one
  time series per tenant.

The package is an optional extra (``pip install 'tenantkv[telemetry]'``).
Without it every call here is a no-op; with it and no SDK configured, the
API's own no-op tracer and meter are used, as OpenTelemetry intends.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Operation", "count_server_call", "instrumented", "not_counted", "operation"]

T = TypeVar("T")

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # the telemetry extra is not installed
    _tracer: Any = None
    _duration: Any = None
    _keys: Any = None
else:
    _tracer = _trace.get_tracer("tenantkv")
    _meter = _metrics.get_meter("tenantkv")
    _duration = _meter.create_histogram(
        "tenantkv.operation.duration", unit="s", description="Duration of a tenantkv operation"
    )
    _keys = _meter.create_counter(
        "tenantkv.operation.keys", description="Keys listed, counted or deleted by an operation"
    )


@dataclass(slots=True)
class Operation:
    """What one running operation has done so far."""

    name: str
    tenant: str
    strategy: str
    keys: int = 0
    server_calls: int = 0


#: The operation the current task is running, if any (tasks it starts share it).
_current: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "tenantkv_operation", default=None
)


def count_server_call() -> None:
    """A server command was sent; counted against the operation running, if one is."""
    record = _current.get()
    if record is not None:
        record.server_calls += 1


@contextlib.contextmanager
def not_counted() -> Iterator[None]:
    """Commands sent inside are not counted (their replies are, one per command)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def operation(
    name: str, tenant: str, strategy: str, *, streaming: bool = False
) -> Iterator[Operation]:
    """Measure the operation run inside the ``with`` block (see the module docstring).

    With ``streaming`` (an async generator's body, which its consumer resumes
    between its own awaits) nothing is made current: the generator counts its
    server calls with :func:`instrumented`, and the span is not the parent of
    the consumer's work.
    """
    record = Operation(name, tenant, strategy)
    token = None if streaming else _current.set(record)
    try:
        if _tracer is None:
            yield record
            return
        attributes = {
            "tenantkv.operation": name,
            "tenantkv.tenant": tenant,
            "tenantkv.strategy": strategy,
        }
        started = time.perf_counter()
        span_scope = (
            _ended(_tracer.start_span(f"tenantkv.{name}", attributes=attributes))
            if streaming
            else _tracer.start_as_current_span(f"tenantkv.{name}", attributes=attributes)
        )
        with span_scope as span:
            try:
                yield record
            finally:
                span.set_attribute("tenantkv.keys", record.keys)
                span.set_attribute("tenantkv.server_calls", record.server_calls)
                labels = {"tenantkv.operation": name, "tenantkv.strategy": strategy}
                _duration.record(time.perf_counter() - started, labels)
                _keys.add(record.keys, labels)
    finally:
        if token is not None:
            _current.reset(token)


@contextlib.contextmanager
def _ended(span: Any) -> Iterator[Any]:
    """A span that is not made current, ended (with the error, if any) when the block ends."""
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()


async def instrumented(
    batches: AsyncGenerator[list[T], None], record: Operation
) -> AsyncGenerator[list[T], None]:
    """``batches``, with the operation ``record`` current only while a batch is fetched
    (and ``batches`` closed when this generator is).

    For async generators: a consumer's own awaits between two batches must
    not be counted as the operation's server calls.
    """
    async with contextlib.aclosing(batches):
        while True:
            token = _current.set(record)
            try:
                batch = await batches.__anext__()
            except StopAsyncIteration:
                return
            finally:
                _current.reset(token)
            record.keys += len(batch)
            yield batch
