"""What a per-tenant Redis ACL user needs: tenantkv's commands, and one tenant's keys and channels.

:func:`tenant_acl_rules` gives the rules of an ``ACL SETUSER`` line for a user
that can run every store operation of one tenant and touch nothing else's
keys or channels (``tenantkv acl`` prints the whole line). Two levels:

- ``scan=True``: ``SCAN`` is allowed, so listing without the index works, and
  so do ``reindex``/``verify_index``. ACL key patterns do not filter ``SCAN``:
  such a user can still see the *names* of other tenants' keys (never read,
  write or list them through tenantkv).
- ``scan=False``: no ``SCAN`` (nor ``INFO`` and the cluster walk's
  ``CLUSTER NODES``/``CLUSTER INFO``; without ``INFO`` the key index cannot
  look at the server's eviction policy when it opens, and skips that check).
  Open the store with ``index=True``: listing, counting and clearing then
  read the tenant's own index keys only, so the credentials reach nothing
  of another tenant at all. ``reindex`` and ``verify_index`` need a user
  allowed ``SCAN`` (they raise :class:`~tenantkv.errors.PermissionDeniedError`
  saying so).

Moving keys in from another layout (``migrate_from``) reads keys outside the
tenant's pattern: it needs a user allowed those keys too (and the commands its scripts use:
``UNLINK``, ``HGET``/``HSET``/``HDEL``, ``PERSIST``, see the README).

Commands called inside the index's Lua scripts are checked against the ACL
too, so they are listed here (:data:`SCRIPT_COMMANDS`); ``tests/test_acl.py``
checks on real servers that these lists are exactly what tenantkv sends.
"""

from __future__ import annotations

from ...glob import escape_glob
from ...namespace import DEFAULT_PREFIX, Namespace

__all__ = [
    "CLIENT_COMMANDS",
    "SCAN_COMMANDS",
    "SCRIPT_COMMANDS",
    "STORE_COMMANDS",
    "tenant_acl_rules",
]

#: What redis-py sends on a new connection, and a cluster client to learn the topology:
#: ``HELLO`` (RESP3; also the index's version check), ``SELECT`` (a database other
#: than 0), ``CLUSTER SLOTS`` and ``COMMAND`` (the cluster client's routing). Not
#: ``CLIENT SETINFO`` (the library's name; Redis 7.0 has no such command, so an ACL
#: naming it fails there): redis-py ignores its refusal, which the ACL LOG records.
CLIENT_COMMANDS = ("hello", "select", "cluster|slots", "command")

#: What the store sends itself, on one server or a cluster.
STORE_COMMANDS = (
    "ping",
    "get",
    "mget",
    "set",
    "exists",
    "unlink",
    "pexpire",
    "pttl",
    "rpush",
    "lrange",
    "llen",
    "publish",
    "subscribe",
    "unsubscribe",
    "evalsha",
    "script|load",
    "script|exists",
    # The index's clear: per chunk, MULTI, ZREM (the entries), UNLINK (the keys), EXEC.
    "multi",
    "exec",
    # The index's listing of a prefix: the rank where its entries start.
    "zlexcount",
)

#: What the Lua scripts (``lua/``) call, besides commands already in :data:`STORE_COMMANDS`.
SCRIPT_COMMANDS = (
    "mset",
    "pexpireat",
    "pexpiretime",
    "time",
    "type",
    "zadd",
    "zcard",
    "zcount",
    "zmscore",
    "zrange",
    "zrem",
)

#: Enumeration by SCAN, and on a cluster the node walk's check of the node's own view.
SCAN_COMMANDS = ("scan", "info", "cluster|nodes", "cluster|info")


def tenant_acl_rules(
    tenant: str, *, prefix: str = DEFAULT_PREFIX, shards: int = 1, scan: bool = True
) -> list[str]:
    """The ACL rules of a user restricted to one tenant: key and channel patterns, commands.

    Put them after ``ACL SETUSER <name> reset on <password rule>``. The key
    pattern covers the tenant's keys and bookkeeping keys (``~<prefix>:{<tenant>}*``;
    a sharded tenant's are ``<prefix>:{<tenant>:NN}...``: ``~<prefix>:{<tenant>:[0-9][0-9]}*``),
    the channel pattern its channels (``&`` and the same pattern). ``scan=False``
    leaves out :data:`SCAN_COMMANDS` (see the module's docstring). Raises
    :class:`~tenantkv.errors.InvalidTenantError` or
    :class:`~tenantkv.errors.InvalidValueError` for a tenant, prefix or shard
    count a store would refuse.
    """
    namespace = Namespace(tenant, prefix, shards)
    if namespace.shards == 1:
        pattern = escape_glob(f"{namespace.prefix}:{namespace.hash_tag}") + "*"
    else:
        pattern = escape_glob(f"{namespace.prefix}:{{{namespace.tenant}:") + "[0-9][0-9]}*"
    commands = [*CLIENT_COMMANDS, *STORE_COMMANDS, *SCRIPT_COMMANDS]
    if scan:
        commands += SCAN_COMMANDS
    return [f"~{pattern}", f"&{pattern}", "-@all", *(f"+{command}" for command in commands)]
