"""tenantkv: a tenant-scoped async key-value store on Redis whose key enumeration never blocks.

Open a store with :func:`open_store`; everything a user needs is re-exported
here. See README.md for the key layout and the options.
"""

from __future__ import annotations

from .enumeration import IndexReport
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
    StoreClosedError,
    TenantKVError,
    TopologyChangedError,
    WrongTypeError,
)
from .glob import escape_glob
from .namespace import TENANT_ALPHABET, Namespace
from .opening import SCHEMES, open_store, redact_url
from .store import DEFAULT_COUNT, StoreStats, TenantStore, TenantSubscription

__all__ = [
    "DEFAULT_COUNT",
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
    "StoreClosedError",
    "StoreStats",
    "TenantKVError",
    "TenantStore",
    "TenantSubscription",
    "TopologyChangedError",
    "WrongTypeError",
    "escape_glob",
    "open_store",
    "redact_url",
]
