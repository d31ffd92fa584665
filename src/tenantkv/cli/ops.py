"""The ops commands' work: list, count, stats, clear, reindex, verify-index.

Everything goes through :func:`tenantkv.open_store`, so these commands
enumerate exactly as the library does (SCAN, or the index), never with KEYS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, BinaryIO

from tenantkv import (
    KEY_ENCODING,
    IndexReport,
    KeyInfo,
    MigrationReport,
    Progress,
    TenantStore,
    open_store,
    redact_url,
)

__all__ = [
    "StoreTarget",
    "clear_tenant",
    "count_for_clearing",
    "count_keys",
    "describe",
    "inspect",
    "migrate",
    "reindex",
    "stream_keys",
    "tenant_stats",
    "verify_index",
]


@dataclasses.dataclass(frozen=True)
class StoreTarget:
    """Which store a command works on: URL, tenant, app prefix, with or without the index."""

    url: str
    tenant: str
    prefix: str | None = None
    index: bool = False

    def __repr__(self) -> str:
        # The URL may hold a password: a repr lands in tracebacks and logs.
        return (
            f"StoreTarget(url={redact_url(self.url)!r}, tenant={self.tenant!r}, "
            f"prefix={self.prefix!r}, index={self.index!r})"
        )

    async def open(self) -> TenantStore:
        options: dict[str, Any] = {}
        if self.prefix is not None:
            options["prefix"] = self.prefix
        if self.index:
            options["index"] = True
        return await open_store(self.url, tenant=self.tenant, **options)


async def stream_keys(
    target: StoreTarget,
    pattern: str,
    count: int | None,
    out: BinaryIO,
    end: bytes = b"\n",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the tenant's keys matching ``pattern`` to ``out`` as they arrive, each followed
    by ``end``.

    Keys are written as the bytes Redis holds (UTF-8, or whatever another
    program wrote), so no key fails to print whatever the terminal's encoding.
    """
    written = 0
    async with await target.open() as store:
        async for key in store.iter_keys(pattern, count=count):
            out.write(key.encode(*KEY_ENCODING) + end)
            written += 1
            if written % 1000 == 0:
                out.flush()
                if progress is not None:
                    progress(written)
    out.flush()
    return written


async def count_keys(target: StoreTarget, pattern: str, count: int | None) -> int:
    async with await target.open() as store:
        return await store.count_keys(pattern, count=count)


def describe(value: object) -> dict[str, Any]:
    """A result object (dataclass, mapping or plain value) as ``field -> value``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return dict(value)
    return {"result": value}


async def tenant_stats(target: StoreTarget) -> dict[str, Any]:
    async with await target.open() as store:
        stats = describe(await store.stats())
        return {"url": store.url, "prefix": store.namespace.prefix, **stats}


async def count_for_clearing(target: StoreTarget, count: int | None) -> tuple[int, str]:
    """The tenant's key count and where it lives (prefix and URL), for the question."""
    async with await target.open() as store:
        present = await store.count_keys(count=count)
        return present, f"prefix {store.namespace.prefix!r} at {store.url}"


async def clear_tenant(
    target: StoreTarget, count: int | None, progress: Callable[[Progress], None] | None = None
) -> int:
    """Delete every key of the tenant; how many were deleted."""
    async with await target.open() as store:
        return await store.clear(count=count, progress=progress)


async def migrate(
    target: StoreTarget,
    old_prefix: str,
    *,
    copy: bool,
    dry_run: bool,
    count: int | None,
    progress: Callable[[Progress], None] | None,
) -> MigrationReport:
    """Move the tenant's keys in from another layout (``TenantStore.migrate_from``)."""
    async with await target.open() as store:
        return await store.migrate_from(
            old_prefix, copy=copy, dry_run=dry_run, count=count, progress=progress
        )


async def inspect(target: StoreTarget, key: str, items: int) -> KeyInfo:
    async with await target.open() as store:
        return await store.inspect(key, items=items)


async def reindex(
    target: StoreTarget, count: int | None, progress: Callable[[Progress], None] | None = None
) -> IndexReport:
    """Repair the tenant's index (the store must be opened with the index); the report."""
    async with await target.open() as store:
        return await store.reindex(count=count, progress=progress)


async def verify_index(
    target: StoreTarget, count: int | None, progress: Callable[[Progress], None] | None = None
) -> IndexReport:
    """Compare the tenant's index with its keys, repairing nothing; the report."""
    async with await target.open() as store:
        return await store.verify_index(count=count, progress=progress)
