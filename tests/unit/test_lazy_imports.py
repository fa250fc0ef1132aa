"""What a worker imports: modules only some commands need stay out of long-running processes.

Each check runs in a fresh interpreter (``sys.modules`` of this test process already holds
everything), so a module-level import added back anywhere on the path shows here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# needed only by cron schedules, YAML schedules and configs, the dashboard and the failures command
OPTIONAL = ("croniter", "dateutil", "pyresque.scheduler", "pyresque.web", "pyresque.cli.failures")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in modules)


@pytest.mark.parametrize(
    "code",
    [
        "import pyresque",
        "import pyresque.worker.loop",
        "from pyresque.cli.main import build_parser\n"
        "build_parser().parse_args(['work', '-q', 'a'])\n"
        "import pyresque.cli.work",
        "import pyresque.pool.spawn",
    ],
)
def test_a_worker_does_not_import_what_only_other_commands_need(code: str) -> None:
    modules = imported_after(code)
    assert [m for m in OPTIONAL if loaded(modules, m)] == []
    assert not loaded(modules, "yaml") or code.startswith("import pyresque.pool")
    assert not loaded(modules, "http.server")


def test_the_scheduler_api_is_still_importable_from_the_package() -> None:
    modules = imported_after(
        "from pyresque import enqueue_in, enqueue_at, delayed_count, remove_delayed\n"
        "import pyresque\n"
        "assert pyresque.enqueue_in is enqueue_in and callable(pyresque.delayed_jobs)"
    )
    assert loaded(modules, "pyresque.scheduler")
    assert not loaded(modules, "croniter")  # only a cron entry needs it


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import pyresque

    with pytest.raises(AttributeError, match="no_such_name"):
        pyresque.no_such_name  # noqa: B018


def test_the_full_parser_still_has_every_command() -> None:
    from pyresque.cli.main import build_parser

    out = build_parser().format_help()
    for command in ("work", "pool", "enqueue", "status", "web", "failures", "scheduler"):
        assert command in out


def test_help_imports_no_command() -> None:
    """``pyresque --help`` names every command from the registry alone."""
    modules = imported_after(
        "from pyresque.cli.main import build_parser\nbuild_parser().format_help()"
    )
    commands = ("work", "pool", "enqueue", "status", "failures", "scheduler", "schedule")
    assert [c for c in commands if loaded(modules, f"pyresque.cli.{c}")] == []
    assert not loaded(modules, "pyresque.web") and not loaded(modules, "pyresque.worker.loop")


def test_a_chosen_command_imports_its_own_module_only() -> None:
    modules = imported_after(
        "from pyresque.cli.main import build_parser\n"
        "build_parser().parse_args(['status', '--json'])"
    )
    assert loaded(modules, "pyresque.cli.status")
    assert not loaded(modules, "pyresque.cli.work") and not loaded(modules, "pyresque.cli.pool")


def test_a_cron_entry_still_computes_its_next_run() -> None:
    from pyresque.scheduler.recurring import Cron

    assert Cron.parse("0 * * * * UTC").next_after(0.0) == 3600.0
