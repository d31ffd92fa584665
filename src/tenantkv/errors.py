"""The exceptions tenantkv raises.

Every error derives from :class:`TenantKVError`, so ``except TenantKVError``
catches all of them. Input errors also derive from the built-in exception a
Python user would expect, so ``except ValueError`` keeps working::

    TenantKVError
    ├── InvalidInputError
    │   ├── InvalidValueError (ValueError)     value JSON cannot encode, bad TTL, bad count
    │   ├── InvalidKeyError (ValueError)       empty key or pattern
    │   ├── InvalidKeyTypeError (TypeError)    key, pattern or channel that is not a str
    │   ├── InvalidArgumentTypeError (TypeError)  e.g. a list where a mapping of items is due
    │   ├── InvalidTenantError (ValueError)    tenant ID outside the documented alphabet
    │   └── InvalidURLError (ValueError)       unparsable URL, unknown scheme, bad option
    ├── BackendError                           the server said no, or could not be reached
    │   ├── BackendUnavailableError            connection refused, timed out, DNS failure
    │   ├── PermissionDeniedError              the server's ACL refused the command or key
    │   ├── WrongTypeError                     e.g. ``get`` on a key that holds a list
    │   ├── TopologyChangedError               the cluster changed under an enumeration
    │   └── EvictionPolicyError                ``index=True`` on a server that may evict the index
    ├── DecodeError (ValueError)               stored bytes are not JSON this library wrote
    ├── IndexNotEnabledError                   index maintenance on a store without the index
    └── StoreClosedError                       the store was used after ``aclose()``

Errors raised at the backend edge carry the store's URL with its password
removed, never the password itself.

:class:`IndexEvictionWarning` (a ``UserWarning``, not an error) is issued when
an indexed store opens on a server that may evict data keys with a TTL before
they expire (a ``volatile-*`` policy with ``maxmemory`` set).
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "DecodeError",
    "EvictionPolicyError",
    "IndexEvictionWarning",
    "IndexNotEnabledError",
    "InvalidArgumentTypeError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidKeyTypeError",
    "InvalidTenantError",
    "InvalidURLError",
    "InvalidValueError",
    "PermissionDeniedError",
    "StoreClosedError",
    "TenantKVError",
    "TopologyChangedError",
    "WrongTypeError",
]


class TenantKVError(Exception):
    """Root of every error raised by tenantkv."""


class InvalidInputError(TenantKVError):
    """An argument was rejected before anything was sent to the backend."""


class InvalidValueError(InvalidInputError, ValueError):
    """A value, TTL or count that the store cannot accept."""


class InvalidKeyError(InvalidInputError, ValueError):
    """A key or pattern that is empty or otherwise unusable."""


class InvalidKeyTypeError(InvalidInputError, TypeError):
    """A key, pattern or channel name that is not a ``str``."""


class InvalidArgumentTypeError(InvalidInputError, TypeError):
    """An argument of the wrong kind: ``set_many`` without a mapping, ``get_many`` without
    an iterable of keys (a lone ``str`` is refused: it would be read letter by letter)."""


class InvalidTenantError(InvalidInputError, ValueError):
    """A tenant ID (or app prefix) outside the allowed alphabet."""


class InvalidURLError(InvalidInputError, ValueError):
    """A store URL that cannot be parsed, has an unknown scheme or a bad option."""


class BackendError(TenantKVError):
    """The backend failed to carry out a command.

    ``url`` is the store URL without its password; ``command`` names the
    failing operation where it is known.
    """

    def __init__(self, message: str, *, url: str = "", command: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.command = command


class BackendUnavailableError(BackendError):
    """The server could not be reached (refused, timed out, unknown host), or every
    connection of the pool was in use (redis-py fails past ``max_connections``)."""


class PermissionDeniedError(BackendError):
    """The server refused a command, key or channel to these credentials (its ACL).

    ``command`` names what was refused; the message carries the server's reason
    (which names the user, never the password). A user restricted to one
    tenant's keys gets it for anything outside them, and ``reindex`` and
    ``verify_index`` raise it for a user that may not run ``SCAN``.
    """


class WrongTypeError(BackendError):
    """The key holds a different kind of value (a list read as a value, or the reverse)."""


class TopologyChangedError(BackendError):
    """The cluster changed in a way that made a running enumeration unreliable.

    Raised instead of returning a partial result; a new enumeration after the
    change completes normally.
    """


class EvictionPolicyError(BackendError):
    """The server may evict any key (``maxmemory`` with an ``allkeys-*`` policy), the
    tenant's key index included: an indexed store would then list, count and clear
    nothing while the data is still there. Use ``noeviction`` (or a ``volatile-*``
    policy), or a store without the index."""


class IndexEvictionWarning(UserWarning):
    """The server may evict data keys that have a TTL before they expire (``maxmemory``
    with a ``volatile-*`` policy): until they are pruned or reindexed, the key index
    lists and counts such keys, and ``verify_index`` reports them as stale."""


class DecodeError(TenantKVError, ValueError):
    """Bytes stored under a key are not valid JSON (written by someone else)."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class IndexNotEnabledError(TenantKVError):
    """``reindex``/``verify_index``/``prune_index`` on a store opened without ``index=True``."""


class StoreClosedError(TenantKVError):
    """The store was used after ``aclose()``."""
