"""Redis Sentinel URLs, and an opt-in durable mode that waits for a replica after each write.

``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db][?options]``
(``rediss+sentinel://`` for TLS to the sentinels and the servers) gives a client whose connection
pool asks the sentinels for the current master of ``service_name`` and follows it across a
failover: a connection to a master that was demoted (``READONLY``) or that died is dropped, and
the next one goes to the master the sentinels name. Every caller that retries on
:data:`pyresque.store.connection.RETRYABLE_ERRORS` (the worker, the pool, the client's caller) then
carries on against the new master with no other change.

Why a URL rather than a ``--sentinel`` option: every entry point (``pyresque work``, ``pool``,
``status``, :class:`pyresque.Client`, ``REDIS_URL`` on Heroku or in a Kubernetes secret) already
takes one URL, and :func:`pyresque.store.connection.redact` already hides the password in it.

Options (query string): ``sentinel_auth=1`` sends the URL's credentials to the sentinels too
(by default only the servers get them); ``wait=N`` turns on the durable mode below with ``N``
replicas and ``wait_timeout=MS`` (default 500) bounds each wait.

Asynchronous replication can lose the last writes a master acknowledged before it died: a job
enqueued just before a failover can vanish, an acknowledgement can be undone (the job runs
again) and a reservation can be undone (the job is back in its queue while a worker runs it).
:class:`DurableRedis` closes the first case for jobs it reports as stored: each write command (or
pipeline holding one) is followed, on the same connection, by ``WAIT N timeout``, and a write
that fewer than ``N`` replicas confirmed raises :class:`NotReplicated` (a ``RedisError``, so the
worker retries it and an enqueuer sees a failure rather than a silent loss). See
``docs/guarantees.md``.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline
from redis.sentinel import MasterNotFoundError, Sentinel

from pyresque.errors import ConfigError, PyresqueError

log = logging.getLogger(__name__)

SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_WAIT_TIMEOUT_MS = 500

# Commands after which the durable mode waits for replicas: everything pyresque sends that moves,
# stores or removes a job or its record (scripts included). Heartbeats and reads do not wait.
DURABLE_COMMANDS = frozenset(
    {
        "EVAL",
        "EVALSHA",
        "RPUSH",
        "LPUSH",
        "LMOVE",
        "BLMOVE",
        "RPOPLPUSH",
        "LPOP",
        "RPOP",
        "LREM",
        "LSET",
        "DEL",
        "HDEL",
        "SET",
    }
)


class NotReplicated(PyresqueError, redis.RedisError):
    """A write ran on the master but fewer replicas than asked for confirmed it in time.

    A ``RedisError`` so that every retry loop treats it like a lost reply: the write may or may
    not survive a failover, so it is done again (at least once), never assumed done.
    """


@dataclass(frozen=True)
class SentinelURL:
    """What a ``redis+sentinel://`` URL says; see the module docstring."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    sentinel_auth: bool = False
    wait_replicas: int = 0
    wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SCHEMES


def _address(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port``."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or (port and not port.isdigit()):
        raise ConfigError(f"sentinel URL: {text!r} is not host:port")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT


def _options(query: str) -> dict[str, str]:
    known = {"sentinel_auth", "wait", "wait_timeout"}
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"sentinel URL: unknown option {unknown[0]!r} (known: {sorted(known)})")
    return options


def _whole(name: str, value: str, minimum: int) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise ConfigError(f"sentinel URL: {name}={value!r}: expected a whole number >= {minimum}")
    return int(value)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse ``url``; a clear :class:`ConfigError` (never naming the password) when it is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ConfigError(f"not a sentinel URL (expected {' or '.join(SCHEMES)}://)")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(secret) if colon else None
    sentinels = tuple(_address(h.strip()) for h in hosts.split(",") if h.strip())
    if not sentinels:
        raise ConfigError("sentinel URL: no sentinel host:port given")
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise ConfigError("sentinel URL: expected /service_name or /service_name/db after hosts")
    options = _options(query)
    return SentinelURL(
        sentinels=sentinels,
        service=parts[0],
        db=_whole("db", parts[1], 0) if len(parts) == 2 else 0,
        username=username,
        password=password,
        ssl=scheme.lower() == "rediss+sentinel",
        sentinel_auth=options.get("sentinel_auth", "").lower() in {"1", "true", "yes", "on"},
        wait_replicas=_whole("wait", options["wait"], 0) if "wait" in options else 0,
        wait_timeout_ms=(
            _whole("wait_timeout", options["wait_timeout"], 1)
            if "wait_timeout" in options
            else DEFAULT_WAIT_TIMEOUT_MS
        ),
    )


class _Sentinels(Sentinel):
    """redis-py's Sentinel manager, with a one-line error when no sentinel names a master.

    redis-py's own message embeds the full repr of every sentinel client (hundreds of characters
    per sentinel), and the worker logs it on each retry while the sentinels are unreachable.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            address: tuple[str, int] = super().discover_master(service_name)  # type: ignore[no-untyped-call, unused-ignore]
        except MasterNotFoundError as exc:
            hosts = ",".join(
                "{host}:{port}".format_map(s.connection_pool.connection_kwargs)
                for s in self.sentinels
            )
            reason = "no sentinel answered" if "Error" in str(exc) else "none names one"
            raise MasterNotFoundError(
                f"no master for {service_name!r} from sentinels {hosts} ({reason})"
            ) from None
        return address


def connect_sentinel(url: str, options: Mapping[str, Any]) -> redis.Redis:
    """A client of the current master of the URL's service, following it across failovers.

    ``options`` are the connection options :func:`pyresque.store.connection.connect` gives every
    client (timeouts, keepalive, health check); the sentinels get the socket ones.
    """
    parsed = parse_sentinel_url(url)
    auth: dict[str, Any] = {"username": parsed.username, "password": parsed.password}
    sentinel_kwargs: dict[str, Any] = {k: v for k, v in options.items() if k.startswith("socket_")}
    if parsed.ssl:
        sentinel_kwargs["ssl"] = True
    if parsed.sentinel_auth:
        sentinel_kwargs.update(auth)
    manager = _Sentinels(  # type: ignore[no-untyped-call, unused-ignore]
        list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs
    )
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call, unused-ignore]
        parsed.service,
        redis_class=DurableRedis if parsed.wait_replicas else redis.Redis,
        db=parsed.db,
        ssl=parsed.ssl,
        **auth,
        **options,
    )
    if isinstance(client, DurableRedis):
        client.set_durability(parsed.wait_replicas, parsed.wait_timeout_ms)
    return client


# --- durable mode: WAIT after every write that carries a job ---------------------------------


def _needs_wait(command: object) -> bool:
    name = command.decode() if isinstance(command, bytes) else str(command)
    return name.upper() in DURABLE_COMMANDS


def _check(acked: object, replicas: int, what: str) -> None:
    if int(acked) < replicas:  # type: ignore[call-overload]
        raise NotReplicated(f"{what}: {acked} of {replicas} replicas confirmed the write in time")


class DurablePipeline(Pipeline):
    """A pipeline followed by ``WAIT`` on the same connection when it holds a write (after the
    ``EXEC`` for a transaction: inside ``MULTI``, ``WAIT`` would not wait)."""

    replicas = 0
    wait_timeout_ms = DEFAULT_WAIT_TIMEOUT_MS

    def _wait_after(self, connection: Any, commands: list[Any]) -> None:
        if self.replicas and any(_needs_wait(args[0]) for args, _ in commands):
            connection.send_command("WAIT", self.replicas, self.wait_timeout_ms)
            _check(connection.read_response(), self.replicas, "write")

    def _execute_transaction(self, connection: Any, commands: Any, raise_on_error: Any) -> Any:
        replies = super()._execute_transaction(connection, commands, raise_on_error)
        self._wait_after(connection, commands)
        return replies

    def _execute_pipeline(self, connection: Any, commands: Any, raise_on_error: Any) -> Any:
        replies = super()._execute_pipeline(  # type: ignore[no-untyped-call]
            connection, commands, raise_on_error
        )
        self._wait_after(connection, commands)
        return replies


class DurableRedis(redis.Redis):
    """A client that waits for ``replicas`` replicas after each write (see the module docstring).

    WAIT covers the writes made earlier *on the same connection*, so each write goes out in a
    pipeline with its WAIT; the cost is one replication round trip per write, which is why the
    mode is opt-in.
    """

    replicas = 0
    wait_timeout_ms = DEFAULT_WAIT_TIMEOUT_MS

    def set_durability(self, replicas: int, wait_timeout_ms: int) -> None:
        self.replicas, self.wait_timeout_ms = replicas, wait_timeout_ms

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if not self.replicas or not args or not _needs_wait(args[0]):
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        pipe = self.pipeline(transaction=False)
        pipe.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return pipe.execute()[0]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> DurablePipeline:
        pipe = DurablePipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.replicas, pipe.wait_timeout_ms = self.replicas, self.wait_timeout_ms
        return pipe


def durable(client: redis.Redis, replicas: int = 1, wait_timeout_ms: int = 500) -> DurableRedis:
    """A durable-mode client sharing ``client``'s connection pool (for a plain ``redis://``
    master with replicas, where the sentinel URL's ``wait=`` option is not available)."""
    out = DurableRedis(connection_pool=client.connection_pool)
    out.set_durability(replicas, wait_timeout_ms)
    return out
