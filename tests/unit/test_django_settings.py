"""``settings.PYRESQUE`` parsing and the pool's command line built from it (pure, no Django)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyresque.contrib.django.conf import PyresqueSettings, parse_settings, pool_argv
from pyresque.errors import ConfigError


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
