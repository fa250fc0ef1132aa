"""Package metadata that builds without setuptools' deprecation warnings."""

from __future__ import annotations

import re
import tomllib

from tests.helpers import ROOT


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # a TOML table here makes setuptools ≥ 77 warn on every build (three times per install)
    assert project["project"]["license"] == "MIT"
    [setuptools] = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    floor = re.fullmatch(r"setuptools>=(\d+)", setuptools)
    assert floor is not None and int(floor.group(1)) >= 77  # the first to accept the string form
