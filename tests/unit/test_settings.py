"""Worker settings from Resque's environment knobs; the command line beats the environment."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from pyresque.errors import ConfigError
from pyresque.settings import WorkerSettings, from_env, worker_settings


def settings(**env: str) -> WorkerSettings:
    return worker_settings(env)


def test_defaults_are_rubys() -> None:
    s = settings()
    assert s == WorkerSettings()
    assert (s.queues, s.interval, s.burst, s.fork_per_job) == ("", 5.0, False, True)
    assert (s.term_child, s.term_timeout, s.pre_shutdown_timeout) == (False, 4.0, 0.0)
    assert (s.graceful_term, s.heartbeat_interval, s.prune_interval) == (False, 60.0, 300.0)
    assert (s.max_deliveries, s.verbose, s.namespace, s.redis_url) == (3, 0, "resque", "")


def test_queues_from_queues_or_queue() -> None:
    assert settings(QUEUES="high,low").queues == "high,low"
    assert settings(QUEUE="mail").queues == "mail"
    assert settings(QUEUES="high", QUEUE="mail").queues == "high"
    assert settings(QUEUES="", QUEUE="mail").queues == "mail"


@pytest.mark.parametrize(
    ("value", "interval", "burst"),
    [("0", 0.0, True), ("0.0", 0.0, True), ("5", 5.0, False), ("0.5", 0.5, False)],
)
def test_interval_zero_means_burst(value: str, interval: float, burst: bool) -> None:
    s = settings(INTERVAL=value)
    assert (s.interval, s.burst) == (interval, burst)


@pytest.mark.parametrize(
    ("value", "fork"),
    [
        ("false", False),
        ("FALSE", False),
        (" false ", False),
        ("0", False),
        ("no", False),
        ("true", True),
        ("1", True),
        ("", True),  # Ruby forks unless the value is 'false'
        ("yes please", True),
    ],
)
def test_fork_per_job(value: str, fork: bool) -> None:
    assert settings(FORK_PER_JOB=value).fork_per_job is fork


def test_term_child_and_graceful_term_are_set_by_presence() -> None:
    assert settings(TERM_CHILD="1").term_child is True
    assert settings(TERM_CHILD="").term_child is True  # as in Ruby: set at all means on
    assert settings().term_child is False
    assert settings(GRACEFUL_TERM="1").graceful_term is True


def test_term_timeouts() -> None:
    s = settings(RESQUE_TERM_TIMEOUT="10", RESQUE_PRE_SHUTDOWN_TIMEOUT="2.5")
    assert (s.term_timeout, s.pre_shutdown_timeout) == (10.0, 2.5)


def test_other_knobs() -> None:
    s = settings(
        RESQUE_HEARTBEAT_INTERVAL="2",
        RESQUE_PRUNE_INTERVAL="10",
        RESQUE_MAX_DELIVERIES="5",
        RESQUE_NAMESPACE="myapp",
        REDIS_URL="redis://h:1/2",
    )
    assert (s.heartbeat_interval, s.prune_interval, s.max_deliveries) == (2.0, 10.0, 5)
    assert (s.namespace, s.redis_url) == ("myapp", "redis://h:1/2")


def test_verbosity() -> None:
    assert settings(VERBOSE="1").verbose == 1
    assert settings(VVERBOSE="1").verbose == 2
    assert settings(VERBOSE="1", VVERBOSE="1").verbose == 2


def test_overrides_beat_the_environment() -> None:
    env = {"QUEUES": "env", "INTERVAL": "7", "FORK_PER_JOB": "false", "RESQUE_NAMESPACE": "e"}
    s = worker_settings(env, {"queues": "cli", "interval": 1.0, "fork_per_job": True})
    assert (s.queues, s.interval, s.fork_per_job, s.namespace) == ("cli", 1.0, True, "e")


def test_none_overrides_are_ignored() -> None:
    s = worker_settings({"QUEUES": "env"}, {"queues": None, "burst": None})
    assert (s.queues, s.burst) == ("env", False)


def test_an_interval_override_decides_burst_too() -> None:
    assert worker_settings({"INTERVAL": "0"}, {"interval": 5.0}).burst is False
    assert worker_settings({}, {"interval": 0.0}).burst is True
    assert worker_settings({"INTERVAL": "0"}, {"burst": False}).burst is False
    assert worker_settings({"INTERVAL": "5"}, {"burst": True}).burst is True


def test_unknown_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown worker setting 'queue'"):
        worker_settings({}, {"queue": "x"})
    with pytest.raises(ConfigError, match="unknown worker setting 'nope'"):
        worker_settings({}, {"nope": None})


@pytest.mark.parametrize(
    "name",
    [
        "INTERVAL",
        "RESQUE_TERM_TIMEOUT",
        "RESQUE_PRE_SHUTDOWN_TIMEOUT",
        "RESQUE_HEARTBEAT_INTERVAL",
        "RESQUE_PRUNE_INTERVAL",
    ],
)
@pytest.mark.parametrize("value", ["soon", "", "nan", "inf", "-1", "1s"])
def test_bad_numbers_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        worker_settings({name: value})
    assert str(info.value) == f"{name}={value!r}: expected a number of seconds (0 or more)"


@pytest.mark.parametrize("value", ["three", "2.5", ""])
def test_max_deliveries_must_be_a_whole_number(value: str) -> None:
    with pytest.raises(ConfigError, match=r"RESQUE_MAX_DELIVERIES=.*expected a whole number"):
        worker_settings({"RESQUE_MAX_DELIVERIES": value})


def test_max_deliveries_must_be_at_least_one() -> None:
    with pytest.raises(ConfigError, match="RESQUE_MAX_DELIVERIES must be at least 1"):
        worker_settings({"RESQUE_MAX_DELIVERIES": "0"})


@pytest.mark.parametrize("value", ["0", "0.5"])
def test_heartbeat_interval_must_be_at_least_a_second(value: str) -> None:
    # the prune lock's EX is int(heartbeat_interval): Redis refuses EX 0 and the worker stops
    with pytest.raises(ConfigError, match="RESQUE_HEARTBEAT_INTERVAL must be at least 1"):
        worker_settings({"RESQUE_HEARTBEAT_INTERVAL": value})


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        settings().queues = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "setting",
    [
        "interval",
        "term_timeout",
        "pre_shutdown_timeout",
        "prune_interval",
        "job_timeout",
        "burst_outage_timeout",
    ],
)
@pytest.mark.parametrize("value", [-1.0, -0.001, math.nan, math.inf, "5", True])
def test_overrides_are_held_to_the_environments_rules(setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^{setting} .*: expected a number of seconds"):
        worker_settings({}, {setting: value})


@pytest.mark.parametrize("setting", ["max_jobs", "retry_attempts"])
@pytest.mark.parametrize("value", [-1, 2.5, "3"])
def test_count_overrides_must_be_whole(setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"{setting} .*: expected a whole number"):
        worker_settings({}, {setting: value})


def test_good_overrides_pass() -> None:
    got = worker_settings({}, {"interval": 0.5, "max_jobs": 10, "term_timeout": 0})
    assert (got.interval, got.max_jobs, got.term_timeout) == (0.5, 10, 0)


def test_a_prune_interval_that_would_take_live_workers_for_dead_is_refused() -> None:
    with pytest.raises(ConfigError, match="RESQUE_PRUNE_INTERVAL"):
        worker_settings({"RESQUE_HEARTBEAT_INTERVAL": "5", "RESQUE_PRUNE_INTERVAL": "6"})
    assert worker_settings({"RESQUE_HEARTBEAT_INTERVAL": "5", "RESQUE_PRUNE_INTERVAL": "7"})


# --- the declarations ------------------------------------------------------------------------

SAMPLES = {"seconds": 7.5, "whole number": 9, "on/off": True, "text": "x"}


def test_every_setting_is_declared_with_a_line_of_docs() -> None:
    from pyresque.settings.worker import worker_declarations

    names = [d.name for d in worker_declarations()]
    assert names == [f.name for f in fields(WorkerSettings)]
    for declared in worker_declarations():
        assert declared.doc and "\n" not in declared.doc, declared.name
        assert all(flag.dest == declared.name for flag in declared.flags)


@pytest.mark.parametrize("value_of", [SAMPLES, {**SAMPLES, "on/off": False}])
def test_a_value_written_as_its_variable_reads_back_the_same(value_of: dict[str, object]) -> None:
    """What settings.PYRESQUE hands on as environment variables is what the worker reads."""
    from pyresque.settings.worker import worker_declarations

    for declared in worker_declarations():
        if not declared.env or declared.name == "verbose":
            continue
        value = value_of[declared.kind.label]
        text = declared.env[0].text_for(value)
        env = {} if text is None else {declared.env[0].name: text}
        read = from_env(env).get(declared.name, getattr(WorkerSettings(), declared.name))
        assert read == value, (declared.name, text)


def test_a_flag_of_a_setting_is_checked_by_the_settings_rules() -> None:
    from pyresque.cli.main import build_parser
    from pyresque.settings.options import setting_overrides

    args = build_parser().parse_args(["work", "--interval", "-1", "--in-process", "-vv"])
    overrides = setting_overrides(args, "work")
    assert overrides["fork_per_job"] is False and overrides["verbose"] == 2
    assert overrides["burst"] is None and overrides["queues"] is None
    with pytest.raises(ConfigError, match=r"^interval -1.0: expected a number of seconds"):
        worker_settings({}, overrides)
