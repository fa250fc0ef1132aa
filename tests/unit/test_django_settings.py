"""``settings.PYRESQUE`` parsing and the pool's command line built from it (pure, no Django)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyresque.contrib.django.conf import (
    PyresqueSettings,
    parse_settings,
    pool_argv,
    worker_environment,
)
from pyresque.errors import ConfigError
from pyresque.settings import worker_settings


def test_no_settings_means_the_usual_defaults() -> None:
    assert parse_settings(None) == PyresqueSettings()
    assert pool_argv(parse_settings(None), ["-v"]) == ["-v"]


def test_every_key_is_read_and_a_relative_pool_file_is_found_under_base_dir() -> None:
    settings = parse_settings(
        {
            "REDIS_URL": "redis://cache:6379/1",
            "NAMESPACE": "shop",
            "POOL": "config/resque-pool.yml",
            "ALLOW_MODULES": ["shop.tasks"],
            "JOBS_MODULE": "background",
        },
        Path("/srv/shop"),
    )
    assert settings == PyresqueSettings(
        redis_url="redis://cache:6379/1",
        namespace="shop",
        pool_file="/srv/shop/config/resque-pool.yml",
        allow_modules=("shop.tasks",),
        jobs_module="background",
    )
    assert pool_argv(settings, ["--spawn-delay", "10"]) == [
        "--redis",
        "redis://cache:6379/1",
        "--namespace",
        "shop",
        "--allow-module",
        "shop.tasks",
        "--config",
        "/srv/shop/config/resque-pool.yml",
        "--spawn-delay",
        "10",
    ]


def test_a_pool_mapping_becomes_a_config_loader_unless_the_command_line_names_a_config() -> None:
    settings = parse_settings({"POOL": {"mail": 2}})
    assert settings.pool_mapping == {"mail": 2}
    loader = "pyresque.contrib.django.conf:pool_from_settings"
    assert pool_argv(settings, []) == ["--config-loader", loader]
    assert pool_argv(settings, ["-c", "other.yml"]) == ["-c", "other.yml"]
    assert pool_argv(settings, ["--config=other.yml"]) == ["--config=other.yml"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["REDIS_URL"], "expected a dict"),
        ({"REDIS": "redis://x"}, "unknown key(s) REDIS"),
        ({"REDIS_URL": ""}, "PYRESQUE['REDIS_URL']"),
        ({"NAMESPACE": 3}, "PYRESQUE['NAMESPACE']"),
        ({"POOL": 4}, "PYRESQUE['POOL']"),
        ({"ALLOW_MODULES": "shop.tasks"}, "expected a list of module names"),
        ({"ALLOW_MODULES": ["ok", ""]}, "every entry must be a module name"),
    ],
)
def test_bad_settings_name_the_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw)
    assert message in str(err.value)


def test_worker_settings_are_read_by_their_declared_keys_and_checked() -> None:
    settings = parse_settings({"JOB_TIMEOUT": 30, "FORK_PER_JOB": False, "MAX_DELIVERIES": 5})
    assert settings.worker == (("fork_per_job", False), ("max_deliveries", 5), ("job_timeout", 30))
    for raw, message in (
        ({"JOB_TIMEOUT": -1}, "PYRESQUE['JOB_TIMEOUT'] -1: expected a number of seconds"),
        ({"JOB_TIMEOUT": "30"}, "PYRESQUE['JOB_TIMEOUT'] '30': expected a number of seconds"),
        ({"MAX_DELIVERIES": 2.5}, "PYRESQUE['MAX_DELIVERIES'] 2.5: expected a whole number"),
        ({"WARM_CHILD": "yes"}, "PYRESQUE['WARM_CHILD'] 'yes': expected True or False"),
        ({"QUEUES": "a"}, "unknown key(s) QUEUES"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_settings(raw)
        assert message in str(err.value)


def test_worker_settings_beat_the_environment_and_lose_to_the_command_line() -> None:
    settings = parse_settings({"JOB_TIMEOUT": 30, "TERM_CHILD": False, "INTERVAL": 2})
    env = {"RESQUE_JOB_TIMEOUT": "5", "TERM_CHILD": "", "PATH": "/bin"}
    worker_environment(settings, env)
    assert env == {"RESQUE_JOB_TIMEOUT": "30", "INTERVAL": "2", "PATH": "/bin"}
    got = worker_settings(env, {"interval": 9.0})
    assert (got.job_timeout, got.term_child, got.interval) == (30.0, False, 9.0)
