"""Small modules with one job: no module in src/ over 450 lines, no function over 60 (the
table-tested ``plan`` of pool/plan.py aside, a decision read as one table of cases)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "pyresque"
MODULE_LINES = 450
FUNCTION_LINES = 60
EXEMPT = {"pool/plan.py:plan"}


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := p.read_text().count("\n")) > MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path.relative_to(SRC)}:{node.name}"
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > FUNCTION_LINES and name not in EXEMPT:
                    long[name] = lines
    assert long == {}
