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
``redeliveries``                       hash    sha1(payload) -> times its process died with it
``wakeup``                             pubsub  channel; a queue name is published on each push
=====================================  ======  ==================================================

Keys for the dashboard and metrics (bounded: every one expires):

=====================================  ======  ==================================================
``metrics:jobs:<minute>``              hash    per-job metrics of one minute (epoch s // 60):
                                               ``<class>|p`` finished, ``<class>|f`` of which
                                               failed, ``<class>|ms`` total milliseconds,
                                               ``<class>|h<i>`` jobs in duration bucket ``i``
                                               (bounds: :func:`job_duration_buckets_ms`); TTL 8 h
``metrics:queues:<minute>``            hash    queue -> depth sampled in that minute; TTL 2 h
``metrics:workers:<minute>``           hash    ``busy``, ``idle`` worker counts; TTL 2 h
``pool:<host>:<pid>``                  string  a pool master's state as JSON, SET EX a few publish
                                               periods: it disappears when the master dies
``pools``                              zset    pool ids (``<host>:<pid>``) -> last publish time
=====================================  ======  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "resque"


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

    # --- dashboard and metrics (schema in the last table above) ---------------------------------

    def metrics_jobs(self, minute: int) -> str:
        return self._k(f"metrics:jobs:{minute}")

    def metrics_queues(self, minute: int) -> str:
        return self._k(f"metrics:queues:{minute}")

    def metrics_workers(self, minute: int) -> str:
        return self._k(f"metrics:workers:{minute}")

    def pool(self, pool_id: str) -> str:
        return self._k(f"pool:{pool_id}")

    @property
    def pools(self) -> str:
        return self._k("pools")


# --- dashboard and metrics -----------------------------------------------------------------------

#: Upper bounds (milliseconds) of the job duration buckets; the last one is open (+inf).
_JOB_DURATION_BUCKETS_MS: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, float("inf")
)  # fmt: skip
JOB_METRICS_TTL = 8 * 3600
SAMPLES_TTL = 2 * 3600


def job_duration_buckets_ms() -> tuple[float, ...]:
    """Upper bounds in ms of buckets ``h0``..``h15``: the CYCLE script and the readers share them."""
    return _JOB_DURATION_BUCKETS_MS


def job_duration_bucket(ms: float) -> int:
    """Index of the bucket a job of ``ms`` milliseconds falls in (bound inclusive)."""
    for i, bound in enumerate(_JOB_DURATION_BUCKETS_MS):
        if ms <= bound:
            return i
    return len(_JOB_DURATION_BUCKETS_MS) - 1
