"""Reloading the config file: a reload that finds no usable file never empties a running pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pyresque.pool.source import FileSource, NoUsableConfig


def unusable_ways(path: Path) -> list[Callable[[], object]]:
    return [
        path.unlink,  # a deploy moving it away
        lambda: (path.unlink(), path.mkdir()),  # a directory where the file was
        lambda: path.write_text(""),  # truncated before it is written again
        lambda: path.write_text("# nothing yet\n"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_a_reload_without_a_usable_default_file_keeps_the_old_config(
    tmp_path: Path, case: int
) -> None:
    path = tmp_path / "resque-pool.yml"
    path.write_text("mail: 2\n")
    source = FileSource(None, None, env={}, cwd=tmp_path)
    assert dict(source().groups) == {"mail": 2}
    unusable_ways(path)[case]()
    with pytest.raises(NoUsableConfig):
        source()


def test_an_empty_explicit_file_after_workers_is_not_usable_either(tmp_path: Path) -> None:
    path = tmp_path / "pool.yml"
    path.write_text("mail: 1\n")
    source = FileSource(str(path), None, env={}, cwd=tmp_path)
    source()
    path.write_text("")
    with pytest.raises(NoUsableConfig, match="has no workers"):
        source()


def test_a_pool_that_started_empty_stays_empty_without_complaint(tmp_path: Path) -> None:
    source = FileSource(None, None, env={}, cwd=tmp_path)
    assert source().is_empty
    assert source().is_empty
    (tmp_path / "resque-pool.yml").write_text("mail: 1\n")  # added after startup: found now
    assert dict(source().groups) == {"mail": 1}


def test_a_usable_file_again_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "resque-pool.yml"
    path.write_text("mail: 2\n")
    source = FileSource(None, None, env={}, cwd=tmp_path)
    source()
    path.unlink()
    with pytest.raises(NoUsableConfig):
        source()
    path.write_text("mail: 3\n")
    assert dict(source().groups) == {"mail": 3}
