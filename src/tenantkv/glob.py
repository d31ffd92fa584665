"""Redis glob patterns: escaping, matching and literal prefixes.

Redis matches ``KEYS``/``SCAN MATCH`` patterns byte by byte with these rules
(``stringmatchlen`` in the server's ``util.c``):

- ``*`` any run of bytes, ``?`` exactly one byte;
- ``[abc]`` one of, ``[^abc]`` none of, ``[a-z]`` a range (ends may be given
  in either order; bytes compare as signed ``char``, as on x86-64 — where
  ``char`` is unsigned, e.g. ARM64, Redis compares them unsigned and ranges
  across 0x80 differ), ``\\`` escapes inside a class, ``]`` first closes it;
- more than 1,000 ``*`` before the last token: no match (Redis's recursion limit);
- ``\\x`` is the literal ``x``; a trailing lone ``\\`` is literal;
- an unterminated ``[`` class ends with the pattern.

The in-memory backend and the index use :func:`compile_glob` so that they
select exactly the keys Redis would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

__all__ = ["PatternShape", "compile_glob", "compile_glob_bytes", "escape_glob", "literal_prefix"]

PatternShape = Literal["exact", "prefix", "glob"]

_SPECIAL = frozenset("*?[]\\")


def escape_glob(text: str) -> str:
    """Return ``text`` with every glob metacharacter backslash-escaped."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def _byte_class(members: list[tuple[int, int]], negate: bool) -> bytes:
    if not members:
        return b"[\\x00-\\xff]" if negate else b"(?!)"
    parts = b"".join(
        b"\\x%02x" % lo if lo == hi else b"\\x%02x-\\x%02x" % (lo, hi) for lo, hi in members
    )
    return b"[" + (b"^" if negate else b"") + parts + b"]"


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 0x80 else byte


def _range(lo: int, hi: int) -> list[tuple[int, int]]:
    """The bytes of class range ``lo-hi`` as Redis matches them, as unsigned intervals.

    Redis compares the range's ends and the key's byte as C ``char``s, signed
    on the platforms it runs on: a range whose ends lie on both sides of 0x80
    (``[0-é]``) covers the bytes *outside* the unsigned interval.
    """
    a, b = sorted((_signed(lo), _signed(hi)))
    if a >= 0 or b < 0:
        return [(a % 256, b % 256)]
    return [(0, b), (a + 256, 0xFF)]


def _assemble(segments: list[list[bytes]]) -> bytes:
    """The regex of ``segments[0] * segments[1] * ... * segments[-1]``, each segment a
    run of one-byte matchers.

    A middle segment takes the first place it fits, in an atomic group, so the
    regex never backtracks into it: that is always right for fixed-length
    segments (a later place leaves the rest less room, never more), and it keeps
    matching linear in the number of stars where a plain ``.*`` per star is
    exponential (``*a*a*a*a*b`` against ``aaaa…``).
    """
    head, *middle = segments
    if not middle:
        return b"".join(head) + b"\\Z"
    *middle, last = middle
    inner = b"".join(b"(?>.*?" + b"".join(segment) + b")" for segment in middle)
    return b"".join(head) + inner + b".*" + b"".join(last) + b"\\Z"


#: Redis gives up (no match) when its matcher recurses deeper than this: once per
#: ``*`` that is not the pattern's last token.
_MAX_NESTED_STARS = 1000


@lru_cache(maxsize=512)
def _translate(pattern: bytes) -> re.Pattern[bytes]:
    segments: list[list[bytes]] = [[]]
    out = segments[0]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == ord("*"):
            while i + 1 < n and pattern[i + 1] == ord("*"):
                i += 1
            out = []
            segments.append(out)
        elif c == ord("?"):
            out.append(b".")
        elif c == ord("["):
            i += 1
            negate = i < n and pattern[i] == ord("^")
            if negate:
                i += 1
            members: list[tuple[int, int]] = []
            while i < n:
                c = pattern[i]
                if c == ord("\\") and i + 1 < n:
                    members.append((pattern[i + 1], pattern[i + 1]))
                    i += 2
                    continue
                if c == ord("]"):
                    break
                if i + 2 < n and pattern[i + 1] == ord("-"):
                    members.extend(_range(c, pattern[i + 2]))
                    i += 3
                    continue
                members.append((c, c))
                i += 1
            out.append(_byte_class(members, negate))
        elif c == ord("\\") and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i : i + 1]))
        else:
            out.append(re.escape(pattern[i : i + 1]))
        i += 1
    nested_stars = len(segments) - 1 - (segments[-1] == [])
    if nested_stars > _MAX_NESTED_STARS:
        return re.compile(b"(?!)")
    return re.compile(_assemble(segments), re.DOTALL)


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """Return a predicate telling whether a key matches ``pattern`` as Redis would.

    Matching is done on the UTF-8 bytes, as the server does, so ``?`` is one
    byte, not one character.
    """
    regex = _translate(pattern.encode("utf-8", "surrogateescape"))

    def matches(key: str) -> bool:
        return regex.match(key.encode("utf-8", "surrogateescape")) is not None

    return matches


def compile_glob_bytes(pattern: str) -> Callable[[bytes], bool]:
    """:func:`compile_glob` for keys given as the bytes the server holds."""
    regex = _translate(pattern.encode("utf-8", "surrogateescape"))

    def matches(key: bytes) -> bool:
        return regex.match(key) is not None

    return matches


def literal_prefix(pattern: str) -> tuple[str, PatternShape]:
    """Split off the literal text a pattern starts with.

    Every key matching ``pattern`` starts with the returned prefix. The shape
    says what else is needed: ``"exact"`` (the pattern is that literal key),
    ``"prefix"`` (literal text then only ``*``: every key with the prefix
    matches) or ``"glob"`` (keys with the prefix must still be matched).
    """
    chars: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            chars.append(pattern[i + 1])
            i += 2
            continue
        if ch in "*?[":
            shape: PatternShape = "prefix" if pattern[i:].strip("*") == "" else "glob"
            return "".join(chars), shape
        chars.append(ch)
        i += 1
    return "".join(chars), "exact"
