"""Servers that refuse things: per-tenant ACL users, renamed admin commands, declared script keys.

On every server kind (``matrix``), standalone and cluster:

- a user made from ``tenantkv acl``'s printed line runs every store operation
  of its tenant, and is refused (:class:`tenantkv.PermissionDeniedError`) for
  another tenant's keys and channels; with SCAN it still sees other key names,
  without SCAN (``--no-scan``, ``index=True``) it sees nothing of them;
- the ACL's command list is exactly what tenantkv sends (``INFO commandstats``);
- every product path works with CONFIG, DEBUG, KEYS, FLUSHDB and FLUSHALL
  renamed away and the @admin commands and SCRIPT FLUSH refused;
- every Lua script touches only the keys it declares: each EVALSHA runs as a
  user allowed exactly those keys.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

import tenantkv
from tenantkv import TenantStore, escape_glob
from tenantkv.backends.redis import RedisBackend
from tenantkv.backends.redis.acl import SCAN_COMMANDS
from tenantkv.cli.app import app

from .cli_checks import assert_one_line_error
from .conftest import new_tenant
from .servers import FixtureCluster, FixtureServer, ServerKind

pytestmark = [pytest.mark.redis, pytest.mark.matrix]

PASSWORD = "acl-hunter2-password"
#: Admin commands a managed service renames away (rename-command) ...
RENAMED = ("CONFIG", "DEBUG", "KEYS", "FLUSHDB", "FLUSHALL")
RENAME_ARGS = tuple(arg for command in RENAMED for arg in ("--rename-command", command, ""))
#: ... and what its application user may not run (the cluster's admin subcommands among them).
APP_USER_RULES = ("on", f">{PASSWORD}", "~*", "&*", "+@all", "-@admin", "-script|flush")

Nodes = list[FixtureServer]


def acl_line(tenant: str, *options: str) -> list[str]:
    """The words of the ``ACL SETUSER`` line ``tenantkv acl`` prints."""
    result = CliRunner().invoke(
        app, ["acl", "--tenant", tenant, *options], env={"TENANTKV_ACL_PASSWORD": PASSWORD}
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    words = shlex.split(result.stdout)
    assert words[:2] == ["ACL", "SETUSER"]
    return words


def apply(nodes: Nodes, *command: str) -> None:
    """Run an ACL command on every node (a cluster does not share ACL users)."""
    for node in nodes:
        with node.client() as client:
            assert client.execute_command(*command) in ("OK", b"OK", True)


def with_user(url: str, user: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{PASSWORD}@{rest}"


def command_stats(nodes: Nodes) -> set[str]:
    """Commands (``script|load``) the nodes executed since their last CONFIG RESETSTAT."""
    names: set[str] = set()
    for node in nodes:
        with node.client() as client:
            stats: dict[str, Any] = client.info("commandstats")
        # Refused calls are counted too (rejected_calls), but not as calls.
        names.update(key.removeprefix("cmdstat_") for key, v in stats.items() if v["calls"])
    return names


def acl_log(nodes: Nodes) -> list[Any]:
    """The ACL LOG entries of every node, less what is refused by design: redis-py's
    harmless CLIENT SETINFO (tenantkv's ACL cannot name it: Redis 7.0 has no such
    command), and, for a user without INFO, the key index's look at the eviction
    policy, which it then skips (``IndexServer._check_eviction``)."""
    harmless = {"client|setinfo", "info"}
    entries: list[Any] = []
    for node in nodes:
        with node.client() as client:
            entries += [e for e in client.acl_log() if e.get("object") not in harmless]
    return entries


async def exercise(store: TenantStore) -> None:
    """Every store operation on the store's own tenant, with its results checked."""
    indexed = "IndexEnumerator" in repr(store)
    await store.set("a", {"v": 1}, ttl_ms=60_000)
    assert await store.get("a") == {"v": 1}
    await store.set_many({"b": 2, "c": 3})
    await store.set_many({"t1": 1}, ttl_ms=60_000)
    assert await store.get_many(["a", "b", "zz"]) == [{"v": 1}, 2, None]
    assert await store.exists("b")
    assert await store.set_ttl("b", 60_000)
    ttl = await store.get_ttl("b")
    assert ttl is not None
    assert ttl > 0
    assert await store.list_push("l", 1) == 1
    assert await store.list_push("l", 2, ttl_ms=60_000) == 2
    async with store.batch() as b:
        before = b.get("a")
        b.set("a", {"v": 1}, ttl_ms=60_000)
        b.list_push("l2", 1, ttl_ms=60_000)
        b.exists("a")
        b.set_ttl("a", 60_000)
        b.publish("ch", "batch")
        b.delete("l2")
    assert before.value == {"v": 1}
    assert await store.list_range("l", 0, -1) == [1, 2]
    assert await store.list_get_all("l") == [1, 2]
    assert await store.list_length("l") == 2
    async with store.subscribe("ch") as sub:
        assert await store.publish("ch", "hi") >= 1
        assert await asyncio.wait_for(sub.__anext__(), 5) == "hi"
        assert await sub.get(timeout=0.01) is None
    assert sorted(await store.keys()) == ["a", "b", "c", "l", "t1"]
    assert await store.count_keys("t*") == 1
    assert (await store.stats()).keys == 5
    assert await store.delete("c")
    if indexed:
        assert await store.prune_index() == 0
    assert await store.clear() == 4
    assert await store.keys() == []


async def exercise_repair(store: TenantStore) -> None:
    await store.set_many({"x": 1, "y": 2})
    assert (await store.reindex()).clean
    assert (await store.verify_index()).clean
    assert await store.clear() == 2


# --------------------------------------------------------------------------- topologies


class Topology:
    """The session's standalone server or cluster of this test's kind, as ACL tests need it."""

    def __init__(self, url: str, nodes: Nodes) -> None:
        self.url = url
        self.nodes = nodes


@pytest.fixture(params=["server", "cluster"])
def topology(
    request: pytest.FixtureRequest, redis_server: FixtureServer, server_kind: ServerKind
) -> Topology:
    if request.param == "server":
        return Topology(redis_server.url, [redis_server])
    cluster: FixtureCluster = request.getfixturevalue("redis_cluster")
    return Topology(cluster.url, cluster.nodes)


# --------------------------------------------------------------------------- the recipe


def test_acl_command_prints_the_recipe_without_the_password() -> None:
    words = acl_line("shop-1", "--user", "app-shop-1")
    assert words[2:5] == ["app-shop-1", "reset", "on"]
    assert words[5].startswith("#")
    assert len(words[5]) == 65  # the SHA-256 of the password, never the password
    assert "~tkv:{shop-1}*" in words
    assert "&tkv:{shop-1}*" in words
    assert "+scan" in words
    sharded = acl_line("shop-1", "--shards", "8", "--prefix", "app:v2", "--no-scan")
    assert sharded[2] == "shop-1"
    assert "~app:v2:{shop-1:[0-9][0-9]}*" in sharded
    assert "&app:v2:{shop-1:[0-9][0-9]}*" in sharded
    assert not set(SCAN_COMMANDS) & {word.lstrip("+") for word in sharded}


def test_acl_command_asks_for_the_password_twice_and_never_shows_it() -> None:
    result = CliRunner().invoke(
        app, ["acl", "-t", "shop-1"], input=f"{PASSWORD}\n{PASSWORD}\n", env={}
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "#" in result.stdout
    mismatch = CliRunner().invoke(app, ["acl", "-t", "shop-1"], input=f"{PASSWORD}\nother\n")
    assert PASSWORD not in mismatch.output
    assert mismatch.exit_code != 0


@pytest.mark.parametrize(
    "args",
    [["-t", "bad tenant"], ["-t", "t", "--shards", "0"], ["-t", "t", "--user", "a b"]],
    ids=["tenant", "shards", "user"],
)
def test_acl_command_bad_input_is_one_line(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["acl", *args], env={"TENANTKV_ACL_PASSWORD": PASSWORD})
    assert_one_line_error(result, secret=PASSWORD)


LEVELS = [
    pytest.param(True, {}, id="scan"),
    pytest.param(True, {"shards": 4, "index": True}, id="scan-shards-index"),
    pytest.param(False, {"index": True}, id="noscan-index"),
    pytest.param(False, {"index": True, "shards": 4}, id="noscan-shards-index"),
]


@pytest.mark.parametrize(("scan", "options"), LEVELS)
async def test_a_tenant_user_reaches_its_tenant_only(
    topology: Topology, scan: bool, options: dict[str, Any]
) -> None:
    tenant, other = new_tenant("mine"), new_tenant("theirs")
    user = f"user-{tenant}"
    flags = ["--user", user, "--shards", str(options.get("shards", 1))]
    apply(topology.nodes, *acl_line(tenant, *flags, *([] if scan else ["--no-scan"])))
    apply(topology.nodes, "ACL", "LOG", "RESET")
    url = with_user(topology.url, user)
    async with tenantkv.open_store(topology.url, tenant=other, **options) as theirs:
        await theirs.set("secret", "x")
        try:
            async with tenantkv.open_store(url, tenant=tenant, **options) as mine:
                await exercise(mine)
                if scan and options.get("index"):
                    await exercise_repair(mine)
                # Everything the store did was allowed (the command list is complete).
                assert acl_log(topology.nodes) == []
                if not scan:
                    await mine.set("x", 1)
                    for repair in (mine.reindex, mine.verify_index):
                        with pytest.raises(tenantkv.PermissionDeniedError) as refused:
                            await repair()
                        assert "SCAN" in str(refused.value)
                        assert "admin user" in str(refused.value)
                        assert PASSWORD not in str(refused.value)
                    await mine.clear()
            await check_foreign_tenant_is_refused(url, other, options, scan=scan)
            await check_key_names(topology, user, theirs.namespace.key("secret"), scan=scan)
        finally:
            await theirs.clear()
            apply(topology.nodes, "ACL", "DELUSER", user)


async def check_foreign_tenant_is_refused(
    url: str, other: str, options: dict[str, Any], *, scan: bool
) -> None:
    async with tenantkv.open_store(url, tenant=other, **options) as foreign:
        refusals: list[tuple[str, Any]] = [
            ("GET", foreign.get("secret")),
            ("SET", foreign.set("secret", "mine now")),
            ("PUBLISH", foreign.publish("ch", 1)),
        ]
        if options.get("index"):
            refusals.append(("ZRANGE", foreign.keys()))
        for command, call in refusals:
            with pytest.raises(tenantkv.PermissionDeniedError) as refused:
                await call
            assert refused.value.command == command
            assert PASSWORD not in str(refused.value)
            assert PASSWORD not in refused.value.url
        with pytest.raises(tenantkv.PermissionDeniedError) as refused:
            async with foreign.subscribe("ch"):
                pass
        assert refused.value.command == "SUBSCRIBE"
        if scan and not options.get("index"):
            # SCAN runs, but finds none of the foreign tenant's keys it could read.
            assert await foreign.keys() != []


async def check_key_names(topology: Topology, user: str, foreign_key: str, *, scan: bool) -> None:
    """ACL key patterns do not filter SCAN: with SCAN a tenant user sees other key names."""
    seen: set[str] = set()
    for node in topology.nodes:
        with node.client(username=user, password=PASSWORD) as client:
            if not scan:
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.scan(0, count=1000)
                continue
            if node.role() == "master":
                seen.update(client.scan_iter(count=1000))
    assert (foreign_key in seen) is scan


async def test_the_acl_lists_exactly_the_commands_tenantkv_sends(server_kind: ServerKind) -> None:
    """A fresh server and cluster: what the stores run (INFO commandstats) is what ACL allows."""
    tenant = new_tenant()
    words = acl_line(tenant, "--user", "app", "--shards", "4")
    allowed = {word[1:] for word in words if word.startswith("+")}
    sharded = acl_line(tenant, "--user", "app-sharded", "--shards", "4")
    plain = acl_line(tenant, "--user", "app-plain")
    used: set[str] = set()
    with (
        FixtureServer(server_kind.binary) as server,
        FixtureCluster(3, 0, binary=server_kind.binary) as cluster,
    ):
        for where, nodes in ((server.url, [server]), (cluster.url, cluster.nodes)):
            apply(nodes, *sharded)
            apply(nodes, *plain)
            apply(nodes, "CONFIG", "RESETSTAT")
            for user, options in (("app-plain", {}), ("app-sharded", {"shards": 4, "index": True})):
                async with tenantkv.open_store(
                    with_user(where, user), tenant=tenant, **options
                ) as store:
                    await exercise(store)
                    if options:
                        await exercise_repair(store)
            assert acl_log(nodes) == []
            # Less this test's own: CONFIG RESETSTAT, ACL LOG, INFO commandstats, and the
            # CLIENT SETINFO of its admin connections (a tenant user's is refused: acl_log).
            own = {"config|resetstat", "acl|log", "info", "client|setinfo"}
            ran = command_stats(nodes) - own
            assert ran <= allowed, ran - allowed
            used |= ran
    # Nothing allowed goes unused, but for what only some servers or URLs send.
    assert allowed - used - {"info"} <= {"select"}  # SELECT: only for a database other than 0


@pytest.mark.parametrize(
    "refused",
    [("multi", "exec"), ("exec",), ("multi",)],
    ids=["no-multi-exec", "no-exec", "no-multi"],
)
async def test_a_user_without_transactions_still_clears_by_the_index(
    topology: Topology, refused: tuple[str, ...]
) -> None:
    """A user denied MULTI or EXEC: the index's clear sees its first transaction refused
    (EXECABORT; or, without MULTI, its commands run one by one) and finishes with
    ``unlink.lua``, every key counted once; the walk's connection goes back to the pool
    clean (no reconnection)."""
    user = f"notx-{new_tenant()}"
    rules = ("reset", "on", f">{PASSWORD}", "~*", "&*", "+@all", *(f"-{c}" for c in refused))
    apply(topology.nodes, "ACL", "SETUSER", user, *rules)
    apply(topology.nodes, "ACL", "LOG", "RESET")
    standalone = len(topology.nodes) == 1
    try:
        url = with_user(topology.url, user)
        async with tenantkv.open_store(url, tenant=new_tenant(), index=True) as store:
            await store.set_many({f"k{i:04d}": i for i in range(500)})
            assert await store.clear(count=50) == 500  # the pool has its connections now
            await store.set_many({f"k{i:04d}": i for i in range(3000)}, ttl_ms=600_000)
            apply(topology.nodes, "CONFIG", "RESETSTAT")
            with topology.nodes[0].client() as admin:
                before = admin.info("stats")["total_connections_received"]
                seen: list[int] = []
                cleared = await store.clear(count=100, progress=lambda p: seen.append(p.done))
                assert await store.keys() == []
                after = admin.info("stats")["total_connections_received"]
            assert cleared == 3000
            assert seen[-1] == 3000
            if standalone:
                assert after == before
            assert "evalsha" in command_stats(topology.nodes)  # the exact way: unlink.lua
            assert (await store.verify_index()).clean
        refusals = {entry["object"] for entry in acl_log(topology.nodes)}
        assert refusals <= set(refused)
        assert refusals
    finally:
        apply(topology.nodes, "ACL", "DELUSER", user)


async def test_a_user_without_zlexcount_lists_a_prefix_by_name(topology: Topology) -> None:
    """A user provisioned before the index listing found a prefix's rank by ``ZLEXCOUNT``:
    a prefix's listing is refused that once, and the store walks such prefixes by name
    from then on; every listing stays complete."""
    user = f"nolex-{new_tenant()}"
    rules = ("reset", "on", f">{PASSWORD}", "~*", "&*", "+@all", "-zlexcount")
    apply(topology.nodes, "ACL", "SETUSER", user, *rules)
    apply(topology.nodes, "ACL", "LOG", "RESET")
    try:
        url = with_user(topology.url, user)
        async with tenantkv.open_store(url, tenant=new_tenant(), index=True) as store:
            await store.set_many({f"{p}:{i:03d}": i for p in "abc" for i in range(300)})
            for _ in range(3):
                assert sorted(await store.keys("b:*", count=50)) == [
                    f"b:{i:03d}" for i in range(300)
                ]
                assert len(await store.keys(count=50)) == 900  # by rank: no ZLEXCOUNT needed
            await store.clear()
        refusals = acl_log(topology.nodes)
        assert [(entry["object"], entry["count"]) for entry in refusals] == [("zlexcount", 1)]
    finally:
        apply(topology.nodes, "ACL", "DELUSER", user)


# --------------------------------------------------------------------------- no admin commands


@pytest.fixture(params=["server", "cluster"])
def refusing(request: pytest.FixtureRequest, server_kind: ServerKind) -> Iterator[Topology]:
    """A server (or 3x0 cluster) with the admin commands renamed away, and an ``app`` user
    that may not run @admin commands (CLUSTER's admin subcommands among them) or SCRIPT FLUSH."""
    if request.param == "server":
        with FixtureServer(server_kind.binary, extra_args=RENAME_ARGS) as server:
            apply([server], "ACL", "SETUSER", "app", *APP_USER_RULES)
            yield Topology(with_user(server.url, "app"), [server])
    else:
        with FixtureCluster(3, 0, binary=server_kind.binary, extra_args=RENAME_ARGS) as cluster:
            apply(cluster.nodes, "ACL", "SETUSER", "app", *APP_USER_RULES)
            yield Topology(with_user(cluster.url, "app"), cluster.nodes)


async def test_no_product_path_needs_an_admin_command(refusing: Topology) -> None:
    with refusing.nodes[0].client() as client:
        for command in RENAMED:
            with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
                client.execute_command(command, "HELP")
    for options in ({}, {"index": True}, {"index": True, "shards": 4}):
        async with tenantkv.open_store(refusing.url, tenant=new_tenant(), **options) as store:
            await exercise(store)
            if options:
                await exercise_repair(store)
    assert acl_log(refusing.nodes) == []


# --------------------------------------------------------------------------- declared keys


async def test_every_script_touches_only_the_keys_it_declares(server_kind: ServerKind) -> None:
    """Each EVALSHA runs as a user allowed exactly the keys it passes (KEYS): a script
    touching any other key would fail with PermissionDeniedError."""
    with FixtureServer(server_kind.binary) as server, server.client() as admin:
        admin.acl_setuser("probe", enabled=True, passwords=[f"+{PASSWORD}"], commands=["+@all"])
        admin.execute_command("ACL", "SETUSER", "probe", "~*", "&*")
        calls: list[int] = []
        one_at_a_time = asyncio.Lock()

        def declared_only(client: Any) -> Callable[..., Any]:
            evalsha = client.evalsha

            async def run(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
                keys = [k.decode() if isinstance(k, bytes) else str(k) for k in keys_and_args]
                patterns = [f"~{escape_glob(key)}" for key in keys[:numkeys]]
                async with one_at_a_time:  # a sharded store runs its scripts concurrently
                    admin.execute_command("ACL", "SETUSER", "probe", "resetkeys", *patterns)
                    calls.append(numkeys)
                    try:
                        return await evalsha(sha, numkeys, *keys_and_args)
                    finally:  # every other command may touch any key
                        admin.execute_command("ACL", "SETUSER", "probe", "resetkeys", "~*")

            return run

        url = with_user(server.url, "probe")
        for options in ({}, {"index": True}, {"index": True, "shards": 4}):
            async with tenantkv.open_store(url, tenant=new_tenant(), **options) as store:
                backend = store.backend
                assert isinstance(backend, RedisBackend)
                backend.client.evalsha = declared_only(backend.client)  # type: ignore[method-assign]
                await exercise(store)
                if options:
                    await exercise_repair(store)
                # The check can fail: a script reading a key it did not declare is refused.
                sneaky = backend.client.register_script("return redis.call('GET', KEYS[1]..'x')")
                with pytest.raises(redis.exceptions.ResponseError, match=r"ACL|can't access"):
                    await sneaky(keys=[store.namespace.key("a")])
        assert len(calls) > 30
