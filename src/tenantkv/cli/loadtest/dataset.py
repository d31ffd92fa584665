"""Transaction-shaped keys, generated from an index and recognised from their name.

Key ``i`` of a tenant belongs to transaction ``i // 4`` and is one of::

    search:<txn>                a JSON search entry with a TTL
    search:<txn>:responses      a list of JSON responses with a TTL
    select:<txn>:0              a JSON selection with a TTL
    select:<txn>:1              another one

``<txn>`` looks like a UUID whose last 12 hex digits are the transaction
number, so a key found by a listing maps back to its index without keeping a
list of every key: :class:`DistinctCounter` marks found keys in a bitmap of
one byte per key, which is what lets a 1,000,000-key listing be checked in a
few MB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["KEYS_PER_TXN", "NOISE_TXN_OFFSET", "DistinctCounter", "index_of", "key_of", "value_of"]

KEYS_PER_TXN = 4
#: Transaction numbers of noise tenants start here (far beyond any measured size).
NOISE_TXN_OFFSET = 1 << 44
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TXN_HEX = 12
_KIND_END = len("search")  # both kinds, "search" and "select", have 6 letters
_TXN_END = _KIND_END + 1 + 36  # where the transaction ID (a UUID) ends


def txn_id(txn: int) -> str:
    """A UUID-looking ID for transaction ``txn`` (deterministic, spread like random IDs)."""
    h = (txn * _GOLDEN) & _MASK64
    return (
        f"{h >> 32:08x}-{(h >> 16) & 0xFFFF:04x}-4{(h >> 4) & 0xFFF:03x}-"
        f"{8 + (h & 3):x}{(h >> 40) & 0xFFF:03x}-{txn:0{_TXN_HEX}x}"
    )


def key_of(index: int, *, txn_offset: int = 0) -> str:
    """The tenant-relative key number ``index``.

    ``txn_offset`` shifts the transaction numbers: noise tenants use a large
    one, so that one of their keys leaking into the measured tenant's listing
    is counted as foreign, not as a duplicate.
    """
    txn, part = divmod(index, KEYS_PER_TXN)
    txn += txn_offset
    tid = txn_id(txn)
    if part == 0:
        return f"search:{tid}"
    if part == 1:
        return f"search:{tid}:responses"
    return f"select:{tid}:{part - 2}"


def is_list(index: int) -> bool:
    """Whether key ``index`` holds a list (the ``:responses`` keys)."""
    return index % KEYS_PER_TXN == 1


def value_of(index: int) -> bytes:
    """The JSON value of key ``index`` (for a list key: one list item)."""
    txn, part = divmod(index, KEYS_PER_TXN)
    if part == 0:
        value: object = {
            "txn": txn_id(txn),
            "status": "searching",
            "created_ms": 1_764_000_000_000 + txn,
            "query": {"from": "BER", "to": "LIS", "date": "2026-12-01", "pax": 1 + txn % 4},
        }
    elif part == 1:
        value = {"provider": f"p{txn % 17}", "offers": 3 + txn % 5, "ms": 120 + txn % 300}
    else:
        value = {"msg": part - 2, "offer": f"o-{txn % 9973}", "price_cents": 10_000 + txn % 90_000}
    return json.dumps(value, separators=(",", ":")).encode()


def index_of(key: str) -> int | None:
    """The index of a tenant-relative key, or ``None`` if it is not a key this module makes.

    Cheap on purpose (a few slices, no formatting): it runs once per key
    listed, after the clock of a listing has stopped (see
    :class:`~.strategies.ListingStrategy`), and a million keys must not
    take long to check.
    """
    if len(key) < _TXN_END or key[_KIND_END] != ":" or key[_TXN_END - _TXN_HEX - 1] != "-":
        return None
    kind, tail = key[:_KIND_END], key[_TXN_END:]
    if kind == "search":
        part = 0 if not tail else 1 if tail == ":responses" else -1
    elif kind == "select":
        part = 2 if tail == ":0" else 3 if tail == ":1" else -1
    else:
        return None
    try:
        txn = int(key[_TXN_END - _TXN_HEX : _TXN_END], 16)
    except ValueError:
        return None
    return None if part < 0 else txn * KEYS_PER_TXN + part


@dataclass
class DistinctCounter:
    """Counts the distinct keys a listing found, against the ``expected`` keys ``0..n-1``.

    ``duplicates`` counts keys found more than once (a library enumeration
    must return each key once; raw SCAN may repeat), ``foreign`` counts keys
    that are not the tenant's (another tenant's, or garbage).
    """

    expected: int
    distinct: int = 0
    duplicates: int = 0
    foreign: int = 0

    def __post_init__(self) -> None:
        self._seen = bytearray(self.expected)

    def add(self, key: str) -> None:
        index = index_of(key)
        if index is None or index >= self.expected:
            self.foreign += 1
        elif self._seen[index]:
            self.duplicates += 1
        else:
            self._seen[index] = 1
            self.distinct += 1

    @property
    def complete(self) -> bool:
        """Every expected key found, and nothing else."""
        return self.distinct == self.expected and self.foreign == 0
