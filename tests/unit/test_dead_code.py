"""No dead code in src/: every function, method, class and attribute is used somewhere (by the
package itself, the tests, their harness, the benches or the examples), or is named in the
whitelist with who uses it (a framework, a template, a signal).

vulture finds names that are defined and never used; what it cannot see (Django reading a
class attribute, the master dispatching to ``handle_<signal>``) is listed in
tests/dead_code_whitelist.py.
"""

from __future__ import annotations

from pathlib import Path

import vulture

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_in_src_is_defined_and_never_used() -> None:
    scanner = vulture.Vulture()
    scanner.scavenge(
        [
            str(ROOT / "src"),
            str(ROOT / "tests"),
            str(ROOT / "harness"),
            str(ROOT / "bench"),
            str(ROOT / "examples"),
        ]
    )
    unused = [
        f"{Path(item.filename).relative_to(ROOT)}:{item.first_lineno} {item.typ} {item.name}"
        for item in scanner.get_unused_code(min_confidence=60)
        if Path(item.filename).is_relative_to(ROOT / "src")
    ]
    assert unused == []
