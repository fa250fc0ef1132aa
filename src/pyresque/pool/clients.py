"""Every Redis client of a pool, made in one place from the connection resolved once.

Three ``connect()`` calls remain, each for a reason:

- the master's base client (:attr:`PoolClients.master`), made on first use: the janitor's
  clean-ups, the store the governor and the publisher read queue depths from
  (:attr:`PoolClients.queue_reads`) and the stores bound to a shutdown's deadline are all derived
  from it (:meth:`~pyresque.store.operations.Store.bounded`: the same server, connections of their
  own, calls that fail after a timeout and are never retried);
- one per worker (:meth:`PoolClients.for_worker`), built in the master before the fork and
  shared by the worker's store and the default client behind ``pyresque.enqueue``;
- the scheduler's own, with a short socket timeout and no retries
  (:func:`pyresque.scheduler.service.scheduler_connection`), as ``pyresque scheduler`` has it.
"""

from __future__ import annotations

from pyresque.jobs.client import Client
from pyresque.store.connection import connect
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys

# a Redis that does not answer must not hold up the master's loop for the metrics
QUEUE_DEPTH_TIMEOUT = 2.0


class PoolClients:
    """The pool's clients for one Redis URL and namespace (see the module's docstring)."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.redis_url = redis_url
        self.namespace = namespace
        self._master: Store | None = None
        self._queue_reads: Store | None = None

    @property
    def master(self) -> Store:
        """The master's base store: the others are derived from its client."""
        if self._master is None:
            self._master = Store(connect(self.redis_url), Keys(self.namespace))
        return self._master

    @property
    def queue_reads(self) -> Store:
        """The bounded store the governor and the state publisher read queue depths with."""
        if self._queue_reads is None:
            self._queue_reads = self.master.bounded(QUEUE_DEPTH_TIMEOUT)
        return self._queue_reads

    def for_worker(self) -> tuple[Store, Client]:
        """A worker's store and its default client, on one client of their own (unconnected
        until the worker's first call, so each worker opens its own connections)."""
        store = Store(connect(self.redis_url), Keys(self.namespace))
        return store, Client(store.redis, url=self.redis_url, namespace=self.namespace)
