"""The buyer app's flows on one tenant's store: search (callbacks, a live stream), select, status.

The data model is the ONDC buyer app's (see ``README.md`` beside this file):

=================================  ==========================================  ======
key (relative to the tenant)       value                                       TTL
=================================  ==========================================  ======
``search:<txn>``                   the search entry                            30 min
``search:<txn>:responses``         list of on_search bodies                    30 min
``select:<txn>:<msg>``             the select entry, refreshed on callback     30 min
``select:<txn>:<msg>:response``    the on_select body                          30 min
``status:<order>``                 the status entry, refreshed on callback     24 h
``status:<order>:response``        the on_status body                          24 h
=================================  ==========================================  ======

Each callback is one batch: one round trip that reads the entry, stores the
response (with its TTL: the predecessor's response list never expired) and
publishes the update, applied atomically. Nothing here knows about HTTP;
``app.py`` maps requests onto these functions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import tenantkv

__all__ = [
    "COLLECTION_WINDOW_MS",
    "ENTRY_TTL_MS",
    "STATUS_TTL_MS",
    "BadRequest",
    "Event",
    "on_search",
    "on_select",
    "on_status",
    "search",
    "search_events",
    "search_results",
    "select",
    "select_results",
    "status",
    "status_results",
]

ENTRY_TTL_MS = 30 * 60 * 1000  # search and select entries, their responses
STATUS_TTL_MS = 24 * 60 * 60 * 1000  # status entries and responses
COLLECTION_WINDOW_MS = 5 * 60 * 1000  # how long on_search responses are collected (PT5M)
CHECK_EVERY_S = 1.0  # how often a live stream checks its entry and window

Json = dict[str, Any]


class BadRequest(ValueError):
    """A request or callback body without what the flow needs (the app answers 400)."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _received(body: Json) -> Json:
    """A callback body as stored: with the time it was received and an ID of its own."""
    return {**body, "_receivedAt": _now_ms(), "_responseId": uuid.uuid4().hex}


def _text(body: Json, name: str) -> str:
    """``body[name]``, which must be a non-empty string (else BadRequest)."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"the body needs {name!r} (a string)")
    return value


def _context(body: Json) -> Json:
    context = body.get("context")
    if not isinstance(context, dict):
        raise BadRequest("the body needs a 'context' object")
    _text(context, "transaction_id")
    return context


# -- search ------------------------------------------------------------------------------------


async def search(store: tenantkv.TenantStore, request: Json) -> Json:
    """Start a search: a new transaction whose entry lives 30 minutes."""
    txn, msg = str(uuid.uuid4()), str(uuid.uuid4())
    created = _now_ms()
    window = request.get("collection_window_ms", COLLECTION_WINDOW_MS)
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise BadRequest("collection_window_ms must be an int >= 0")
    entry = {
        "transactionId": txn,
        "messageId": msg,
        "categoryCode": request.get("category_code"),
        "createdAt": created,
        "ttlMs": window,
        "ttlExpiresAt": created + window,
    }
    await store.set(f"search:{txn}", entry, ttl_ms=ENTRY_TTL_MS)
    # The real app now sends /search to the gateway; BPPs answer with /on_search.
    return {"transaction_id": txn, "message_id": msg}


async def on_search(store: tenantkv.TenantStore, body: Json) -> Json:
    """A BPP's answer: read the entry, push the response (list TTL refreshed), publish it.

    One round trip, atomic: the response is in the list before any subscriber
    hears of it, and the list expires 30 minutes after its last response.
    """
    txn = _context(body)["transaction_id"]
    response = _received(body)
    async with store.batch() as b:
        entry = b.get(f"search:{txn}")
        count = b.list_push(f"search:{txn}:responses", response, ttl_ms=ENTRY_TTL_MS)
        b.publish(
            f"search:{txn}:updates",
            {"type": "response_added", "transactionId": txn, "response": response},
        )
    # The entry is read for the trace link (its traceparent) in the real app.
    return {"known_transaction": entry.value is not None, "responses": count.value}


async def search_results(store: tenantkv.TenantStore, txn: str) -> Json:
    """The entry and every response so far (the list is read in slices)."""
    entry = await store.get(f"search:{txn}")
    responses = await store.list_get_all(f"search:{txn}:responses")
    return {"entry": entry, "responses": responses, "complete": _window_passed(entry)}


def _window_passed(entry: Json | None) -> bool:
    return entry is not None and _now_ms() >= int(entry["ttlExpiresAt"])


@dataclass(frozen=True)
class Event:
    """One server-sent event of a live search stream."""

    name: str  # initial | update | complete | expired
    data: Json


async def search_events(
    store: tenantkv.TenantStore, txn: str, *, gate: AbstractAsyncContextManager[Any]
) -> AsyncGenerator[Event, None]:
    """The live stream of a search: ``initial``, then one ``update`` per new response.

    Subscribe first, then read: every response pushed after the subscription
    was confirmed is also published to it, and every one pushed before is in
    the list read after it, so none is missed. One landing in between is in
    both; its ``_responseId`` tells, and it is sent once. Every second (and
    between messages) the entry is checked: gone -> ``expired``, collection
    window over -> ``complete``; both end the stream. ``gate`` is held around
    every command that takes a pooled connection (see ``app.py``).
    """
    async with store.subscribe(f"search:{txn}:updates") as sub:
        async with gate:
            state = await search_results(store, txn)
        entry = state["entry"]
        if entry is None:
            yield Event("expired", {"transactionId": txn, "error": "Transaction not found"})
            return
        seen = {response["_responseId"] for response in state["responses"]}
        yield Event("initial", state)
        next_check = time.monotonic() + CHECK_EVERY_S
        while not _window_passed(entry):
            message = await sub.get(timeout=max(next_check - time.monotonic(), 0.0))
            if isinstance(message, dict) and message.get("type") == "response_added":
                response = message["response"]
                if response["_responseId"] not in seen:
                    seen.add(response["_responseId"])
                    yield Event("update", {"response": response, "responseCount": len(seen)})
            if time.monotonic() >= next_check:
                async with gate:
                    entry = await store.get(f"search:{txn}")
                if entry is None:
                    yield Event("expired", {"transactionId": txn, "error": "Transaction expired"})
                    return
                next_check = time.monotonic() + CHECK_EVERY_S
        yield Event("complete", {"transactionId": txn, "responseCount": len(seen)})


# -- select and status: an entry refreshed on its callback, polled by the browser ---------------


async def _start(store: tenantkv.TenantStore, key: str, entry: Json, ttl_ms: int) -> None:
    await store.set(key, {**entry, "createdAt": _now_ms()}, ttl_ms=ttl_ms)


async def _callback(
    store: tenantkv.TenantStore, key: str, body: Json, ttl_ms: int, update: Json
) -> Json:
    """Refresh the entry's TTL, store the response, publish: one round trip, atomic."""
    async with store.batch() as b:
        entry = b.get(key)
        b.set_ttl(key, ttl_ms)
        b.set(f"{key}:response", _received(body), ttl_ms=ttl_ms)
        b.publish(f"{key}:updates", update)
    return {"known_transaction": entry.value is not None}


async def _results(store: tenantkv.TenantStore, key: str) -> Json:
    entry, response = await store.get_many([key, f"{key}:response"])
    return {"entry": entry, "response": response, "hasResponse": response is not None}


async def select(store: tenantkv.TenantStore, request: Json) -> Json:
    """Ask a BPP for a quote on an item of a search: ``select:<txn>:<msg>``."""
    txn, msg = _text(request, "transaction_id"), str(uuid.uuid4())
    entry = {"transactionId": txn, "messageId": msg, **request}
    await _start(store, f"select:{txn}:{msg}", entry, ENTRY_TTL_MS)
    return {"transaction_id": txn, "message_id": msg}


async def on_select(store: tenantkv.TenantStore, body: Json) -> Json:
    context = _context(body)
    txn, msg = context["transaction_id"], _text(context, "message_id")
    update = {"type": "response_received", "transactionId": txn, "messageId": msg}
    return await _callback(store, f"select:{txn}:{msg}", body, ENTRY_TTL_MS, update)


async def select_results(store: tenantkv.TenantStore, txn: str, msg: str) -> Json:
    return await _results(store, f"select:{txn}:{msg}")


async def status(store: tenantkv.TenantStore, request: Json) -> Json:
    """Ask a BPP for an order's status: ``status:<order>``, kept 24 hours."""
    order = _text(request, "order_id")
    await _start(store, f"status:{order}", {"orderId": order, **request}, STATUS_TTL_MS)
    return {"order_id": order}


async def on_status(store: tenantkv.TenantStore, body: Json) -> Json:
    message = body.get("message")
    order = message.get("order") if isinstance(message, dict) else None
    if not isinstance(order, dict):
        raise BadRequest("the body needs message.order.id")
    order_id = _text(order, "id")
    update = {"type": "response_received", "orderId": order_id}
    return await _callback(store, f"status:{order_id}", body, STATUS_TTL_MS, update)


async def status_results(store: tenantkv.TenantStore, order: str) -> Json:
    return await _results(store, f"status:{order}")
