"""A Lua script called on a connection of its own, its ``EVALSHA`` written as RESP by hand.

The worker's one call per job (CYCLE) went through redis-py's generic path: ``Script.__call__``,
argument encoding item by item, a connection checked out of the pool and given back, the retry
wrapper and the response callbacks; profiled under load that was most of an in-process worker's
CPU. :class:`ScriptCall` keeps redis-py's connection (its socket handling, hiredis parser when
installed, health check, reconnect) and its retry policy, and drops the rest: the caller hands
over the RESP of the arguments (mostly cached bytes, see :class:`pyresque.store.cycle.CycleRequest`),
and the call is one ``sendall`` and one reply read on a connection the caller's process owns.

It applies to a plain client (``redis://``, ``unix://``, a Sentinel master without ``wait=``);
a cluster client (which routes by key) and a durable client (which must send ``WAIT`` after each
write) keep the generic path: :attr:`ScriptCall.fast` says which one a call takes. Errors are
redis-py's own types, raised after the same retries, so the worker's outage handling sees what it
saw before; a ``NOSCRIPT`` (scripts flushed, Redis restarted) loads the script and calls again,
as redis-py's ``Script`` does.

A full Redis (``maxmemory`` with ``noeviction``) refuses a plain script's first write that may grow
memory, so a worker could neither acknowledge a job nor take the next, and the queue that would
free the memory never drained. A refused call runs again in the form a full Redis accepts
(:func:`pyresque.wire.scripts.when_full`: Redis 7's ``allow-oom`` flag, or Redis 6's first-write
rule); the plain form stays the usual one, so a Redis with room pays nothing for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT

from pyresque.store.connection import is_full
from pyresque.wire.scripts import when_full


def bulk(value: str | bytes | int) -> bytes:
    """One RESP bulk string (text as UTF-8; invalid surrogates kept as the bytes they stand for)."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, int):
        value = b"%d" % value
    return b"$%d\r\n%b\r\n" % (len(value), value)


def bulk_text(value: str) -> bytes:
    """:func:`bulk` of a text (a token, a record): the call per job, without type tests."""
    raw = value.encode("utf-8", "surrogateescape")
    return b"$%d\r\n%b\r\n" % (len(raw), raw)


def bulks(values: Iterable[str | bytes | int]) -> bytes:
    return b"".join([bulk(v) for v in values])


class _Repeated(dict[str | bytes | int, bytes]):
    """Values that recur from call to call (a queue's name, a job class, '0'), each packed once;
    up to :data:`_REPEATED_MAX` of them are kept."""

    def __missing__(self, value: str | bytes | int) -> bytes:
        packed = bulk(value)
        if len(self) < _REPEATED_MAX:
            self[value] = packed
        return packed


_REPEATED_MAX = 1024  # distinct values kept: queue and class names, flags, small numbers
_REPEATED = _Repeated()

# One recurring value as RESP: a dictionary lookup (in C) instead of an encode and a format.
bulk_repeated = _REPEATED.__getitem__


def evalsha_head(sha: str, numkeys: int, numargs: int) -> bytes:
    """The RESP of ``EVALSHA sha numkeys`` in a command of ``numkeys + numargs`` more items."""
    return b"*%d\r\n$7\r\nEVALSHA\r\n%b%b" % (3 + numkeys + numargs, bulk(sha), bulk(numkeys))


_forks = [0]  # how many forks this process is from the one that imported this module


def _count_fork() -> None:
    # in the child
    _forks[0] += 1


os.register_at_fork(after_in_child=_count_fork)


def _owns_plain_connections(client: Any) -> bool:
    """True for a client whose every command goes to one server over its pool's connections."""
    if type(client) is redis.Redis:
        return True
    from pyresque.store.sentinel import DurableRedis

    return isinstance(client, DurableRedis) and not client.replicas


class ScriptCall:
    """One script, called through redis-py (:meth:`__call__`) or on an owned connection
    (:meth:`call_packed`, when :attr:`fast`)."""

    def __init__(self, client: redis.Redis, text: str) -> None:
        self._client = client
        self._script = client.register_script(text)
        self._text = text
        self._full: Any = None  # the form a full Redis runs, made on the first refusal
        self._flags = True  # whether the server takes script flags (Redis 7), until it says not
        self.sha: str = self._script.sha
        self.fast = _owns_plain_connections(client)
        self._heads: dict[tuple[int, int], bytes] = {}
        self._connection: Any = None
        self._fork = -1  # the fork generation that made the connection
        self._loaded: set[str] = set()  # the full forms loaded (a compile error shows at load)

    def __call__(self, keys: Sequence[str], args: Sequence[EncodableT] = ()) -> Any:
        """The generic call: redis-py's ``Script`` (``EVALSHA``, ``SCRIPT LOAD`` on NOSCRIPT)."""
        try:
            return self._script(keys=keys, args=args)
        except ResponseError as exc:
            if not is_full(exc):
                raise
        return self._when_full(lambda script: script(keys=keys, args=args))

    def _when_full(self, call: Any) -> Any:
        """``call`` with the form a full Redis runs: with flags first, without once the server
        cannot parse them (Redis 6)."""
        while True:
            if self._full is None:
                self._full = self._client.register_script(when_full(self._text, flags=self._flags))
            try:
                return call(self._full)
            except ResponseError as exc:
                if not (self._flags and _cannot_parse_flags(exc)):
                    raise
                self._flags, self._full = False, None

    def command(self, numkeys: int, numargs: int, body: bytes) -> bytes:
        """The whole ``EVALSHA`` of a call, as RESP; ``body`` is the RESP of its keys and
        arguments."""
        head = self._heads.get((numkeys, numargs))
        if head is None:
            head = self._heads[numkeys, numargs] = evalsha_head(self.sha, numkeys, numargs)
        return head + body

    def call_packed(self, numkeys: int, numargs: int, body: bytes) -> Any:
        """``EVALSHA`` with ``body``, the RESP of its keys and arguments; only when :attr:`fast`."""
        command = self.command(numkeys, numargs, body)
        try:
            return self._send_loaded(command, self._script)
        except ResponseError as exc:
            if not is_full(exc):
                raise
        return self._when_full(
            lambda full: self._send_loaded(
                evalsha_head(full.sha, numkeys, numargs) + body, full, loaded_first=True
            )
        )

    def _send_loaded(self, command: bytes, script: Any, *, loaded_first: bool = False) -> Any:
        """``command``, an ``EVALSHA`` of ``script``; loading it and trying again on NOSCRIPT."""
        if loaded_first and script.sha not in self._loaded:
            self._client.script_load(script.script)
            self._loaded.add(script.sha)
        try:
            return self._send(command)
        except NoScriptError:
            self._client.script_load(script.script)
            return self._send(command)

    def ping(self) -> None:
        """One ``PING`` on the owned connection (only when :attr:`fast`): the worker's way of
        walking its own send-and-read path while nothing waits on it."""
        self._send(b"*1\r\n$4\r\nPING\r\n")

    def _send(self, command: bytes) -> Any:
        conn = self._owned()

        def attempt() -> Any:
            # connect() first, as the pool does on checkout: a Sentinel connection finds its
            # master there, while send_packed_command would connect to the default address
            conn.connect()
            conn.send_packed_command([command])  # checks health as redis-py does
            return conn.read_response()  # raises redis-py's ResponseError subclasses

        def failed(_error: Exception) -> None:
            conn.disconnect()

        return conn.retry.call_with_retry(attempt, failed)

    def _owned(self) -> Any:
        """This process's connection: a forked child never writes on its parent's socket (a fork
        counter rather than ``os.getpid()``, a system call per job)."""
        if self._fork != _forks[0]:
            self._connection = self._client.connection_pool.make_connection()
            self._fork = _forks[0]
        return self._connection

    def close(self) -> None:
        if self._connection is not None and self._fork == _forks[0]:
            self._connection.disconnect()
        self._connection, self._fork = None, -1


def _cannot_parse_flags(exc: ResponseError) -> bool:
    """A server without script flags (Redis 6) reading the shebang line as Lua."""
    return "Error compiling script" in str(exc) or "near '#'" in str(exc)
