"""Every input check of tenantkv, with one error policy.

The store's front methods and :func:`tenantkv.open_store` check their
arguments here before anything is sent to a backend, so a rejected call
writes nothing. Two kinds of input, two kinds of error:

- **Arguments of a call** (a key, a TTL, a ``count``, a list index) raise the
  input error that names what is wrong with them: :class:`InvalidKeyError`,
  :class:`InvalidKeyTypeError`, :class:`InvalidValueError`.
- **Options of a store** (``count``, ``budget_ms``, ``index``, ``shards`` and the backend's
  options, whether given as a URL query parameter or as a keyword of
  ``open_store``) raise :class:`InvalidURLError` naming the option, when the
  store opens (:func:`store_option`).

The tenant ID and the app prefix are the namespace itself: a bad one raises
:class:`InvalidTenantError` however it was given.

Every function returns the value it accepted, so a caller writes
``ttl = check_ttl(ttl_ms)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .codec import KEY_ENCODING
from .errors import (
    InvalidArgumentTypeError,
    InvalidKeyError,
    InvalidKeyTypeError,
    InvalidTenantError,
    InvalidURLError,
    InvalidValueError,
)

__all__ = [
    "MAX_BUDGET_MS",
    "MAX_COUNT",
    "MAX_SHARDS",
    "MAX_TTL_MS",
    "PREFIX_ALPHABET",
    "TENANT_ALPHABET",
    "check_bool_option",
    "check_budget_ms",
    "check_callback",
    "check_count",
    "check_key",
    "check_key_list",
    "check_list_index",
    "check_mapping",
    "check_prefix",
    "check_shards",
    "check_tenant",
    "check_ttl",
    "check_wait_ms",
    "store_option",
]

T = TypeVar("T")

TENANT_ALPHABET = "ASCII letters, digits, '.', '-' and '_' (1 to 128 characters)"
PREFIX_ALPHABET = "ASCII letters, digits, '.', '-', '_' and ':' (1 to 64 characters)"
_TENANT_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_PREFIX_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

#: Largest accepted TTL (about 8,900 years), far below what overflows Redis.
MAX_TTL_MS = 2**48
#: Largest ``count`` (keys per server command, or items per slice). Redis and
#: the index scripts take far more, but a command that visits a million keys
#: already blocks the server for hundreds of milliseconds.
MAX_COUNT = 1_000_000
#: Most shards one tenant can have (shard numbers are two digits).
MAX_SHARDS = 100
#: Largest time budget per enumeration command, in ms (a minute: a budget is meant to be small).
MAX_BUDGET_MS = 60_000


# -- the namespace ----------------------------------------------------------------


def check_tenant(tenant: object) -> str:
    """``tenant`` if it is a valid tenant ID, else :class:`InvalidTenantError`."""
    if not isinstance(tenant, str) or _TENANT_RE.fullmatch(tenant) is None:
        raise InvalidTenantError(f"invalid tenant ID {tenant!r}: allowed are {TENANT_ALPHABET}")
    return tenant


def check_prefix(prefix: object) -> str:
    """``prefix`` if it is a valid app prefix, else :class:`InvalidTenantError`."""
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
        raise InvalidTenantError(f"invalid app prefix {prefix!r}: allowed are {PREFIX_ALPHABET}")
    return prefix


# -- arguments of a call ------------------------------------------------------------


def check_key(key: object, what: str = "key") -> str:
    """``key`` if it is a non-empty str that names exactly one Redis key.

    Keys are stored as UTF-8. Bytes that are not UTF-8 (keys written by
    other programs) come back as lone surrogates (``surrogateescape``) and
    may be passed back; any other lone surrogate is refused: it cannot be
    encoded, or it would name the same bytes as another str ("\\udcc3\\udca9"
    is the key "é").
    """
    if not isinstance(key, str):
        raise InvalidKeyTypeError(f"{what} must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError(f"{what} must not be empty")
    if not key.isascii():
        try:
            canonical = key.encode(*KEY_ENCODING).decode(*KEY_ENCODING) == key
        except UnicodeEncodeError:
            canonical = False
        if not canonical:
            raise InvalidKeyError(f"{what} {key!r} holds a surrogate that is not a UTF-8 byte")
    return key


def check_mapping(items: object, what: str) -> Mapping[Any, Any]:
    """``items`` if it is a mapping (of key -> value)."""
    if not isinstance(items, Mapping):
        raise InvalidArgumentTypeError(
            f"{what} takes a mapping of key -> value (e.g. a dict), not {type(items).__name__}"
        )
    return items


def check_callback(callback: object, what: str) -> Callable[..., Any] | None:
    """``callback`` if it is ``None`` or callable."""
    if callback is None or callable(callback):
        return callback
    kind = type(callback).__name__
    raise InvalidArgumentTypeError(f"{what} takes a callable or None, not {kind}")


def check_key_list(keys: object, what: str) -> list[str]:
    """``keys`` (an iterable of keys, not a lone str or bytes) as a list of checked keys."""
    if isinstance(keys, str | bytes | bytearray) or not isinstance(keys, Iterable):
        raise InvalidArgumentTypeError(
            f"{what} takes an iterable of keys (e.g. a list of str), not {type(keys).__name__}"
        )
    return [check_key(key) for key in keys]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_ttl(ttl_ms: object) -> int:
    """A TTL in ms: an int from 1 to :data:`MAX_TTL_MS`."""
    if not _is_int(ttl_ms):
        raise InvalidValueError(f"ttl_ms must be a positive int (milliseconds), not {ttl_ms!r}")
    assert isinstance(ttl_ms, int)
    if not 0 < ttl_ms <= MAX_TTL_MS:
        raise InvalidValueError(f"ttl_ms must be between 1 and {MAX_TTL_MS}, not {ttl_ms}")
    return ttl_ms


def check_count(count: object, what: str = "count") -> int:
    """Keys (or items) per server command: an int from 1 to :data:`MAX_COUNT`."""
    if not _is_int(count) or count <= 0:  # type: ignore[operator]
        raise InvalidValueError(f"{what} must be a positive int, not {count!r}")
    assert isinstance(count, int)
    if count > MAX_COUNT:
        raise InvalidValueError(f"{what} must be at most {MAX_COUNT:,}, not {count:,}")
    return count


def check_budget_ms(budget_ms: object) -> float:
    """A time budget per server command in ms: a finite number > 0 and at most
    :data:`MAX_BUDGET_MS` (a URL's query may give it as text, ``0.5``)."""
    value = budget_ms
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            value = budget_ms
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 < value <= MAX_BUDGET_MS
    ):
        raise InvalidValueError(
            f"budget_ms must be a number of ms > 0 and at most {MAX_BUDGET_MS:,}, not {budget_ms!r}"
        )
    return float(value)


def check_list_index(index: object, what: str) -> int:
    """A list index as ``LRANGE`` takes it: an int that fits in a C ``long long``."""
    if not _is_int(index):
        raise InvalidKeyTypeError(f"{what} must be an int, not {type(index).__name__}")
    assert isinstance(index, int)
    if not -(2**63) <= index < 2**63:
        raise InvalidValueError(f"{what} must fit in 64 bits, not {index}")
    return index


def check_shards(shards: object) -> int:
    """A shard count: an int from 1 to :data:`MAX_SHARDS`."""
    if not _is_int(shards) or not 1 <= shards <= MAX_SHARDS:  # type: ignore[operator]
        raise InvalidValueError(f"shards must be an int from 1 to {MAX_SHARDS}, not {shards!r}")
    assert isinstance(shards, int)
    return shards


def check_wait_ms(wait_ms: object, what: str) -> int:
    """A wait in ms: an int >= 0."""
    if not _is_int(wait_ms) or wait_ms < 0:  # type: ignore[operator]
        raise InvalidValueError(f"{what} must be an int >= 0 (milliseconds), not {wait_ms!r}")
    assert isinstance(wait_ms, int)
    return wait_ms


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def check_bool_option(value: object, what: str) -> bool:
    """A boolean, or its spelling in a URL (``1/true/yes/on``, ``0/false/no/off``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise InvalidValueError(f"{what} must be a boolean (true/false, 1/0), not {value!r}")


# -- options of a store -------------------------------------------------------------


def store_option(
    name: str, value: object, check: Callable[[object], T], *, integer: bool = True
) -> T:
    """``value`` of option ``name`` (a keyword, or a URL query string) as ``check`` accepts it.

    With ``integer``, a string that holds an integer (as a URL's query gives
    it) is read as one first. Whatever ``check`` refuses becomes an
    :class:`InvalidURLError` naming the option: an option is part of how a
    store is opened, however it was given.
    """
    if integer and isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        value = int(value)
    try:
        return check(value)
    except InvalidValueError as exc:
        raise InvalidURLError(f"option {name!r}: {exc}") from None
