"""Enumeration strategies: how a store lists, counts and clears a tenant's keys.

:class:`ScanEnumerator` walks the server's keyspace with a cursor; the
index strategy, :class:`tenantkv.index.IndexEnumerator`, reads the tenant's
own key index (``index=True``) and lives with the rest of the index family
in :mod:`tenantkv.index`. A store picks its strategy when it is opened.
"""

from __future__ import annotations

from .base import KeyEnumerator
from .scan import ScanEnumerator

__all__ = ["KeyEnumerator", "ScanEnumerator"]
