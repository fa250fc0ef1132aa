"""Every Redis key pyresque reads or writes, and nothing else.

The schema, under a namespace (default ``resque``), matching Ruby Resque 3.0:

=====================================  ======  ==================================================
key                                    type    contents
=====================================  ======  ==================================================
``queues``                             set     every queue name ever pushed to
``queue:<q>``                          list    job payloads, RPUSH to enqueue, pop from the left
``workers``                            set     worker ids ``host:pid:q1,q2``
``worker:<id>``                        string  ``{"queue":…,"run_at":…,"payload":…}`` while busy
``worker:<id>:started``                string  ``2026-11-28 06:57:33 +0000``
``workers:heartbeat``                  hash    worker id -> ISO 8601 time with offset
``stat:processed[:<id>]``              string  jobs finished (success or failure)
``stat:failed[:<id>]``                 string  jobs that raised
``failed``                             list    failure records
``pause-all-workers``                  string  ``"true"`` pauses every worker
``pruning_dead_workers_in_progress``   string  prune lock, ``SET <id> NX EX 60``
=====================================  ======  ==================================================

Keys pyresque adds (Ruby never reads them, so they cannot change what Ruby sees):

=====================================  ======  ==================================================
``inflight:<id>``                      hash    queue -> raw payload of the job worker <id> holds
``inflight-workers``                   set     ids of workers that may hold an in-flight job
``landing:<id>``                        list    where an idle single-queue worker's BLMOVE drops a
                                               job, for an instant, before it is reserved
``redeliveries``                       hash    sha1(payload) -> ``"<count> <epoch>"``: times its
                                               process died with it, and when it last did
``wakeup``                             pubsub  channel; a queue name is published on each push
``metrics:jobs:<minute>``              hash    per-job metrics of one minute (epoch // 60):
                                               ``<class>|h<i>`` jobs in duration bucket i (their
                                               sum: jobs finished), ``<class>|f`` failed,
                                               ``<class>|ms`` total run time; expires 8 hours
                                               after its last write
=====================================  ======  ==================================================

Keys for the dashboard and the pool publisher (bounded: every one expires):

=====================================  ======  ==================================================
``metrics:queues:<minute>``            hash    queue -> depth sampled in that minute; TTL 2 h
``metrics:workers:<minute>``           hash    ``busy``, ``idle`` worker counts; TTL 2 h
``pool:<host>:<pid>``                  string  a pool master's state as JSON, SET EX a few publish
                                               periods: it disappears when the master dies
``pools``                              zset    pool ids (``<host>:<pid>``) -> last publish time
=====================================  ======  ==================================================

Every key of one namespace can be made to hash to one Redis Cluster slot by giving the namespace
a hash tag (``{resque}``): then every script's keys are in one slot, as a cluster requires.

resque-scheduler 5.0's keys (delayed jobs, recurring schedules, its master lock), shared with a Ruby
resque-scheduler on the same Redis:

================================================  ======  =======================================
``delayed_queue_schedule``                        zset    epoch seconds (integers), member = score
``delayed:<ts>``                                  list    ``{"class":…,"args":[…],"queue":…}``
``timestamps:<item JSON>``                        set     ``delayed:<ts>`` of lists holding it
``schedules_changed``                             set     names of changed dynamic schedules
``persistent_schedules``                          hash    name -> JSON entry (dynamic schedules)
``delayed:last_enqueued_at``                      hash    name -> ``2026-11-29 16:21:00 +0000``
``<ns>:[<prefix>:]resque_scheduler_master_lock``  string  ``host:pid`` of the active scheduler,
                                                          with a TTL (Ruby names the namespace
                                                          twice)
``resque-retry:<class>[:<args>]``                  string  attempts of a job being retried (resque-retry's
                                                          key; expires a day after the last retry)
``scheduler-wakeup``                              pubsub  channel (pyresque only): the timestamp
                                                          of each delayed job, to wake a sleeping
                                                          scheduler
``schedule:next``                                 hash    (pyresque only) name -> epoch seconds
                                                          of the next fire, as the master
                                                          scheduler holds it; expires with its
                                                          lock's timeout unless refreshed
================================================  ======  =======================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_NAMESPACE = "resque"

# What a worker's queue list (``critical,mail*,!low``) gives a meaning to: a queue whose name holds
# one of these cannot be named in it, so no worker would read it as itself.
_QUEUE_LIST_SYNTAX = ",*?["
_UNADDRESSABLE = re.compile(r"^!|[,*?\[]|\s")


def queue_name_problem(name: str) -> str | None:
    """Why no worker's queue list could name ``name`` (None when one can): empty, a comma, a glob
    character, a leading ``!``, or white space (``enqueue --queue 'a,b'`` made a queue literally
    named ``a,b`` that ``work -q a,b`` never read)."""
    if name and _UNADDRESSABLE.search(name) is None:  # the common case, in one regex
        return None
    if not name:
        return "a queue name must not be empty"
    found = sorted({c for c in name if c in _QUEUE_LIST_SYNTAX})
    if found:
        return f"queue name {name!r} holds {', '.join(map(repr, found))}, which a queue list reads as syntax"
    if name.startswith("!"):
        return f"queue name {name!r} starts with '!', which a queue list reads as 'all but'"
    if any(c.isspace() for c in name):
        return f"queue name {name!r} holds white space, which a queue list drops or splits on"
    return None


# Keys every Resque namespace in use holds (Ruby's and ours): how ``status`` finds the namespaces
# of a Redis when the one asked about is empty.
# With their types: a queue named ``queues`` (``resque:queue:queues``, a list) is no namespace.
NAMESPACE_MARKERS = {"queues": "set", "workers": "set", "stat:processed": "string"}


def namespace_of(key: str) -> str | None:
    """The namespace of a Resque key that is one of :data:`NAMESPACE_MARKERS` (``""`` for none),
    else None: ``resque:queues`` -> ``resque``, ``queues`` -> ``""``."""
    for marker in NAMESPACE_MARKERS:
        if key == marker:
            return ""
        if key.endswith(":" + marker):
            return key[: -len(marker) - 1]
    return None


@dataclass(frozen=True)
class Keys:
    """Key names under one namespace."""

    namespace: str = DEFAULT_NAMESPACE

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:" if self.namespace else ""

    def _k(self, name: str) -> str:
        return self.prefix + name

    @property
    def queues(self) -> str:
        return self._k("queues")

    def queue(self, name: str) -> str:
        return self._k(f"queue:{name}")

    @property
    def workers(self) -> str:
        return self._k("workers")

    def worker(self, worker_id: str) -> str:
        return self._k(f"worker:{worker_id}")

    def worker_started(self, worker_id: str) -> str:
        return self._k(f"worker:{worker_id}:started")

    @property
    def heartbeats(self) -> str:
        return self._k("workers:heartbeat")

    @property
    def processed(self) -> str:
        return self._k("stat:processed")

    def worker_processed(self, worker_id: str) -> str:
        return self._k(f"stat:processed:{worker_id}")

    @property
    def failed_count(self) -> str:
        return self._k("stat:failed")

    def worker_failed_count(self, worker_id: str) -> str:
        return self._k(f"stat:failed:{worker_id}")

    @property
    def failed(self) -> str:
        return self._k("failed")

    @property
    def pause_all(self) -> str:
        return self._k("pause-all-workers")

    @property
    def prune_lock(self) -> str:
        return self._k("pruning_dead_workers_in_progress")

    def inflight(self, worker_id: str) -> str:
        return self._k(f"inflight:{worker_id}")

    def landing(self, worker_id: str) -> str:
        return self._k(f"landing:{worker_id}")

    @property
    def inflight_workers(self) -> str:
        return self._k("inflight-workers")

    @property
    def redeliveries(self) -> str:
        return self._k("redeliveries")

    @property
    def wakeup(self) -> str:
        return self._k("wakeup")

    def metrics_jobs(self, minute: int) -> str:
        """Per-job metrics of one minute (``epoch // 60``), added up and written by each worker."""
        return self._k(f"metrics:jobs:{minute}")

    # --- resque-scheduler: delayed jobs, recurring schedules, master lock ----------------------

    @property
    def delayed_schedule(self) -> str:
        return self._k("delayed_queue_schedule")

    def delayed(self, timestamp: int) -> str:
        return self._k(f"delayed:{timestamp}")

    def timestamps(self, item: str) -> str:
        return self._k(f"timestamps:{item}")

    @property
    def schedules_changed(self) -> str:
        return self._k("schedules_changed")

    @property
    def persistent_schedules(self) -> str:
        return self._k("persistent_schedules")

    @property
    def last_enqueued_at(self) -> str:
        return self._k("delayed:last_enqueued_at")

    def scheduler_lock(self, prefix: str = "") -> str:
        """resque-scheduler builds ``<namespace>:<prefix>:resque_scheduler_master_lock`` itself,
        then redis-namespace prefixes it again: the namespace appears twice."""
        middle = f"{prefix}:" if prefix else ""
        return self._k(f"{self.namespace}:{middle}resque_scheduler_master_lock")

    @property
    def scheduler_wakeup(self) -> str:
        return self._k("scheduler-wakeup")

    @property
    def schedule_next(self) -> str:
        """When the master scheduler will fire each recurring entry (``schedule list`` reads it)."""
        return self._k("schedule:next")

    # --- retries (resque-retry's key) -----------------------------------------------------------

    def retry_attempts(self, class_name: str, identifier: str) -> str:
        """resque-retry's attempt counter of one job: ``resque-retry:<class>:<identifier>``."""
        parts = ["resque-retry", class_name, *([identifier] if identifier else [])]
        return self._k("".join(":".join(parts).split()))

    # --- dashboard and pool publisher (schema in the dashboard table above) --------------------

    def metrics_queues(self, minute: int) -> str:
        return self._k(f"metrics:queues:{minute}")

    def metrics_workers(self, minute: int) -> str:
        return self._k(f"metrics:workers:{minute}")

    def pool(self, pool_id: str) -> str:
        return self._k(f"pool:{pool_id}")

    @property
    def pools(self) -> str:
        return self._k("pools")


SAMPLES_TTL = 2 * 3600  # queue-depth and worker samples: the charts show the last hour
