"""The import graph of src/pyresque: no circle, nothing below the command lines imports them, and
no module imports from a layer above its own (docs/design.md, "The map of modules")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "pyresque"

LAYERS: dict[str, int] = {}
for rank, names in enumerate(
    [
        "_version errors processwide wire",
        "store",
        "settings logs yamlfile jobs",
        "worker.hooks worker.queues worker.signals worker.procname worker.forking worker.deadline",
        "worker.escalation worker.progress pool.plan",
        "worker.child worker.runner worker.forked worker.inprocess worker.watchdog",
        "worker",  # the rest of pyresque.worker: outages, heartbeats, recovery, settling, the loop
        "pool",  # the rest of pyresque.pool
        "scheduler web",
        "cli contrib sentinel __init__ __main__",
    ]
):
    for name in names.split():
        LAYERS[name] = rank


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    """The layer of a module: its own entry, else its package's (``pool.x`` -> ``pool``)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return LAYERS[".".join(parts[:end])]
    raise AssertionError(f"pyresque.{module} is in no layer: add it to LAYERS and docs/design.md")


def imports(path: Path) -> set[str]:
    """The pyresque modules a file imports (at module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pyresque"):
            base = node.module.removeprefix("pyresque").lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}".lstrip(".")
                found.add(
                    candidate
                    if (SRC / (candidate.replace(".", "/") + ".py")).exists()
                    or (SRC / candidate.replace(".", "/")).is_dir()
                    else base or "__init__"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pyresque."):
                    found.add(alias.name.removeprefix("pyresque."))
    return {m for m in found if m}


GRAPH = {module_name(p): imports(p) for p in SRC.rglob("*.py")}


def test_nothing_imports_cli() -> None:
    """The command lines sit on top: only they, the integrations that wrap them (Django's
    management commands) and ``python -m pyresque`` import them."""
    offenders = [
        m
        for m, deps in GRAPH.items()
        if any(d == "cli" or d.startswith("cli.") for d in deps)
        and not (m in ("__main__", "cli") or m.startswith(("cli.", "contrib.")))
    ]
    assert offenders == []


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_from_a_higher_layer(module: str) -> None:
    mine = layer(module)
    higher = sorted(d for d in GRAPH[module] if d in GRAPH and layer(d) > mine)
    assert higher == [], f"pyresque.{module} (layer {mine}) imports {higher}"


def test_no_import_circle() -> None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting[visiting.index(module) :], module])
        visiting.append(module)
        for dep in GRAPH.get(module, ()):
            if dep in GRAPH and dep != module:
                visit(dep)
        visiting.pop()
        done.add(module)

    for module in GRAPH:
        visit(module)
