"""Random sequences of operations give the same observable results on memory and on Redis.

This is how the in-memory backend earns the claim "Redis semantics": glob
matching, TTL presence, list indexes, WRONGTYPE errors and clears are all
compared against a real server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenantkv
from tenantkv.codec import decode_key, decode_keys
from tenantkv.glob import compile_glob

from .servers import FixtureServer

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def property_server() -> Iterator[FixtureServer]:
    """A server of its own: operations with a tiny COUNT walk the whole keyspace."""
    with FixtureServer() as server:
        yield server


# Few characters, many of them glob metacharacters, so keys collide and
# patterns exercise escapes, classes and ranges.
ALPHABET = "ab*?[]\\-^"
keys = st.text(alphabet=ALPHABET, min_size=1, max_size=3)
_class_items = st.one_of(
    st.sampled_from("ab-^]\\"),
    # Range ends beyond ASCII: Redis compares bytes as signed chars.
    st.tuples(st.sampled_from("ab*é0ÿ"), st.sampled_from("ab*é0ÿ")).map(lambda r: f"{r[0]}-{r[1]}"),
    st.sampled_from("ab*?[]\\").map(lambda c: "\\" + c),
)
_pattern_tokens = st.one_of(
    st.sampled_from(ALPHABET),
    st.just("*"),
    st.just("?"),
    st.sampled_from("*?[]\\ab").map(lambda c: "\\" + c),
    st.tuples(st.booleans(), st.lists(_class_items, max_size=3), st.booleans()).map(
        lambda t: "[" + ("^" if t[0] else "") + "".join(t[1]) + ("]" if t[2] else "")
    ),
)
#: Patterns built from glob tokens (classes, ranges in both orders, escapes,
#: unterminated classes), so each example exercises the matcher's rules.
patterns = st.lists(_pattern_tokens, min_size=1, max_size=4).map("".join)
values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(0, 3))
)
ttls = st.sampled_from([None, 600_000])

Op = tuple[Any, ...]
operations = st.one_of(
    st.tuples(st.just("set"), keys, values, ttls),
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("delete"), keys),
    st.tuples(st.just("exists"), keys),
    st.tuples(st.just("list_push"), keys, values),
    st.tuples(st.just("list_range"), keys, st.integers(-4, 4), st.integers(-4, 4)),
    st.tuples(st.just("list_length"), keys),
    st.tuples(st.just("get_many"), st.lists(keys, max_size=4)),
    st.tuples(st.just("set_many"), st.dictionaries(keys, values, max_size=4), ttls),
    st.tuples(st.just("set_ttl"), keys),
    st.tuples(st.just("has_ttl"), keys),
    st.tuples(st.just("keys"), patterns),
    st.tuples(st.just("count_keys"), patterns),
    st.tuples(st.just("clear")),
)


async def apply(store: tenantkv.TenantStore, op: Op) -> Any:
    name, *args = op
    match name:
        case "set":
            return await store.set(args[0], args[1], ttl_ms=args[2])
        case "set_many":
            return await store.set_many(args[0], ttl_ms=args[1])
        case "set_ttl":
            return await store.set_ttl(args[0], 600_000)
        case "has_ttl":
            return await store.get_ttl(args[0]) is not None
        case "keys":
            return sorted(await store.keys(args[0], count=3))
        case "count_keys":
            return await store.count_keys(args[0], count=3)
        case _:
            return await getattr(store, name)(*args)


async def run(store: tenantkv.TenantStore, ops: list[Op]) -> list[Any]:
    outcomes: list[Any] = []
    for op in ops:
        try:
            outcomes.append(("ok", await apply(store, op)))
        except tenantkv.TenantKVError as exc:
            outcomes.append(("error", type(exc).__name__))
    outcomes.append(("final", sorted(await store.keys())))
    return outcomes


async def run_both(redis_url: str, ops: list[Op]) -> tuple[list[Any], list[Any]]:
    tenant = f"prop-{uuid.uuid4().hex[:12]}"
    async with tenantkv.open_store(f"memory://prop-{tenant}", tenant=tenant) as memory:
        on_memory = await run(memory, ops)
    async with tenantkv.open_store(redis_url, tenant=tenant) as server:
        on_redis = await run(server, ops)
        await server.clear()
    return on_memory, on_redis


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=30))
def test_memory_and_redis_agree(property_server: FixtureServer, ops: list[Op]) -> None:
    on_memory, on_redis = asyncio.run(run_both(property_server.url, ops))
    assert on_memory == on_redis


@settings(max_examples=300, deadline=None)
@given(key=st.text(alphabet=ALPHABET + "xéA5ÿ", min_size=1, max_size=4), pattern=patterns)
def test_glob_matcher_agrees_with_redis(
    property_server: FixtureServer, key: str, pattern: str
) -> None:
    """Byte-level check of tenantkv.glob against the server's own matcher."""
    assert redis_matches(property_server, pattern, key) == compile_glob(pattern)(key)


def redis_matches(server: FixtureServer, pattern: str, key: str) -> bool:
    """Whether Redis's own matcher (SCAN MATCH) selects ``key`` for ``pattern``."""
    client = server.client()
    try:
        tenant = f"glob-{uuid.uuid4().hex[:12]}"
        physical = f"tkv:{{{tenant}}}:{key}"
        client.set(physical, 1)
        cursor, found = 0, []
        match = tenantkv.Namespace(tenant).match(pattern)
        while True:
            cursor, page = client.scan(cursor, match=match, count=1000)
            found.extend(page)
            if cursor == 0:
                break
        client.delete(physical)
        return physical in found
    finally:
        client.close()


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        # Many stars: a regex with one .* per star backtracks exponentially here
        # (the first took 16 s, the others would not finish); Redis answers at once.
        ("*a" * 10 + "*b", "a" * 40),
        ("*a" * 200 + "*b", "a" * 400),
        ("a*" * 200, "a" * 400),
        ("*a?" * 100 + "*", "ab" * 150),
        ("*[ab]*[^c]" * 50 + "*c", "ab" * 200 + "c"),
        # Redis gives up past 1,000 nested stars (a trailing star does not nest).
        ("*a" * 1000, "a" * 1000),
        ("*a" * 1001, "a" * 1001),
        ("a*" * 1001, "a" * 1001),
        # Range ends on both sides of 0x80: Redis compares signed chars.
        ("[0-é]", "5"),
        ("[a-ÿ]", "A"),
        ("[é-0]", "é"),
        ("[^0-é]", "5"),
    ],
    ids=lambda v: v if len(v) < 20 else f"{v[:12]}...({len(v)})",
)
def test_glob_matcher_agrees_with_redis_on_hard_cases(
    property_server: FixtureServer, pattern: str, key: str
) -> None:
    assert redis_matches(property_server, pattern, key) == compile_glob(pattern)(key)


@settings(max_examples=500, deadline=None)
@given(
    page=st.lists(
        st.binary(max_size=6) | st.sampled_from([b"\x00", b"a\x00b", b"\xff", b"\xc3\xa9", b""]),
        max_size=12,
    ),
    cut=st.sampled_from([0, 0, 1]),
)
def test_a_page_of_keys_decodes_as_each_key_alone(page: list[bytes], cut: int) -> None:
    """The page-at-once decode of index chunks gives what decoding each key gives, for keys
    holding NUL (its separator), bytes that are not UTF-8, and empty keys."""
    page = [key for key in page if len(key) >= cut]
    assert decode_keys(page, cut) == [decode_key(key[cut:]) for key in page]
