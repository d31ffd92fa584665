"""OpenTelemetry: one span and two metrics per tenantkv operation, a no-op without the API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tenantkv
from tenantkv import TenantStore

from .conftest import new_tenant
from .servers import FixtureServer

_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def _providers() -> None:
    """The process-wide providers, set once (OpenTelemetry refuses to replace them)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(found) == 1, [span.name for span in exporter.get_finished_spans()]
    return found[0]


def metric_points(name: str) -> list[Any]:
    data = _READER.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def test_every_operation_makes_one_span(
    store: TenantStore, spans: InMemorySpanExporter
) -> None:
    await store.set_many({f"k{i}": i for i in range(30)})
    assert len(await store.keys()) == 30
    assert [k async for k in store.iter_keys("k1*")] != []
    assert await store.count_keys() == 30
    async with store.batch() as b:
        b.set("x", 1)
        b.publish("ch", 1)
    assert await store.clear() == 31
    strategy = store.strategy
    assert strategy in ("scan", "index")
    for name, keys in [("keys", 30), ("count_keys", 30), ("clear", 31)]:
        span = only(spans, f"tenantkv.{name}")
        attributes = dict(span.attributes or {})
        assert attributes["tenantkv.operation"] == name
        assert attributes["tenantkv.tenant"] == store.tenant
        assert attributes["tenantkv.strategy"] == strategy
        assert attributes["tenantkv.keys"] == keys
    assert dict(only(spans, "tenantkv.batch").attributes or {})["tenantkv.keys"] == 2
    listed = dict(only(spans, "tenantkv.iter_keys").attributes or {})
    assert listed["tenantkv.keys"] == 11  # k1, k10 ... k19
    durations = metric_points("tenantkv.operation.duration")
    assert {p.attributes["tenantkv.operation"] for p in durations} >= {"keys", "clear", "batch"}
    assert all("tenantkv.tenant" not in p.attributes for p in durations)  # no per-tenant series


@pytest.mark.redis
async def test_server_calls_are_the_commands_the_operation_sent(
    spans: InMemorySpanExporter,
) -> None:
    with FixtureServer() as server:
        async with tenantkv.open_store(server.url, tenant=new_tenant(), count=100) as store:
            await store.set_many({f"k{i}": i for i in range(1000)})
            with server.client() as raw:
                raw.config_resetstat()

                async def consumer() -> None:
                    async for _ in store.iter_keys():
                        await store.get("k1")  # the consumer's own calls are not counted

                await consumer()
                stats = raw.info("commandstats")
    # The walk's SCANs, and the INFO commandstats it reads now and then to pace them;
    # not the consumer's GETs.
    sent = {name: int(stats[f"cmdstat_{name}"]["calls"]) for name in ("scan", "info")}
    attributes = dict(only(spans, "tenantkv.iter_keys").attributes or {})
    assert attributes["tenantkv.server_calls"] == sent["scan"] + sent["info"]
    assert sent["scan"] >= 10
    assert attributes["tenantkv.keys"] == 1000


def test_without_the_api_everything_works_and_nothing_is_recorded() -> None:
    code = """
import importlib.abc, sys, asyncio
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(name, name=name)
sys.meta_path.insert(0, Missing())
import tenantkv
async def main():
    async with tenantkv.open_store("memory://", tenant="t") as store:
        await store.set("k", 1)
        print(await store.keys(), await store.clear())
asyncio.run(main())
assert "opentelemetry" not in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['k'] 1"
