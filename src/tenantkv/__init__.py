"""tenantkv: a tenant-scoped async key-value store on Redis whose key enumeration never blocks.

Open a store with :func:`open_store`; everything a user (and tenantkv's own
command line) needs is re-exported here. See README.md for the key layout
and the options.
"""

from __future__ import annotations

from .backends.redis.acl import tenant_acl_rules
from .codec import KEY_ENCODING
from .errors import (
    BackendError,
    BackendUnavailableError,
    DecodeError,
    IndexNotEnabledError,
    InvalidInputError,
    InvalidKeyError,
    InvalidKeyTypeError,
    InvalidTenantError,
    InvalidURLError,
    InvalidValueError,
    PermissionDeniedError,
    StoreClosedError,
    TenantKVError,
    TopologyChangedError,
    WrongTypeError,
)
from .glob import escape_glob
from .index import IndexReport
from .namespace import Namespace
from .opening import open_store, parse_url
from .store import StoreStats, TenantStore, TenantSubscription
from .urls import DEFAULT_COUNT, SCHEMES, Scheme, StoreOptions, StoreURL, redact_url, split_url
from .validation import TENANT_ALPHABET

__all__ = [
    "DEFAULT_COUNT",
    "KEY_ENCODING",
    "SCHEMES",
    "TENANT_ALPHABET",
    "BackendError",
    "BackendUnavailableError",
    "DecodeError",
    "IndexNotEnabledError",
    "IndexReport",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidKeyTypeError",
    "InvalidTenantError",
    "InvalidURLError",
    "InvalidValueError",
    "Namespace",
    "PermissionDeniedError",
    "Scheme",
    "StoreClosedError",
    "StoreOptions",
    "StoreStats",
    "StoreURL",
    "TenantKVError",
    "TenantStore",
    "TenantSubscription",
    "TopologyChangedError",
    "WrongTypeError",
    "escape_glob",
    "open_store",
    "parse_url",
    "redact_url",
    "split_url",
    "tenant_acl_rules",
]
