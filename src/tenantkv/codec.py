"""Values on the wire: JSON, UTF-8, compact, and strict both ways."""

from __future__ import annotations

import json
from typing import Any

from .errors import DecodeError, InvalidValueError

__all__ = ["decode", "encode"]

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode(value: Any) -> bytes:
    """Encode ``value`` as compact JSON, raising :class:`InvalidValueError` if JSON cannot hold it.

    NaN and infinities are refused (they are not JSON); tuples become lists
    and non-str dict keys become strings, as with :func:`json.dumps`.
    """
    try:
        return _encoder.encode(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValueError(f"value cannot be encoded as JSON: {exc}") from exc


def decode(raw: bytes, *, key: str) -> Any:
    """Decode bytes read from ``key``; bytes that are not JSON raise :class:`DecodeError`."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(
            f"key {key!r} holds {len(raw)} bytes that are not valid JSON"
            " (written by something other than tenantkv?)",
            key=key,
        ) from exc
