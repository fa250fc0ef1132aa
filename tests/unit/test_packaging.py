"""Package metadata that builds without setuptools' deprecation warnings."""

from __future__ import annotations

import re

from tests.helpers import ROOT


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on Python 3.10
    # a TOML table here makes setuptools ≥ 77 warn on every build (three times per install)
    assert re.search(r'^license = "MIT"$', text, re.M), "license must be an SPDX string"
    floor = re.search(r'^requires = \["setuptools>=(\d+)"', text, re.M)
    assert floor is not None and int(floor.group(1)) >= 77  # the first to accept the string form
