"""An --app that raises while it imports: its own frames and a one-line summary, not importlib's
(17-20 lines, mostly <frozen importlib._bootstrap>, before issue 25); -v gives the whole of it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyresque.errors import ConfigError
from pyresque.jobs.apps import import_apps


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def failing_import(app_dir: Path, caplog: pytest.LogCaptureFixture, module: str) -> str:
    with caplog.at_level(logging.INFO, logger="pyresque.jobs.apps"), pytest.raises(ConfigError):
        import_apps([module])
    return caplog.text


def test_the_apps_own_frames_and_one_summary(
    app_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (app_dir / "brokenpkg").mkdir()
    (app_dir / "brokenpkg" / "__init__.py").write_text("from brokenpkg import settings\n")
    (app_dir / "brokenpkg" / "settings.py").write_text("import json\n\nVALUE = int('x')\n")
    text = failing_import(app_dir, caplog, "brokenpkg")
    assert "importlib" not in text and "<frozen" not in text, text
    assert 'brokenpkg/__init__.py", line 1' in text and 'settings.py", line 3' in text, text
    assert "ValueError: invalid literal for int() with base 10: 'x'" in text
    assert "-v for the whole traceback" in text
    assert len(text.splitlines()) <= 10, text


def test_a_syntax_error_shows_where(app_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (app_dir / "badsyntax.py").write_text("def f(:\n    pass\n")
    text = failing_import(app_dir, caplog, "badsyntax")
    assert "importlib" not in text and 'badsyntax.py", line 1' in text, text
    assert "SyntaxError" in text


def test_verbose_gives_the_whole_traceback(app_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (app_dir / "brokenverbose.py").write_text("raise RuntimeError('boom')\n")
    with caplog.at_level(logging.DEBUG, logger="pyresque.jobs.apps"), pytest.raises(ConfigError):
        import_apps(["brokenverbose"])
    assert "importlib" in caplog.text and "RuntimeError: boom" in caplog.text
