"""Store URLs: the scheme table, parsing into :class:`StoreURL`, and redaction.

A store URL is parsed once, here, into a :class:`StoreURL`; everything
downstream (the backends, the command line's load test) takes that object
and never looks at the string again. :func:`tenantkv.parse_url` then checks
the options against the backend the scheme names.

========================= ======== =====================================================
scheme                    backend  nodes
========================= ======== =====================================================
``memory://[name]``       memory   none: an in-process keyspace shared by ``name``
``redis://``              redis    one ``host[:port]``; user, password and database
``rediss://``             redis    the same over TLS
``redis+cluster://``      cluster  startup nodes ``host[:port][,host[:port]...]``
``rediss+cluster://``     cluster  the same over TLS
========================= ======== =====================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from redis.asyncio.connection import SSLConnection
from redis.asyncio.connection import parse_url as redis_py_parse_url

from .errors import InvalidURLError
from .namespace import DEFAULT_PREFIX
from .pacing import DEFAULT_BUDGET_MS

__all__ = [
    "DEFAULT_COUNT",
    "SCHEMES",
    "STORE_OPTIONS",
    "Address",
    "BackendKind",
    "Scheme",
    "StoreOptions",
    "StoreURL",
    "format_address",
    "is_secret_option",
    "redact_url",
    "split_url",
]

BackendKind = Literal["memory", "redis", "cluster"]
#: A server's host and port.
Address = tuple[str, int]

DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class Scheme:
    """What a URL scheme selects."""

    name: str
    #: Which backend serves it.
    backend: BackendKind
    #: Whether connections use TLS.
    tls: bool


#: Every scheme tenantkv opens. A new backend is one module plus one entry here
#: and one in ``tenantkv.opening``'s backend table.
SCHEMES: Mapping[str, Scheme] = MappingProxyType(
    {
        s.name: s
        for s in (
            Scheme("memory", "memory", tls=False),
            Scheme("redis", "redis", tls=False),
            Scheme("rediss", "redis", tls=True),
            Scheme("redis+cluster", "cluster", tls=False),
            Scheme("rediss+cluster", "cluster", tls=True),
        )
    }
)

#: Query options of tenantkv's backends themselves, not of redis-py's clients.
_BACKEND_ONLY_OPTIONS = frozenset({"topology_wait_ms"})

#: tenantkv's own options of a store, which a URL's query may carry.
STORE_OPTIONS = ("prefix", "count", "budget_ms", "index", "shards")

#: Keys per call of the bounded reads that have no time budget of their own (the slices of
#: ``list_get_all``). Enumeration commands are sized by the time budget instead
#: (``budget_ms``, :mod:`tenantkv.pacing`), at most the ``count`` given.
DEFAULT_COUNT = 1000


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """tenantkv's own options of a store, checked (see :mod:`tenantkv.opening`)."""

    #: App prefix in front of every tenant namespace.
    prefix: str = DEFAULT_PREFIX
    #: Most keys one enumeration command visits (SCAN COUNT, index chunk); ``None``: as many
    #: as the time budget allows.
    count: int | None = None
    #: Target server time of one enumeration or clear command, in ms (:mod:`tenantkv.pacing`).
    budget_ms: float = DEFAULT_BUDGET_MS
    #: Keep and read a per-tenant key index.
    index: bool = False
    #: Hash-tagged shards each tenant is spread over.
    shards: int = 1


#: Option names that hold a secret: any name containing one of these (``password``,
#: ``ssl_password``, a misspelt ``passwd``, ``token``, ``ssl_keyfile_passphrase``, ...).
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|auth|credential|key", re.IGNORECASE)
MASK = "***"


def is_secret_option(name: str) -> bool:
    """Whether an option (a query parameter or a keyword) of that name may hold a secret."""
    return _SECRET_NAME.search(unquote_plus(name)) is not None


def _mask_query(query: str) -> str:
    fields = query.split("&")
    for i, item in enumerate(fields):
        name, equals, _ = item.partition("=")
        if equals and is_secret_option(name):
            fields[i] = f"{name}={MASK}"
    return "&".join(fields)


def _userinfo_is_unambiguous(url: str) -> bool:
    """Whether every ``@`` of ``url`` is inside its authority (``scheme://userinfo@host``).

    A password holding an unencoded ``/``, ``?`` or ``#`` ends the authority
    early for a URL parser, and what follows (the rest of the password, then
    ``@host``) lands in the path, query or fragment.
    """
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return False
    return url.count("@") == netloc.count("@")


def redact_url(url: str) -> str:
    """``url`` with every secret replaced by ``***`` (safe to log or show).

    Masked: the password of ``user:password@host``; the value of every query
    option whose name looks like a secret (:func:`is_secret_option`), known
    to redis-py or not; and, when a password holds an unencoded ``/``, ``?``,
    ``#`` or ``@`` so that a parser cannot tell where it ends, everything up
    to the last ``@``. A URL that cannot be parsed at all shows no more than
    that.
    """
    if not _userinfo_is_unambiguous(url):
        before, at, after = url.rpartition("@")
        scheme, sep, _ = before.partition("://")
        host, mark, query = after.partition("?")
        shown = (scheme + sep if sep else "") + (f"{MASK}@" if at else "") + host
        return shown + (mark + _mask_query(query) if mark else "")
    parts = urlsplit(url)
    try:
        password = parts.password
    except ValueError:
        password = None
    if password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:{MASK}@{host}")
    if parts.query:
        parts = parts._replace(query=_mask_query(parts.query))
    if parts.fragment:
        parts = parts._replace(fragment=MASK)
    return urlunsplit(parts)


def format_address(address: Address) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True, repr=False)
class StoreURL:
    """A store URL, parsed: where the backend is, how to log in, and the options given.

    Built by :func:`split_url` (the URL alone) and completed by
    :func:`tenantkv.parse_url` (options checked, keywords merged). It holds the
    password (``url``, ``client_options``), so its ``repr`` shows only
    :attr:`redacted`.
    """

    #: Lower-cased scheme, a key of :data:`SCHEMES`.
    scheme: str
    #: The backend the scheme selects.
    backend: BackendKind
    #: Whether connections use TLS.
    tls: bool
    #: The server (``redis``) or the startup nodes (``cluster``); none for ``memory``.
    nodes: tuple[Address, ...]
    #: The in-process keyspace of a ``memory://`` URL.
    name: str
    #: The URL without tenantkv's own options (credentials included: never show it).
    url: str
    #: ``url`` with any password replaced, safe for messages and logs.
    redacted: str
    #: tenantkv's own options found in the query (``prefix``, ``count``, ``budget_ms``,
    #: ``index``, ``shards``).
    store_options: dict[str, str]
    #: Every other query parameter, as given (the backend's).
    backend_query: dict[str, str]
    #: Keyword options of a redis-py client: credentials, database, TLS and the
    #: query's options typed by redis-py's own URL parser, then (after
    #: :func:`tenantkv.parse_url`) checked and merged with the keywords given.
    client_options: dict[str, Any] = field(default_factory=dict)
    #: Options of tenantkv's backend itself (``topology_wait_ms`` of a cluster), checked.
    backend_options: dict[str, Any] = field(default_factory=dict)
    #: The store options, checked, keywords over the query's (after :func:`tenantkv.parse_url`).
    options: StoreOptions = field(default_factory=StoreOptions)
    #: The backend keywords :func:`tenantkv.parse_url` was given (merged into
    #: ``client_options``), kept so that parsing this object again with more
    #: keywords gives what one call with all of them would.
    keywords: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted!r})"

    def node_url(self, address: Address) -> str:
        """A ``redis://`` (or ``rediss://``) URL of one node, with this URL's credentials and
        redis-py options: what a client of that node alone connects with (never show it)."""
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        where = format_address(address)
        query = {k: v for k, v in self.backend_query.items() if k not in _BACKEND_ONLY_OPTIONS}
        return urlunsplit(
            (
                "rediss" if self.tls else "redis",
                f"{userinfo}@{where}" if userinfo else where,
                "/0" if self.backend == "cluster" else parts.path,
                urlencode(query),
                "",
            )
        )


def _split_host_port(text: str, redacted: str) -> Address:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise InvalidURLError(f"missing host in store URL {redacted}")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidURLError(f"bad port {port_text!r} in store URL {redacted}")
    return host, int(port_text)


def _redis_py_options(single_node_url: str, redacted: str) -> dict[str, Any]:
    """What redis-py's own URL parser reads from a single-node URL, without host and port."""
    try:
        options = dict(redis_py_parse_url(single_node_url))
    except ValueError as exc:
        raise InvalidURLError(f"invalid Redis URL {redacted}: {exc}") from None
    for name in ("host", "port", "path"):
        options.pop(name, None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    return options


def split_url(url: object) -> StoreURL:
    """Parse a store URL into a :class:`StoreURL`, without checking option names or connecting.

    Raises :class:`~tenantkv.errors.InvalidURLError` (password redacted) for a
    non-string, an unparsable URL, a bad host, port or database, an unknown
    scheme or an option value redis-py cannot read.
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"store URL must be a str, not {type(url).__name__}")
    redacted = redact_url(url)
    if not _userinfo_is_unambiguous(url):
        raise InvalidURLError(
            f"cannot parse store URL {redacted}: an '@' after the host; percent-encode "
            "'/', '?', '#' and '@' in a user name or password (e.g. '/' as %2F)"
        )
    try:
        parts = urlsplit(url)
        scheme = SCHEMES.get(parts.scheme.lower())
        if scheme is not None and scheme.backend == "redis":
            parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        # The parser's message may quote a piece of the URL: say no more than the URL shown.
        raise InvalidURLError(f"cannot parse store URL {redacted}: bad host or port") from None
    if scheme is None:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise InvalidURLError(f"unknown scheme in store URL {redacted}: use one of {known}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    backend_query = {k: v for k, v in query.items() if k not in STORE_OPTIONS}
    store_query = {k: v for k, v in query.items() if k in STORE_OPTIONS}
    backend_url = urlunsplit(parts._replace(scheme=scheme.name, query=urlencode(backend_query)))
    backend_redacted = redact_url(backend_url)
    nodes: tuple[Address, ...] = ()
    name = ""
    client_options: dict[str, Any] = {}
    if scheme.backend == "memory":
        name = parts.netloc + parts.path
    else:
        userinfo, _, hosts = parts.netloc.rpartition("@")
        if scheme.backend == "redis":
            nodes = (
                (_split_host_port(hosts, backend_redacted),) if hosts else (("localhost", 6379),)
            )
            if not re.fullmatch(r"/?[0-9]*/?", unquote(parts.path)):
                raise InvalidURLError(
                    f"invalid Redis URL {backend_redacted}: the path must be a database number"
                )
            path = parts.path
        else:
            nodes = tuple(
                _split_host_port(item.strip(), backend_redacted)
                for item in hosts.split(",")
                if item.strip()
            )
            if not nodes:
                raise InvalidURLError(f"no node in Redis Cluster URL {backend_redacted}")
            if parts.path not in ("", "/", "/0"):
                raise InvalidURLError(
                    f"Redis Cluster has only database 0, not {parts.path!r}: {backend_redacted}"
                )
            path = "/0"
        # redis-py reads credentials (percent-decoded), the database and the
        # query's typed options from a single-node URL: both backends, and any
        # client of the load test, read a URL the same way.
        single = f"{'rediss' if scheme.tls else 'redis'}://"
        single += (userinfo + "@" if userinfo else "") + format_address(nodes[0]) + path
        if backend_query:
            single += "?" + urlencode(backend_query)
        client_options = _redis_py_options(single, backend_redacted)
        if scheme.backend == "cluster":
            client_options.pop("db", None)
        if scheme.tls:
            client_options["ssl"] = True
    return StoreURL(
        scheme=scheme.name,
        backend=scheme.backend,
        tls=scheme.tls,
        nodes=nodes,
        name=name,
        url=backend_url,
        redacted=backend_redacted,
        store_options=store_query,
        backend_query=backend_query,
        client_options=client_options,
    )
