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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidTenantError
from .glob import escape_glob

__all__ = ["DEFAULT_PREFIX", "PREFIX_ALPHABET", "TENANT_ALPHABET", "Namespace"]

DEFAULT_PREFIX = "tkv"
TENANT_ALPHABET = "ASCII letters, digits, '.', '-' and '_' (1 to 128 characters)"
PREFIX_ALPHABET = "ASCII letters, digits, '.', '-', '_' and ':' (1 to 64 characters)"

_TENANT_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_PREFIX_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def validate_tenant(tenant: object) -> str:
    """Return ``tenant`` if it is a valid tenant ID, else raise :class:`InvalidTenantError`."""
    if not isinstance(tenant, str) or _TENANT_RE.fullmatch(tenant) is None:
        raise InvalidTenantError(f"invalid tenant ID {tenant!r}: allowed are {TENANT_ALPHABET}")
    return tenant


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a valid app prefix, else raise :class:`InvalidTenantError`."""
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
        raise InvalidTenantError(f"invalid app prefix {prefix!r}: allowed are {PREFIX_ALPHABET}")
    return prefix


@dataclass(frozen=True, slots=True)
class Namespace:
    """The physical home of one tenant's keys, channels and bookkeeping."""

    tenant: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        validate_tenant(self.tenant)
        validate_prefix(self.prefix)

    @property
    def hash_tag(self) -> str:
        """The ``{...}`` part that pins the tenant to one cluster hash slot."""
        return "{" + self.tenant + "}"

    @property
    def key_prefix(self) -> str:
        """What every physical user key (and channel) of the tenant starts with."""
        return f"{self.prefix}:{self.hash_tag}:"

    def key(self, key: str) -> str:
        """The physical key for a tenant-relative ``key``."""
        return self.key_prefix + key

    def relative(self, physical_key: str) -> str:
        """The tenant-relative key for a physical key of this namespace."""
        return physical_key[len(self.key_prefix) :]

    def match(self, pattern: str) -> str:
        """A ``SCAN MATCH`` pattern: the escaped namespace, then the user's pattern."""
        return escape_glob(self.key_prefix) + pattern

    def meta_key(self, name: str) -> str:
        """A bookkeeping key of the store's own, never returned as a user key."""
        return f"{self.prefix}:{self.hash_tag}#{name}"
