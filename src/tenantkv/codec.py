"""Keys and values on the wire.

Values are JSON, UTF-8, compact, and strict both ways. Keys (and channels)
are UTF-8, with lone surrogates standing for bytes that are not UTF-8, so
that every key another program wrote has a str that names it again.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import DecodeError, InvalidValueError

__all__ = ["KEY_ENCODING", "decode", "decode_key", "decode_keys", "encode", "encode_key"]

#: How a key (a str) becomes the bytes Redis stores, and back.
KEY_ENCODING = ("utf-8", "surrogateescape")

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


def encode_key(key: str) -> bytes:
    """The bytes Redis stores for ``key``."""
    return key.encode(*KEY_ENCODING)


def decode_key(raw: bytes | str) -> str:
    """The str of a key (or channel) as Redis returned it."""
    return raw if isinstance(raw, str) else raw.decode(*KEY_ENCODING)


def decode_keys(raw: list[bytes], cut: int = 0) -> list[str]:
    """The str of each key of a page as the server returned it, without its first ``cut`` bytes.

    Without a cut (index chunks, migration pages), the page is joined on NUL,
    decoded once and split again: about half the cost of a decode per key.
    The split gives one str per key unless a key holds a NUL; such a page,
    or one with a cut, is decoded key by key. Strict UTF-8 first (the common
    case); only a page holding bytes that are not UTF-8 is decoded (again)
    with :data:`KEY_ENCODING`'s surrogate escapes, which give the same str
    for UTF-8. ``cut`` must fall on a character boundary (tenantkv's
    namespace prefixes are ASCII).
    """
    try:
        if not cut and raw:
            keys = b"\x00".join(raw).decode().split("\x00")
            if len(keys) == len(raw):
                return keys
        return [key[cut:].decode() for key in raw]
    except UnicodeDecodeError:
        return [key[cut:].decode(*KEY_ENCODING) for key in raw]
