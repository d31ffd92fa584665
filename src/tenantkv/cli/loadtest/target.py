"""The Redis under test: connecting, refusing unsafe targets, describing it, cleaning up.

With ``--url`` the load test is a guest on someone's server, so before it
writes anything it checks that the database is empty (or that the user said
``--allow-nonempty``) and that nothing already lives under its own prefix;
everything it writes lives under that prefix, and at the end it deletes
exactly that, through the library's ``clear()``.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ...backends.redis import translate_errors
from ...glob import escape_glob
from ...opening import parse_url, redact_url
from ...store import TenantStore
from ..errors import CLIError

__all__ = ["Written", "check_target", "connect_admin", "describe_environment", "remove_leftovers"]

#: Schemes the load test can drive (the KEYS baseline needs one server).
SUPPORTED_SCHEMES = ("redis", "rediss")
ADMIN_SOCKET_TIMEOUT_S = 600.0


async def connect_admin(url: str) -> tuple[aioredis.Redis, str]:
    """A redis-py client for the tool's own commands, and the URL the probe should use."""
    parsed = parse_url(url)
    if parsed.scheme not in SUPPORTED_SCHEMES:
        raise CLIError(
            f"loadtest needs a single Redis server ({', '.join(SUPPORTED_SCHEMES)}://), "
            f"not {parsed.scheme}://"
        )
    client = aioredis.Redis.from_url(
        parsed.url,
        decode_responses=False,
        socket_connect_timeout=5.0,
        socket_timeout=ADMIN_SOCKET_TIMEOUT_S,
    )
    try:
        with translate_errors(parsed.redacted, "PING"):
            await client.ping()
    except BaseException:
        await client.aclose()
        raise
    return client, parsed.url


async def check_target(
    client: aioredis.Redis, *, url: str, prefix: str, allow_nonempty: bool, private: bool
) -> int:
    """Refuse a database the run could damage; returns its key count before the run."""
    redacted = redact_url(url)
    with translate_errors(redacted, "INFO"):
        info: dict[str, Any] = await client.info("server")
        if str(info.get("redis_mode", "standalone")) == "cluster":
            raise CLIError(f"{redacted} is a Redis Cluster node; loadtest needs a single server")
        size: int = await client.dbsize()
        if size and not (allow_nonempty or private):
            raise CLIError(
                f"the database at {redacted} holds {size:,} keys; loadtest writes only under "
                f"'{prefix}:' and deletes what it wrote, but refuses a non-empty database "
                f"unless --allow-nonempty"
            )
        found: bytes | str | None = None
        cursor = 0
        while True:
            cursor, page = await client.scan(cursor, match=escape_glob(prefix) + ":*", count=1000)
            if page or cursor == 0:
                found = page[0] if page else None
                break
    if found is not None:
        raise CLIError(
            f"the database at {redacted} already holds keys under '{prefix}:' "
            f"(e.g. {found!r}); choose another --prefix"
        )
    return size


@dataclass
class Written:
    """The stores whose tenants the run wrote to: what it must clear at the end."""

    stores: dict[str, TenantStore] = field(default_factory=dict)

    def add(self, store: TenantStore) -> None:
        self.stores.setdefault(store.tenant, store)

    async def clear(self) -> int:
        """Clear every tenant written through the library; how many keys were deleted."""
        deleted = 0
        for store in self.stores.values():
            deleted += await store.clear()
        return deleted


async def remove_leftovers(client: aioredis.Redis, prefix: str) -> int:
    """Delete keys still under ``prefix:`` after the library's clears; how many there were.

    ``check_target`` proved nothing lived under the prefix before the run, so
    anything found here was written by the run (e.g. bookkeeping keys a
    ``clear()`` did not remove); it is reported as a defect, then removed.
    """
    leftovers = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=escape_glob(prefix) + ":*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            leftovers += await client.unlink(*batch)
            batch.clear()
    if batch:
        leftovers += await client.unlink(*batch)
    return leftovers


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


async def describe_environment(
    client: aioredis.Redis, *, url: str, private_binary: str | None
) -> dict[str, Any]:
    """Redis version and machine facts for the JSON report."""
    info: dict[str, Any] = await client.info("server")
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "redis_version": str(info.get("redis_version")),
        "redis_mode": str(info.get("redis_mode")),
        "redis_os": str(info.get("os")),
        "server": "private redis-server" if private_binary else "given by --url",
        "server_binary": private_binary,
        "url": redact_url(url),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": _memory_mb(),
        "tenantkv": _version("tenantkv"),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "argv": [redact_url(arg) if "://" in arg else arg for arg in sys.argv[1:]],
    }
