"""Which engines ``pyresque.contrib.sqlalchemy.install()`` finds: those made before it (a scan) and
after it (a listener), in a fresh interpreter so the process-wide hooks it registers stay there."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("sqlalchemy", reason="SQLAlchemy is needed for its integration")

SCRIPT = """
import pyresque.contrib.sqlalchemy as helper
from pyresque.pool.hooks import default_pool_hooks
from sqlalchemy import create_engine, text

before = create_engine("sqlite://")
helper.install()
after = create_engine("sqlite://")
never_connected = create_engine("sqlite://")
with after.connect() as conn:
    conn.execute(text("select 1"))
found = helper.engines()
print(before in found, after in found, never_connected in found)
helper.install()  # a second call registers nothing twice
print(len(default_pool_hooks()._hooks["after_prefork"]))
"""


def test_engines_made_before_and_after_install_are_found_and_hooks_register_once() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    assert out[0] == "True True False"  # an engine that never connected holds nothing to inherit
    assert out[1] == "1"
