"""The Redis family: one server, a cluster, and what they share.

- :mod:`.standalone`: :class:`RedisBackend` (``redis://``, ``rediss://``);
- :mod:`.cluster`: :class:`RedisClusterBackend` (``redis+cluster://``), with
  :mod:`.topology` (slots, ``CLUSTER NODES``, a node's view of itself);
- :mod:`.commands`: the single-key commands both send alike;
- :mod:`.pubsub`: one shared subscriber connection per server;
- :mod:`.options`: which redis-py client options a store accepts;
- :mod:`.errors`: redis-py's exceptions translated into tenantkv's;
- :mod:`.index` and :mod:`.scripts`: the key index kept by the Lua scripts in ``lua/``;
- :mod:`.acl`: the ACL rules of a user restricted to one tenant.
"""

from __future__ import annotations

from .cluster import RedisClusterBackend
from .standalone import RedisBackend

__all__ = ["RedisBackend", "RedisClusterBackend"]
