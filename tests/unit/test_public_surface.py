"""The public surface: what users import and run. Moving code between packages must not change it.

Each name here is documented (README, docs/) or is a console script; a test fails when one goes
missing, so a reorganisation of the tree keeps every import and command users already have.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest

PUBLIC = {
    "pyresque": (
        "Batch Client ConfigError DirtyExit DontPerform JobTimeout PayloadError PyresqueError "
        "Retry TermException UnknownJobClass __version__ after_fork after_job after_pause "
        "allow_job_module batch before_first_fork before_fork before_job before_pause configure "
        "default_client delayed_count delayed_jobs dequeue enqueue enqueue_at "
        "enqueue_at_with_queue enqueue_in enqueue_in_with_queue enqueue_many enqueue_to job job_failed "
        "queue_empty register remove_delayed shutdown_requested worker_exit"
    ),
    "pyresque.pool": "after_prefork after_spawn child_exit setup siginfo",
    "pyresque.pool.publisher": "PoolPublisher GroupState WorkerState",
    "pyresque.scheduler": (
        "Delayed DelayedJob delayed delayed_count delayed_jobs enqueue_at enqueue_at_with_queue "
        "enqueue_in enqueue_in_with_queue remove_delayed remove_schedule set_schedule"
    ),
    "pyresque.web": "create_app wsgi_app",
    "pyresque.sentinel": "NotReplicated durable",
    "pyresque.worker": "Worker",
    "pyresque.contrib.flask": "init_app",
    "pyresque.contrib.sqlalchemy": "install dispose_all engines",
    "pyresque.contrib.forksafe": "silence_connection silence_fd",
    "pyresque.contrib.django": "",
    "pyresque.contrib.django.conf": "parse_settings pool_from_settings",
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_documented_name_is_importable(module: str) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in PUBLIC[module].split() if not hasattr(loaded, name)]
    assert missing == [], f"{module} lost {missing}"


def test_modules_named_on_command_lines_exist() -> None:
    """Modules users name rather than import: ``--app pyresque.contrib.django.boot`` (importing
    it sets Django up, so it is only found here) and ``python -m pyresque``."""
    for name in ("pyresque.contrib.django.boot", "pyresque.__main__"):
        assert importlib.util.find_spec(name) is not None, name


def test_the_top_level_all_is_exactly_the_public_api() -> None:
    import pyresque

    assert sorted(pyresque.__all__) == sorted(PUBLIC["pyresque"].split())


def test_the_console_scripts() -> None:
    """``pyresque`` and ``resque-pool`` (the Procfile line ``worker: resque-pool``), each
    pointing at a callable that exists."""
    from importlib.metadata import distribution

    scripts = {
        ep.name: ep.value
        for ep in distribution("pyresque").entry_points
        if ep.group == "console_scripts"
    }
    assert sorted(scripts) == ["pyresque", "resque-pool"]
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


def test_pyresque_job_is_the_decorator_whatever_was_imported() -> None:
    """``pyresque.job`` is the decorator; no submodule of that name can replace it."""
    import pyresque
    import pyresque.jobs.job

    assert pyresque.job.__module__ == "pyresque" and callable(pyresque.job)
