"""Bad input is refused with the library's own errors, before anything is written."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

import tenantkv
from tenantkv import TenantStore, parse_url

from .conftest import new_tenant
from .servers import FixtureServer, free_port

#: The contract suite: every test with a server runs on every server kind (conftest).
pytestmark = pytest.mark.matrix


async def assert_nothing_written(store: TenantStore) -> None:
    assert await store.keys() == []


NOT_JSON: list[Any] = [object(), math.nan, math.inf, {"a": {1, 2}}, b"raw bytes", [1, object()]]


@pytest.mark.parametrize("value", NOT_JSON, ids=lambda v: type(v).__name__)
async def test_value_json_cannot_encode(store: TenantStore, value: Any) -> None:
    with pytest.raises(tenantkv.InvalidValueError) as info:
        await store.set("k", value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(tenantkv.InvalidValueError):
        await store.set_many({"good": 1, "bad": value, "also-good": 2})
    with pytest.raises(tenantkv.InvalidValueError):
        await store.list_push("l", value)
    with pytest.raises(tenantkv.InvalidValueError):
        await store.publish("ch", value)
    await assert_nothing_written(store)


BAD_TTLS: list[Any] = [0, -1, 1.5, True, "100", None, 2**60]


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
async def test_ttl_that_is_not_a_positive_int(store: TenantStore, ttl: Any) -> None:
    if ttl is not None:  # None means "no TTL" for set, but is refused by set_ttl
        with pytest.raises(tenantkv.InvalidValueError):
            await store.set("k", 1, ttl_ms=ttl)
        with pytest.raises(tenantkv.InvalidValueError):
            await store.set_many({"a": 1}, ttl_ms=ttl)
        await assert_nothing_written(store)
    await store.set("kept", 1, ttl_ms=60_000)
    with pytest.raises(tenantkv.InvalidValueError):
        await store.set_ttl("kept", ttl)
    remaining = await store.get_ttl("kept")
    assert remaining is not None
    assert remaining > 50_000


NOT_A_MAPPING: list[Any] = [[("a", 1)], None, "a=1", 5, {("a", 1)}]


@pytest.mark.parametrize("items", NOT_A_MAPPING, ids=repr)
async def test_set_many_without_a_mapping(store: TenantStore, items: Any) -> None:
    with pytest.raises(tenantkv.InvalidArgumentTypeError, match="mapping") as info:
        await store.set_many(items)
    assert isinstance(info.value, TypeError)
    await assert_nothing_written(store)


@pytest.mark.parametrize("keys", [5, None, "abc", b"abc", [1, 2], ["a", None]], ids=repr)
async def test_get_many_without_an_iterable_of_keys(store: TenantStore, keys: Any) -> None:
    await store.set("a", 1)
    with pytest.raises(tenantkv.InvalidInputError) as info:
        await store.get_many(keys)
    assert isinstance(info.value, TypeError)
    assert await store.get_many(iter(["a", "b"])) == [1, None]  # any iterable of str


async def test_empty_key(store: TenantStore) -> None:
    with pytest.raises(tenantkv.InvalidKeyError) as info:
        await store.set("", 1)
    assert isinstance(info.value, ValueError)
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.set_many({"ok": 1, "": 2})
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.list_push("", 1)
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.get("")
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.publish("", 1)
    await assert_nothing_written(store)


@pytest.mark.parametrize("key", [1, b"k", None, ("t",)], ids=repr)
async def test_key_that_is_not_a_str(store: TenantStore, key: Any) -> None:
    with pytest.raises(tenantkv.InvalidKeyTypeError) as info:
        await store.set(key, 1)
    assert isinstance(info.value, TypeError)
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        await store.set_many({"ok": 1, key: 2})
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        await store.list_push(key, 1)
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        await store.get_many(["ok", key])
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        store.subscribe(key)
    await assert_nothing_written(store)


@pytest.mark.parametrize("pattern", [1, b"*", None], ids=repr)
async def test_pattern_that_is_not_a_str(store: TenantStore, pattern: Any) -> None:
    await store.set("k", 1)
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        await store.keys(pattern)
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        await store.count_keys(pattern)
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        [key async for key in store.iter_keys(pattern)]
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.keys("")
    assert await store.keys() == ["k"]


@pytest.mark.parametrize("key", ["\ud800", "x\udcc3\udca9"], ids=ascii)
async def test_key_with_a_surrogate_that_is_not_a_utf8_byte(store: TenantStore, key: str) -> None:
    """ "\udcc3\udca9" would be stored as the bytes of "é": two names for one Redis key."""
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.set(key, 1)
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.set_many({"ok": 1, key: 2})
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.get(key)
    with pytest.raises(tenantkv.InvalidKeyError):
        await store.keys(key)
    await assert_nothing_written(store)


async def test_a_key_that_is_not_utf8_round_trips(store: TenantStore) -> None:
    """A key whose bytes are not UTF-8 comes back with a surrogate for each such byte,
    and that str names the key again."""
    await store.set("caf\udce9", 1)  # the byte 0xE9 (latin-1 "é") alone
    await store.set("café", 2)
    assert sorted(await store.keys()) == sorted(["caf\udce9", "café"])
    assert await store.get("caf\udce9") == 1
    assert await store.delete("caf\udce9")
    assert await store.keys() == ["café"]


@pytest.mark.parametrize("count", [0, -5, 2.0, "10", True, 1_000_001, 2**63], ids=repr)
async def test_count_that_is_not_a_positive_int(store: TenantStore, count: Any) -> None:
    await store.set("k", 1)
    with pytest.raises(tenantkv.InvalidValueError):
        await store.keys(count=count)
    with pytest.raises(tenantkv.InvalidValueError):
        await store.clear(count=count)
    assert await store.keys() == ["k"]


@pytest.mark.parametrize("index", [1.0, "0", None], ids=repr)
async def test_list_range_index_that_is_not_an_int(store: TenantStore, index: Any) -> None:
    await store.list_push("l", 1)
    with pytest.raises(tenantkv.InvalidKeyTypeError):
        await store.list_range("l", index, -1)


async def test_list_range_bounds_up_to_64_bits(store: TenantStore) -> None:
    await store.list_push("l", 1)
    assert await store.list_range("l", -(2**63), 2**63 - 1) == [1]
    for start, stop in [(0, 2**63), (-(2**63) - 1, -1)]:
        with pytest.raises(tenantkv.InvalidValueError):
            await store.list_range("l", start, stop)


HOSTILE_TENANTS: list[Any] = [
    "",
    "*",
    "a*",
    "a?",
    "a[b]",
    "a\\b",
    "a:b",
    "a}b",
    "{a}",
    "a#b",
    "a b",
    "a/b",
    "ümlaut",
    "a\nb",
    "x" * 129,
    None,
    5,
    b"bytes",
]


@pytest.mark.parametrize("tenant", HOSTILE_TENANTS, ids=repr)
async def test_hostile_tenant_ids_are_rejected(store_url: str, tenant: Any) -> None:
    with pytest.raises(tenantkv.InvalidTenantError) as info:
        await tenantkv.open_store(store_url, tenant=tenant)
    assert isinstance(info.value, ValueError)
    assert "allowed are" in str(info.value)


@pytest.mark.parametrize("prefix", ["", "a{b", "a*", "a b", "x" * 65])
async def test_bad_app_prefix_is_rejected(store_url: str, prefix: str) -> None:
    with pytest.raises(tenantkv.InvalidTenantError):
        await tenantkv.open_store(store_url, tenant="t", prefix=prefix)


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://localhost",
        "",
        "localhost:6379",
        "redis://localhost:notaport/0",
        "memory://x?unknown=1",
        "redis://127.0.0.1:1/0?count=zero",
    ],
)
async def test_bad_url_or_unknown_scheme(url: str) -> None:
    with pytest.raises(tenantkv.InvalidURLError) as info:
        await tenantkv.open_store(url, tenant="t")
    assert isinstance(info.value, ValueError)


async def test_url_that_is_not_a_str() -> None:
    with pytest.raises(tenantkv.InvalidURLError):
        await tenantkv.open_store(b"memory://", tenant="t")  # type: ignore[arg-type]


@pytest.mark.redis
async def test_unreachable_server_names_url_without_password() -> None:
    port = free_port()
    url = f"redis://app:s3cretpw@127.0.0.1:{port}/0"
    with pytest.raises(tenantkv.BackendUnavailableError) as info:
        await tenantkv.open_store(url, tenant=new_tenant())
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cretpw" not in message
    assert "s3cretpw" not in info.value.url
    assert info.value.url == f"redis://app:***@127.0.0.1:{port}/0"
    assert isinstance(info.value, tenantkv.TenantKVError)


def test_redact_url() -> None:
    assert tenantkv.redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert tenantkv.redact_url("rediss://u:pw@h/0?x=1") == "rediss://u:***@h/0?x=1"
    assert tenantkv.redact_url("redis://h:1") == "redis://h:1"
    # redis-py also takes the password as a query parameter.
    assert (
        tenantkv.redact_url("redis://h:1/0?socket_timeout=2&password=pw&Pass%77ord=pw2")
        == "redis://h:1/0?socket_timeout=2&password=***&Pass%77ord=***"
    )
    assert tenantkv.redact_url("redis+cluster://h:1,h:2?password=pw") == (
        "redis+cluster://h:1,h:2?password=***"
    )


@pytest.mark.redis
async def test_a_password_in_the_query_is_used_and_never_shown() -> None:
    with FixtureServer() as server:
        with server.client() as client:
            client.config_set("requirepass", "s3cretpw")
        url = f"{server.url}?password=s3cretpw"
        async with tenantkv.open_store(url, tenant=new_tenant()) as store:
            await store.set("k", 1)
            assert "s3cretpw" not in store.url
        with pytest.raises(tenantkv.BackendError) as info:
            await tenantkv.open_store(f"{server.url}?password=wr0ngpw", tenant=new_tenant())
        assert "wr0ngpw" not in str(info.value)


@pytest.mark.redis
@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ("?socket_timout=1", {}, "did you mean 'socket_timeout'"),
        ("?foo=bar", {}, "unknown option 'foo'"),
        ("", {"no_such_option": 1}, "unknown option 'no_such_option'"),
        ("?ssl_cert_reqs=none", {}, "use rediss://"),
        ("?topology_wait_ms=5", {}, "redis+cluster://"),
        ("?single_connection_client=1", {}, "as a keyword"),
        ("?ssl=true", {}, "use rediss://"),
        ("?encoding=latin-1", {}, "tenantkv sets it itself"),
        ("", {"decode_responses": True}, "tenantkv sets it itself"),
        ("", {"socket_timeout": "abc"}, "must be a number"),
        ("?socket_timeout=abc", {}, "Invalid value for 'socket_timeout'"),
    ],
)
async def test_bad_redis_options_are_url_errors(
    redis_server: FixtureServer, query: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(tenantkv.InvalidURLError, match=re.escape(message)):
        await tenantkv.open_store(redis_server.url + query, tenant=new_tenant(), **options)


#: URLs whose password holds what a URL parser reads as the end of the authority.
UNENCODED_PASSWORDS = [
    ("redis://:ab/cd3F@127.0.0.1:1/0", "cd3F"),
    ("redis://:ab?cd3F@127.0.0.1:1/0", "cd3F"),
    ("redis://user:ab#cd3F@127.0.0.1:1/0", "cd3F"),
    ("redis://:p@ss/w0rd@127.0.0.1:1/0", "w0rd"),
    ("redis+cluster://:ab/cd3F@127.0.0.1:1,127.0.0.1:2", "cd3F"),
]


@pytest.mark.parametrize(("url", "secret_part"), UNENCODED_PASSWORDS)
async def test_a_password_with_unencoded_delimiters_is_never_shown(
    url: str, secret_part: str
) -> None:
    with pytest.raises(tenantkv.InvalidURLError) as info:
        await tenantkv.open_store(url, tenant="t")
    message = str(info.value)
    assert "ab" not in message.split("://", 1)[1].split("@")[0]
    assert secret_part not in message
    assert info.value.__cause__ is None  # no chained parser message that may quote it
    assert "percent-encode" in message
    assert secret_part not in tenantkv.redact_url(url)


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        ("ssl_password=KeyPassphrase42", "KeyPassphrase42"),
        ("passwd=X7secret", "X7secret"),
        ("pass=X7secret", "X7secret"),
        ("auth_token=X7secret", "X7secret"),
        ("ssl_keyfile_passphrase=X7secret", "X7secret"),
        ("Password=X7secret", "X7secret"),
        ("pass%77ord=X7secret", "X7secret"),
    ],
)
async def test_secret_looking_options_are_masked_everywhere(query: str, secret: str) -> None:
    for url in (f"rediss://127.0.0.1:1/0?{query}", f"redis://127.0.0.1:1/0?{query}"):
        assert secret not in tenantkv.redact_url(url)
        with pytest.raises(tenantkv.TenantKVError) as info:  # unknown option, or unreachable
            await tenantkv.open_store(url, tenant="t", socket_connect_timeout=0.5)
        assert secret not in str(info.value)
        assert secret not in getattr(info.value, "url", "")
        assert secret not in repr(split_url_or_none(url))


def split_url_or_none(url: str) -> object:
    try:
        return tenantkv.split_url(url)
    except tenantkv.InvalidURLError as exc:
        return exc


@pytest.mark.redis
@pytest.mark.parametrize(
    ("query", "options", "option"),
    [
        ("?protocol=9", {}, "protocol"),
        ("", {"protocol": 9}, "protocol"),
        ("?socket_timeout=-1", {}, "socket_timeout"),
        ("", {"socket_timeout": -1}, "socket_timeout"),
        ("?socket_timeout=nan", {}, "socket_timeout"),
        ("", {"socket_timeout": math.nan}, "socket_timeout"),
        ("", {"socket_connect_timeout": math.inf}, "socket_connect_timeout"),
        ("?max_connections=0", {}, "max_connections"),
        ("", {"max_connections": 0}, "max_connections"),
        ("", {"username": 5}, "username"),
        ("", {"client_name": 5}, "client_name"),
        ("", {"retry_on_timeout": "yes"}, "retry_on_timeout"),
        ("", {"health_check_interval": -3}, "health_check_interval"),
        ("", {"password": 12345}, "password"),
    ],
)
async def test_bad_option_values_are_url_errors_naming_the_option(
    redis_server: FixtureServer, query: str, options: dict[str, object], option: str
) -> None:
    url = redis_server.url + query
    with pytest.raises(tenantkv.InvalidURLError, match=re.escape(repr(option))) as info:
        await tenantkv.open_store(url, tenant=new_tenant(), **options)
    if option == "password":
        assert "12345" not in str(info.value)
    # parse_url checks the same, without connecting.
    with pytest.raises(tenantkv.InvalidURLError):
        tenantkv.parse_url(url, **options)


@pytest.mark.cluster
async def test_bad_option_values_are_url_errors_on_a_cluster_too() -> None:
    url = "redis+cluster://127.0.0.1:1?socket_timeout=-1"
    with pytest.raises(tenantkv.InvalidURLError, match="socket_timeout"):
        await tenantkv.open_store(url, tenant="t")
    with pytest.raises(tenantkv.InvalidURLError, match="max_connections"):
        await tenantkv.open_store("redis+cluster://127.0.0.1:1", tenant="t", max_connections=0)


@pytest.mark.redis
@pytest.mark.parametrize("path", ["/x", "/0/1", "/-1", "/%2F1x"])
async def test_a_database_that_is_not_a_number_is_a_url_error(
    redis_server: FixtureServer, path: str
) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}{path}"
    with pytest.raises(tenantkv.InvalidURLError, match="database number"):
        await tenantkv.open_store(url, tenant=new_tenant())


@pytest.mark.redis
@pytest.mark.parametrize(("path", "db"), [("", 0), ("/", 0), ("/0/", 0), ("/%31", 1), ("/2", 2)])
async def test_database_paths_redis_py_reads(
    redis_server: FixtureServer, path: str, db: int
) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}{path}"
    tenant = new_tenant()
    async with tenantkv.open_store(url, tenant=tenant) as store:
        await store.set("k", 1)
        with redis_server.client() as client:
            client.select(db)
            assert client.exists(store.namespace.key("k")) == 1
            client.delete(store.namespace.key("k"))


def test_parse_url_splits_store_options_from_backend_options() -> None:
    parsed = parse_url("REDIS://:pw@h:1/0?index=1&socket_timeout=2&prefix=app&shards=4&count=50")
    assert parsed.scheme == "redis"
    assert parsed.store_options == {"index": "1", "prefix": "app", "shards": "4", "count": "50"}
    assert parsed.backend_query == {"socket_timeout": "2"}
    assert parsed.url == "redis://:pw@h:1/0?socket_timeout=2"
    assert parsed.redacted == "redis://:***@h:1/0?socket_timeout=2"


def test_parse_url_errors_hide_the_password() -> None:
    with pytest.raises(tenantkv.InvalidURLError) as info:
        parse_url("mongodb://u:s3cretpw@h/0")
    assert "s3cretpw" not in str(info.value)
    assert "redis+cluster://" in str(info.value)  # names the schemes it knows


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, (None, 1.0)),
        ({"count": 50, "budget_ms": 0.25}, (50, 0.25)),
        ({"budget_ms": 3}, (None, 3.0)),
    ],
)
def test_count_and_time_budget_options(given: dict[str, Any], expected: tuple[Any, float]) -> None:
    options = parse_url("memory://", **given).options
    assert (options.count, options.budget_ms) == expected
    query = "&".join(f"{name}={value}" for name, value in given.items())
    assert parse_url(f"memory://?{query}").options == options


@pytest.mark.parametrize(
    "budget", [0, -1, "0", "fast", float("nan"), float("inf"), True, 60_001, [1]], ids=repr
)
async def test_a_bad_time_budget_is_refused_naming_the_option(budget: Any) -> None:
    with pytest.raises(tenantkv.InvalidURLError, match="budget_ms"):
        parse_url("memory://", budget_ms=budget)
    if isinstance(budget, str):
        with pytest.raises(tenantkv.InvalidURLError, match="budget_ms"):
            parse_url(f"memory://?budget_ms={budget}")
    async with tenantkv.open_client("memory://") as client:
        with pytest.raises(tenantkv.InvalidValueError, match="budget_ms"):
            await client.store("t", budget_ms=budget)
