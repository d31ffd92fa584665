"""Where a tenant's keys live: validation of tenant IDs and the physical key layout.

Layout (``prefix`` defaults to ``tkv``)::

    <prefix>:{<tenant>}:<key>          a user key (value or list)
    <prefix>:{<tenant>}:<channel>      a pub/sub channel (channels and keys never mix in Redis)
    <prefix>:{<tenant>}#<name>         the store's own bookkeeping (e.g. the index)

Why this shape:

- The tenant sits inside a ``{hash tag}``, so on Redis Cluster every key of a
  tenant (and its index) lives in one hash slot: MULTI/EXEC and scripts over a
  tenant's keys are legal, and Redis >= 7.4 walks only that slot for a
  ``SCAN MATCH <prefix>:{<tenant>}:*``.
- Tenant IDs may not contain ``{ } : #`` or glob characters, so the closing
  ``}`` makes one tenant's namespace never a prefix of another's
  (``tkv:{a}:`` vs ``tkv:{a.b}:`` vs ``tkv:{ab}:``).
- Bookkeeping keys use ``#`` after the tag instead of ``:``, so no
  ``MATCH <prefix>:{<tenant>}:*`` can ever return them as user keys.

Sharding (option ``shards=N``, default 1): one hash slot is served by one
cluster primary, so a tenant too large for one node can be spread over ``N``
slots. Its keys then live under ``<prefix>:{<tenant>:NN}:<key>``, ``NN`` being
the two-digit shard number ``crc32(key) % N``. Listing, counting and clearing
by SCAN match ``<prefix>:{<tenant>:[0-9][0-9]}:<pattern>``, which covers every
shard and, as tenant IDs hold no ``:`` or ``}``, nothing of another tenant or
of the unsharded layout. With the key index (``index=true``) each shard has
its own index in its own slot (``<prefix>:{<tenant>:NN}#idx`` and ``#exp``,
see :meth:`Namespace.meta_key`) covering that shard's keys, so every write
still changes one key and its index entry in one slot. ``N`` is part of the
layout: open a tenant's data with the ``shards`` value it was written with.
With ``N`` > 1, ``set_many`` is all-or-none per shard only (one script per
shard) on Redis Cluster, and with the index also on a single Redis server.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .codec import encode_key
from .glob import escape_glob
from .validation import MAX_SHARDS, check_prefix, check_shards, check_tenant

__all__ = ["DEFAULT_PREFIX", "MAX_SHARDS", "Namespace"]

DEFAULT_PREFIX = "tkv"


@dataclass(frozen=True, slots=True)
class Namespace:
    """The physical home of one tenant's keys, channels and bookkeeping.

    With ``shards`` > 1 (see the module docstring) each key lives in one of
    ``shards`` hash-tagged shards picked by a stable hash of the key, so one
    large tenant spreads over that many cluster hash slots.
    """

    tenant: str
    prefix: str = DEFAULT_PREFIX
    # -- sharding (tenantkv.backends.redis.cluster) ----------------------------
    #: Hash-tagged shards the tenant's keys are spread over; 1 = one hash slot.
    shards: int = 1

    def __post_init__(self) -> None:
        check_tenant(self.tenant)
        check_prefix(self.prefix)
        check_shards(self.shards)

    @property
    def hash_tag(self) -> str:
        """The ``{...}`` part of an unsharded tenant (and of its channels and bookkeeping)."""
        return "{" + self.tenant + "}"

    @property
    def key_prefix(self) -> str:
        """What every physical user key (and channel) of the tenant starts with.

        For a sharded tenant this is the part all shards share
        (``<prefix>:{<tenant>:``); use :meth:`shard_prefix` for one shard.
        """
        if self.shards == 1:
            return f"{self.prefix}:{self.hash_tag}:"
        return f"{self.prefix}:{{{self.tenant}:"

    def shard_of(self, key: str) -> int:
        """The shard of a tenant-relative ``key``: CRC-32 of its UTF-8 bytes mod ``shards``."""
        if self.shards == 1:
            return 0
        return zlib.crc32(encode_key(key)) % self.shards

    def shard_prefix(self, shard: int) -> str:
        """What every physical key of ``shard`` starts with (``<prefix>:{<tenant>:NN}:``)."""
        if self.shards == 1:
            return self.key_prefix
        return f"{self.prefix}:{{{self.tenant}:{shard:02d}}}:"

    def physical_shard(self, physical_key: str) -> int:
        """The shard a physical key of this namespace lives in, read from the key itself."""
        if self.shards == 1:
            return 0
        start = len(self.key_prefix)
        return int(physical_key[start : start + 2])

    def key(self, key: str) -> str:
        """The physical key for a tenant-relative ``key``."""
        return self.shard_prefix(self.shard_of(key)) + key

    def relative(self, physical_key: str) -> str:
        """The tenant-relative key for a physical key of this namespace."""
        # Every shard prefix has the same length (two-digit shard numbers).
        return physical_key[len(self.shard_prefix(0)) :]

    def match(self, pattern: str) -> str:
        """A ``SCAN MATCH`` pattern: the escaped namespace, then the user's pattern.

        For a sharded tenant it covers every shard (``<prefix>:{<tenant>:[0-9][0-9]}:``);
        tenant IDs contain no ``:`` and no ``}``, so it cannot reach another
        tenant's keys nor those of the unsharded layout.
        """
        if self.shards == 1:
            return escape_glob(self.key_prefix) + pattern
        return escape_glob(self.key_prefix) + "[0-9][0-9]}:" + pattern

    def meta_key(self, name: str, shard: int | None = None) -> str:
        """A bookkeeping key of the store's own, never returned as a user key.

        Without ``shard`` it lives in the unsharded tenant slot; with ``shard``
        in that shard's slot (where that shard's key index lives).
        """
        if shard is None or self.shards == 1:
            return f"{self.prefix}:{self.hash_tag}#{name}"
        return f"{self.prefix}:{{{self.tenant}:{shard:02d}}}#{name}"
