"""What a Redis Cluster looks like: hash slots, ``CLUSTER NODES``, and a node's view of itself.

The cluster backend (:mod:`.cluster`) trusts a node's SCAN only because of
what that node says about itself before and after the walk
(:class:`SelfView`); this module reads those answers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from redis.crc import key_slot

from ...codec import encode_key
from ...urls import Address

__all__ = [
    "CLUSTER_SLOTS",
    "NodeEntry",
    "SelfView",
    "group_by_slot",
    "parse_cluster_nodes",
    "pinned_slot",
    "slot_of",
]

#: Hash slots of a Redis Cluster.
CLUSTER_SLOTS = 16384


def pinned_slot(match: str) -> int | None:
    """The one hash slot every key matching the SCAN pattern ``match`` lives in, if any.

    True when the pattern starts with literal text (no ``* ? [ \\``) up to
    and including a non-empty ``{tag}``: every matching key then starts with
    that text, so its hash tag, and slot, is the pattern's.
    """
    start = match.find("{")
    if start < 0:
        return None
    end = match.find("}", start + 1)
    if end <= start + 1:
        return None
    if any(ch in "*?[\\" for ch in match[: end + 1]):
        return None
    return key_slot(encode_key(match[start + 1 : end]))


def slot_of(key: str) -> int:
    """The hash slot of ``key`` (hash tags included)."""
    return key_slot(encode_key(key))


def group_by_slot(keys: Iterable[str]) -> dict[int, list[int]]:
    """Positions of ``keys`` grouped by hash slot."""
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(slot_of(key), []).append(position)
    return groups


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    address: Address | None
    flags: frozenset[str]
    config_epoch: int
    #: Slot ranges the node serves, inclusive.
    ranges: tuple[tuple[int, int], ...]
    #: Slots being migrated to or imported from another node (shown for ``myself`` only).
    moving: frozenset[int]

    @property
    def primary(self) -> bool:
        return "master" in self.flags

    @property
    def healthy(self) -> bool:
        return not self.flags & {"fail", "fail?", "handshake", "noaddr"}

    def owns_all(self, slots: Iterable[int]) -> bool:
        starts = [lo for lo, _ in self.ranges]
        for slot in slots:
            i = bisect.bisect_right(starts, slot) - 1
            if i < 0 or slot > self.ranges[i][1]:
                return False
        return True


def parse_cluster_nodes(text: str) -> list[NodeEntry]:
    """Parse the reply of ``CLUSTER NODES``."""
    entries: list[NodeEntry] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        hostport = fields[1].split("@", 1)[0]
        host, _, port = hostport.rpartition(":")
        address = (host, int(port)) if host and port.isdigit() and int(port) > 0 else None
        ranges: list[tuple[int, int]] = []
        moving: set[int] = set()
        for token in fields[8:]:
            if token.startswith("["):
                moving.add(int(token[1:].split("-", 1)[0]))
            elif "-" in token:
                lo, hi = token.split("-", 1)
                ranges.append((int(lo), int(hi)))
            else:
                ranges.append((int(token), int(token)))
        entries.append(
            NodeEntry(
                node_id=fields[0],
                address=address,
                flags=frozenset(fields[2].split(",")),
                config_epoch=int(fields[6]),
                ranges=tuple(sorted(ranges)),
                moving=frozenset(moving),
            )
        )
    return entries


@dataclass(frozen=True, slots=True)
class SelfView:
    """What one node says about itself: enough to tell whether its SCAN can be trusted."""

    run_id: str
    me: NodeEntry
    cluster_ok: bool

    def serves(self, slots: frozenset[int]) -> bool:
        """Whether a walk of this node may start: it is the stable primary of ``slots``."""
        return self.cluster_ok and self.still_serves(slots)

    def still_serves(self, slots: frozenset[int]) -> bool:
        me = self.me
        return me.primary and not (me.moving & slots) and me.owns_all(slots)

    def same_node(self, other: SelfView) -> bool:
        """Same process, same identity, no failover or slot import in between."""
        return (self.run_id, self.me.node_id, self.me.primary, self.me.config_epoch) == (
            other.run_id,
            other.me.node_id,
            other.me.primary,
            other.me.config_epoch,
        )
