"""docs/configuration.md shows the settings as they are declared: its tables are made from the
declarations (``python -m pyresque.settings --markdown``), and this test fails when they differ."""

from __future__ import annotations

import subprocess
import sys

from pyresque.settings.docs import BEGIN, END, markdown
from tests.helpers import ROOT


def test_the_docs_tables_are_the_declarations() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    shown = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert shown == markdown(), (
        "docs/configuration.md differs from the declarations: paste the output of "
        "`python -m pyresque.settings --markdown` between its markers"
    )


def test_the_tables_are_printed_by_the_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pyresque.settings", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout == markdown()


def test_every_flag_and_variable_is_in_the_tables() -> None:
    from pyresque.settings.pool import POOL_OPTIONS
    from pyresque.settings.worker import worker_declarations

    tables = markdown()
    for declared in worker_declarations():
        for flag in declared.flags:
            assert all(f"`{n}" in tables for n in flag.names), flag
        assert all(f"`{v.name}`" in tables for v in declared.env), declared.name
    for option in POOL_OPTIONS:
        assert all(f"`{n}" in tables for n in option.names), option
