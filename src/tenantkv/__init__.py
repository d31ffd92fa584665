"""tenantkv: a tenant-scoped async key-value store on Redis whose key enumeration never blocks.

Open a store with :func:`open_store`; everything a user (and tenantkv's own
command line) needs is re-exported here. See README.md for the key layout
and the options.
"""

from __future__ import annotations

from .backends.redis.acl import tenant_acl_rules
from .batch import Batch, BatchResult
from .client import TenantClient
from .codec import KEY_ENCODING
from .errors import (
    BackendError,
    BackendUnavailableError,
    DecodeError,
    EvictionPolicyError,
    IndexEvictionWarning,
    IndexNotEnabledError,
    InvalidArgumentTypeError,
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
from .migration import MigrationReport
from .namespace import Namespace
from .opening import open_client, open_store, parse_url
from .progress import Progress
from .store import KeyInfo, StoreStats, TenantStore, TenantSubscription
from .urls import DEFAULT_COUNT, SCHEMES, Scheme, StoreOptions, StoreURL, redact_url, split_url
from .validation import TENANT_ALPHABET

__all__ = [
    "DEFAULT_COUNT",
    "KEY_ENCODING",
    "SCHEMES",
    "TENANT_ALPHABET",
    "BackendError",
    "BackendUnavailableError",
    "Batch",
    "BatchResult",
    "DecodeError",
    "EvictionPolicyError",
    "IndexEvictionWarning",
    "IndexNotEnabledError",
    "IndexReport",
    "InvalidArgumentTypeError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidKeyTypeError",
    "InvalidTenantError",
    "InvalidURLError",
    "InvalidValueError",
    "KeyInfo",
    "MigrationReport",
    "Namespace",
    "PermissionDeniedError",
    "Progress",
    "Scheme",
    "StoreClosedError",
    "StoreOptions",
    "StoreStats",
    "StoreURL",
    "TenantClient",
    "TenantKVError",
    "TenantStore",
    "TenantSubscription",
    "TopologyChangedError",
    "WrongTypeError",
    "escape_glob",
    "open_client",
    "open_store",
    "parse_url",
    "redact_url",
    "split_url",
    "tenant_acl_rules",
]
