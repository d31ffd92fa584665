"""Enumeration strategies: how a store lists, counts and clears a tenant's keys.

:class:`ScanEnumerator` walks the server's keyspace with a cursor;
:class:`IndexEnumerator` reads the tenant's own key index (``index=True``).
A store picks its strategy when it is opened.
"""

from __future__ import annotations

from .base import KeyEnumerator
from .index import IndexEnumerator, IndexReport
from .scan import ScanEnumerator

__all__ = ["IndexEnumerator", "IndexReport", "KeyEnumerator", "ScanEnumerator"]
