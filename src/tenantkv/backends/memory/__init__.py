"""The in-process backend (``memory://``): its keyspace, the backend, and its key index."""

from __future__ import annotations

from .backend import MemoryBackend
from .index import MemoryKeyIndex
from .keyspace import MemoryKeyspace

__all__ = ["MemoryBackend", "MemoryKeyIndex", "MemoryKeyspace"]
