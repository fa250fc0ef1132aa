"""``<%= CONSTANT %>`` in the pool's config: an app module's attribute, else the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyresque.errors import ConfigError
from pyresque.jobs.apps import app_constants
from pyresque.pool.config import load_config, parse_config
from pyresque.pool.template import render_template

SOURCE = "config/resque-pool.yml"
HEROKU = "mail: 1\n'*': <%= WORKER_CONCURRENCY %>\n"


def groups(text: str, constants: object, **env: str) -> dict[str, object]:
    config = parse_config(
        text,
        source=SOURCE,
        environment=None,
        env=env,
        constants=constants,  # type: ignore[arg-type]
    )
    return dict(config.groups)


def error(text: str, constants: object, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        groups(text, constants, **env)
    return str(info.value)


def test_herokus_constant_comes_from_the_app() -> None:
    assert groups(HEROKU, {"WORKER_CONCURRENCY": 4}) == {"mail": 1, "*": 4}
    assert groups(HEROKU, {"WORKER_CONCURRENCY": 4}, WORKER_CONCURRENCY="9")["*"] == 4
    assert groups(HEROKU, {"WORKER_CONCURRENCY": "3"})["*"] == 3


def test_a_callable_lookup_and_keyerror_for_missing() -> None:
    def lookup(name: str) -> object:
        if name == "WORKER_CONCURRENCY":
            return 6
        raise KeyError(name)

    assert groups(HEROKU, lookup)["*"] == 6
    assert groups("a: <%= OTHER %>", lookup, OTHER="2") == {"a": 2}


def test_without_the_constant_the_environment_variable_of_that_name() -> None:
    assert groups(HEROKU, {}, WORKER_CONCURRENCY="5")["*"] == 5
    assert groups(HEROKU, None, WORKER_CONCURRENCY="7")["*"] == 7


def test_neither_is_a_clear_error_naming_file_and_line() -> None:
    message = error(HEROKU, {})
    assert message.startswith(f"{SOURCE}:2: <%= WORKER_CONCURRENCY %>: no constant")
    assert "app modules (--app)" in message and "environment variable" in message
    assert "app modules" not in error(HEROKU, None)


def test_a_constant_that_is_not_a_number_or_string_is_refused() -> None:
    for value in ([1, 2], print, True, None):
        message = error(HEROKU, {"WORKER_CONCURRENCY": value})
        assert f"{SOURCE}:2" in message and "expected a number or a string" in message


def test_only_a_bare_name_is_looked_up_never_code() -> None:
    called = []

    def lookup(name: str) -> object:
        called.append(name)
        return 1

    for text in ("a: <%= Foo.bar %>", "a: <%= WORKERS * 2 %>", "a: <%= lowercase %>"):
        with pytest.raises(ConfigError, match="unsupported template"):
            render_template(text, {}, SOURCE, lookup)
    assert called == []


def test_app_constants_reads_attributes_of_the_app_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "constapp_one.py").write_text("import os\nWORKER_CONCURRENCY = 3\n")
    (tmp_path / "constapp_two.py").write_text("WORKER_CONCURRENCY = 8\nQUEUE_WORKERS = '2'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    lookup = app_constants(["constapp_one", "constapp_two"])
    assert lookup("WORKER_CONCURRENCY") == 3  # the first module that has it
    assert lookup("QUEUE_WORKERS") == "2"
    with pytest.raises(KeyError):
        lookup("MISSING")
    config = tmp_path / "resque-pool.yml"
    config.write_text(HEROKU + "b: <%= QUEUE_WORKERS %>\n")
    loaded = load_config(config, None, {}, constants=lookup)
    assert dict(loaded.groups) == {"mail": 1, "*": 3, "b": 2}
