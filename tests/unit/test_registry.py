"""Which callable a payload's class names: registered names, aliases, allowed import paths only."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pyresque
from pyresque.errors import ConfigError, UnknownJobClass
from pyresque.jobs.registry import DEFAULT_REGISTRY, JobSpec, Registry, default_name


def send_welcome(user_id: int) -> None:
    pass


class Archive:
    queue = "files"

    @staticmethod
    def perform(repo_id: int, branch: str) -> None:
        pass


class Outer:
    class Inner:
        @staticmethod
        def perform() -> None:
            pass


@pytest.fixture
def fresh_default_registry() -> Iterator[Registry]:
    """The registry behind @pyresque.job, replaced for the test so nothing leaks to others."""
    registry = Registry()
    previous = DEFAULT_REGISTRY.replace(registry)
    yield registry
    DEFAULT_REGISTRY.replace(previous)


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write a uniquely named package on sys.path; its modules are forgotten after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(prefix: str = "pkg", **modules: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        root = tmp_path / name
        root.mkdir()
        (root / "__init__.py").write_text("")
        for module, source in modules.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield make
    for module in list(sys.modules):
        if any(module == n or module.startswith(n + ".") for n in created):
            del sys.modules[module]


TASKS = """
    import json
    import os
    from os import path

    queue = "not-a-job"

    def send(x):
        return ("send", x)

    def _private(x):
        return x

    class Archive:
        queue = "files"

        @staticmethod
        def perform(*args):
            return args
"""


# --- by name ---------------------------------------------------------------------------------


def test_register_by_name_resolves_to_the_callable() -> None:
    registry = Registry()
    spec = registry.register("Welcome", send_welcome, queue="mail")
    assert registry.resolve("Welcome") is spec
    assert spec == JobSpec("Welcome", send_welcome, "mail")
    assert registry.names() == ["Welcome"]


def test_queue_defaults_to_the_targets_queue_attribute() -> None:
    registry = Registry()
    assert registry.register("Archive", Archive).queue == "files"
    assert registry.register("Archive2", Archive, queue="other").queue == "other"
    assert registry.register("Welcome", send_welcome).queue is None


def test_alias_by_name_maps_a_ruby_class_name_to_the_same_job() -> None:
    registry = Registry()
    registry.register("Welcome", send_welcome, queue="mail")
    alias = registry.register("Mailers::Welcome", "Welcome")
    assert alias == JobSpec("Mailers::Welcome", send_welcome, "mail")
    assert registry.resolve("Mailers::Welcome").target is send_welcome


def test_alias_by_callable_inherits_the_registered_queue() -> None:
    registry = Registry()
    registry.register("Welcome", send_welcome, queue="mail")
    assert registry.register("Mailers::Welcome", send_welcome).queue == "mail"
    assert registry.spec_for(send_welcome) == JobSpec("Welcome", send_welcome, "mail")


def test_alias_of_an_unknown_name_is_unknown() -> None:
    with pytest.raises(UnknownJobClass, match="no job named 'Nope'"):
        Registry().register("Mailers::Welcome", "Nope")


def test_default_name_is_module_and_qualname() -> None:
    assert default_name(send_welcome) == "tests.unit.test_registry.send_welcome"
    assert default_name(Outer.Inner) == "tests.unit.test_registry.Outer.Inner"


def test_job_decorator_registers_under_the_default_name(fresh_default_registry: Registry) -> None:
    @pyresque.job(queue="mail")
    def greet(user_id: int) -> None:
        pass

    @pyresque.job(queue="files", name="Archive")
    class ArchiveJob:
        @staticmethod
        def perform(repo_id: int, branch: str) -> None:
            pass

    pyresque.register("Mailers::Welcome", greet)
    name = "tests.unit.test_registry.test_job_decorator_registers_under_the_default_name.<locals>"
    assert fresh_default_registry.names() == ["Archive", "Mailers::Welcome", f"{name}.greet"]
    assert fresh_default_registry.resolve(f"{name}.greet") == JobSpec(
        f"{name}.greet", greet, "mail"
    )
    assert fresh_default_registry.resolve("Archive").target is ArchiveJob
    assert fresh_default_registry.resolve("Mailers::Welcome").queue == "mail"


def test_unknown_job_class_says_nothing_is_allowed_for_import() -> None:
    with pytest.raises(UnknownJobClass) as info:
        Registry().resolve("Mailers::Welcome")
    assert str(info.value) == (
        "no job named 'Mailers::Welcome' is registered (and no job modules are allowed for import)"
    )


def test_unknown_job_class_names_the_allowed_modules() -> None:
    registry = Registry()
    registry.allow_modules(["myapp.jobs", "other"])
    with pytest.raises(UnknownJobClass) as info:
        registry.resolve("Nope")
    assert str(info.value) == (
        "no job named 'Nope' is registered or importable under the allowed modules "
        "myapp.jobs, other"
    )


@pytest.mark.parametrize("prefix", ["", ".jobs", "myapp..jobs", "my-app", "jobs.", "1jobs"])
def test_allow_module_rejects_what_is_not_a_module_path(prefix: str) -> None:
    with pytest.raises(ConfigError, match="is not a dotted module path"):
        Registry().allow_module(prefix)


def test_a_class_without_perform_cannot_run() -> None:
    class NoPerform:
        pass

    with pytest.raises(UnknownJobClass, match="job class NoPerform has no perform method"):
        JobSpec("NoPerform", NoPerform).performer()


# --- by import path --------------------------------------------------------------------------


def test_allowed_module_resolves_functions_and_classes(make_package: Callable[..., str]) -> None:
    pkg = make_package(tasks=TASKS)
    registry = Registry()
    registry.allow_module(f"{pkg}.tasks")
    send = registry.resolve(f"{pkg}.tasks.send")
    assert send.target(1) == ("send", 1)
    assert send.queue is None
    archive = registry.resolve(f"{pkg}.tasks.Archive")
    assert archive.is_class
    assert archive.queue == "files"
    assert archive.performer()(1, 2) == (1, 2)
    assert registry.names() == [f"{pkg}.tasks.Archive", f"{pkg}.tasks.send"]
    assert registry.resolve(f"{pkg}.tasks.send") is send  # cached


def test_allowing_a_package_allows_its_submodules(make_package: Callable[..., str]) -> None:
    pkg = make_package(tasks=TASKS)
    registry = Registry()
    registry.allow_module(pkg)
    assert registry.resolve(f"{pkg}.tasks.send").target(2) == ("send", 2)


@pytest.mark.parametrize(
    "attribute",
    [
        "os.system",  # a module the job module imported: never walked into
        "path.join",
        "json.loads",
        "_private",  # private names are not jobs
        "__loader__.load_module",
        "send.__globals__",
        "Archive.__subclasses__",
        "queue",  # not callable
        "missing",
        "tasks",
        "os..system",
    ],
)
def test_only_callables_defined_under_the_allowed_module_resolve(
    make_package: Callable[..., str], attribute: str
) -> None:
    pkg = make_package(tasks=TASKS)
    registry = Registry()
    registry.allow_module(f"{pkg}.tasks")
    with pytest.raises(UnknownJobClass, match="is registered or importable under"):
        registry.resolve(f"{pkg}.tasks.{attribute}")


def test_a_non_allowed_module_is_never_imported(
    make_package: Callable[..., str], tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    side_effect = f"open({str(marker)!r}, 'w').close()\ndef run(*args):\n    pass\n"
    pkg = make_package(evil=side_effect)
    lookalike = make_package(prefix=pkg)  # named "<pkg>_<hex>": shares pkg's text as a prefix
    registry = Registry()
    for allowed in ([], [lookalike], [f"{pkg}.evi"], [f"{pkg}.evil.run"]):
        registry.allow_modules(allowed)
        with pytest.raises(UnknownJobClass):
            registry.resolve(f"{pkg}.evil.run")
        assert f"{pkg}.evil" not in sys.modules
        assert pkg not in sys.modules
        assert not marker.exists()
    # The control: once allowed, the same payload imports the module (so the marker works).
    registry.allow_module(f"{pkg}.evil")
    registry.resolve(f"{pkg}.evil.run")
    assert marker.exists()


def test_a_lookalike_prefix_is_not_allowed(make_package: Callable[..., str]) -> None:
    pkg = make_package(tasks=TASKS)
    registry = Registry()
    registry.allow_module(pkg[:-1])  # "pkg_0123456789" allowed, "pkg_012345678" is not it
    with pytest.raises(UnknownJobClass):
        registry.resolve(f"{pkg}.tasks.send")
    assert pkg not in sys.modules


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("raise RuntimeError('config missing')\n", "RuntimeError: config missing"),
        ("import pyresque_no_such_dependency_xyz\n", "pyresque_no_such_dependency_xyz"),
        ("def broken(:\n", "SyntaxError"),
    ],
)
def test_a_job_module_that_fails_to_import_is_an_unknown_class_saying_why(
    make_package: Callable[..., str], source: str, fragment: str
) -> None:
    pkg = make_package(broken=source)
    registry = Registry()
    registry.allow_module(pkg)
    with pytest.raises(UnknownJobClass, match=f"job module {pkg}.broken failed to import") as info:
        registry.resolve(f"{pkg}.broken.run")
    assert fragment in str(info.value)


def test_registered_names_win_over_import_paths(make_package: Callable[..., str]) -> None:
    pkg = make_package(tasks=TASKS)
    registry = Registry()
    registry.allow_module(pkg)
    registry.register(f"{pkg}.tasks.send", send_welcome)
    assert registry.resolve(f"{pkg}.tasks.send").target is send_welcome
    assert f"{pkg}.tasks" not in sys.modules


def _performer_result(spec: JobSpec, *args: Any) -> Any:
    return spec.performer()(*args)


def test_performer_of_a_function_is_the_function() -> None:
    assert JobSpec("W", send_welcome).performer() is send_welcome
    assert _performer_result(JobSpec("A", Archive), 1, "main") is None
