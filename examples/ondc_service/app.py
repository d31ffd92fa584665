"""The ONDC buyer app's HTTP side for many tenants: one Starlette app, one tenantkv client.

The tenant is the subscriber ID, the first path segment (``/<subscriber-id>/search``):
every route asks the one :class:`tenantkv.TenantClient` for that tenant's store (no
server call after the tenant's first) and runs a flow of ``flows.py`` on it.

Run it (from the repository root)::

    ONDC_REDIS_URL=redis://localhost:6379/0 uvicorn examples.ondc_service.app:create_app --factory

``ONDC_REDIS_URL`` may carry tenantkv and redis-py options
(``?max_connections=32&index=1``); ``memory://`` runs without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import tenantkv

from . import flows

__all__ = ["CLIENT_NAME", "DEFAULT_MAX_CONNECTIONS", "Tenants", "create_app"]

#: The name the service's Redis connections carry (``CLIENT LIST`` shows it).
CLIENT_NAME = "ondc-service"
#: Pool size when the URL does not say (``?max_connections=N``).
DEFAULT_MAX_CONNECTIONS = 16


class Tenants:
    """The service's one client, and a gate that keeps its pool's users within its size.

    redis-py's pool does not wait for a free connection: past ``max_connections``
    busy ones, a command fails ("Too many connections"). So the handlers hold
    :attr:`gate` around every call that takes a pooled connection, and a burst
    of requests waits its turn instead. Subscriptions do not take one: they
    share the client's pub/sub connection.
    """

    def __init__(self, client: tenantkv.TenantClient, max_connections: int) -> None:
        self.client = client
        self.gate = asyncio.Semaphore(max_connections)

    async def store(self, tenant: str) -> tenantkv.TenantStore:
        async with self.gate:  # the first store of a tenant asks the server about its index
            return await self.client.store(tenant)


def _tenants(request: Request) -> Tenants:
    tenants: Tenants = request.app.state.tenants
    return tenants


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise flows.BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise flows.BadRequest("the body must be a JSON object")
    return body


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise flows.BadRequest(f"the query needs {name}=")
    return value


Flow = Callable[..., Awaitable[dict[str, Any]]]
Endpoint = Callable[[Request], Awaitable[Response]]


async def _run(request: Request, flow: Flow, *args: Any) -> JSONResponse:
    tenants = _tenants(request)
    store = await tenants.store(request.path_params["tenant"])
    async with tenants.gate:
        return JSONResponse(await flow(store, *args))


def posted(flow: Flow) -> Endpoint:
    """An endpoint running ``flow(store, body)`` on the JSON body (a request or a callback)."""

    async def endpoint(request: Request) -> Response:
        return await _run(request, flow, await _body(request))

    return endpoint


def queried(flow: Flow, *names: str) -> Endpoint:
    """An endpoint running ``flow(store, *query values)``: what the browser polls."""

    async def endpoint(request: Request) -> Response:
        return await _run(request, flow, *(_query(request, name) for name in names))

    return endpoint


async def search_stream(request: Request) -> Response:
    """Server-sent events: ``initial``, an ``update`` per response, ``complete``/``expired``."""
    tenants = _tenants(request)
    store = await tenants.store(request.path_params["tenant"])
    events = flows.search_events(store, request.path_params["txn"], gate=tenants.gate)
    return StreamingResponse(
        _server_sent(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def _server_sent(events: AsyncGenerator[flows.Event, None]) -> AsyncIterator[str]:
    # Starlette cancels this when the client goes away; closing the flow's generator
    # leaves its subscription (on the server too) either way.
    async with contextlib.aclosing(events):
        async for event in events:
            yield f"event: {event.name}\ndata: {json.dumps(event.data)}\n\n"


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=503)


def _client_url(url: str) -> tenantkv.StoreURL:
    """``url`` parsed once, with the service's connection name and a pool size."""
    parsed = tenantkv.parse_url(url)
    if parsed.backend == "memory":
        return parsed
    options: dict[str, Any] = {"client_name": CLIENT_NAME}
    if parsed.client_options.get("max_connections") is None:
        options["max_connections"] = DEFAULT_MAX_CONNECTIONS
    return tenantkv.parse_url(parsed, **options)


def create_app(redis_url: str | None = None) -> Starlette:
    """The app on ``redis_url`` (default: ``$ONDC_REDIS_URL``); the client opens with the app."""
    url = _client_url(redis_url if redis_url is not None else os.environ["ONDC_REDIS_URL"])
    max_connections = url.client_options.get("max_connections") or DEFAULT_MAX_CONNECTIONS

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tenantkv.open_client(url) as client:
            app.state.tenants = Tenants(client, max_connections)
            yield

    on = "/{tenant}"  # the subscriber ID
    txn, msg, order = "transaction_id", "message_id", "order_id"
    routes = [
        Route("/health", health),
        Route(f"{on}/search", posted(flows.search), methods=["POST"]),
        Route(f"{on}/on_search", posted(flows.on_search), methods=["POST"]),
        Route(f"{on}/search-results", queried(flows.search_results, txn)),
        Route(f"{on}/search-stream/{{txn}}", search_stream),
        Route(f"{on}/select", posted(flows.select), methods=["POST"]),
        Route(f"{on}/on_select", posted(flows.on_select), methods=["POST"]),
        Route(f"{on}/select-results", queried(flows.select_results, txn, msg)),
        Route(f"{on}/status", posted(flows.status), methods=["POST"]),
        Route(f"{on}/on_status", posted(flows.on_status), methods=["POST"]),
        Route(f"{on}/status-results", queried(flows.status_results, order)),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        flows.BadRequest: _bad_request,
        tenantkv.InvalidInputError: _bad_request,
        tenantkv.BackendUnavailableError: _unavailable,
    }
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
