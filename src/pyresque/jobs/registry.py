"""Which Python callable a payload's ``class`` names.

Resolution is explicit, never "import whatever the payload says": a job is found by a name it was
registered under (the ``@job`` decorator, or :func:`register` for aliases such as a Ruby class name),
or by an import path under a module prefix the operator allowed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyresque.errors import ConfigError, UnknownJobClass
from pyresque.jobs.retry import Retry
from pyresque.processwide import ProcessWide

# the job hooks running a job looks up (Resque::Plugin's prefixes)
HOOK_PREFIXES = ("before_perform", "around_perform", "after_perform", "on_failure")


@dataclass(frozen=True)
class JobSpec:
    """A job: its payload name, the Python function or class behind it, and its default queue."""

    name: str
    target: Callable[..., Any]
    queue: str | None = None
    timeout: float | None = None  # seconds the job may run before it is stopped (None: no limit)
    retry: Retry | None = None  # how a failure is retried (None: the worker's default)

    @functools.cached_property
    def is_class(self) -> bool:
        return inspect.isclass(self.target)

    def performer(self) -> Callable[..., Any]:
        """The callable that runs the job: the function, or the class's ``perform``.

        ``perform`` may be a static or class method (Resque's style) or a plain method, in which
        case the class is instantiated without arguments for each job.
        """
        if not self.is_class:
            return self.target
        static = self._static_perform
        if static is not None:
            return static
        if inspect.getattr_static(self.target, "perform", None) is None:
            raise UnknownJobClass(f"job class {self.name} has no perform method")
        return getattr(self.target(), "perform")  # type: ignore[no-any-return]  # noqa: B009

    @functools.cached_property
    def _static_perform(self) -> Callable[..., Any] | None:
        """The class's ``perform`` when it needs no instance (looked up once: the same object
        every job); None for a plain method or none at all."""
        static = inspect.getattr_static(self.target, "perform", None)
        if isinstance(static, (staticmethod, classmethod)):
            return getattr(self.target, "perform")  # type: ignore[no-any-return]  # noqa: B009
        return None

    def arguments_problem(self, args: Sequence[Any]) -> str | None:
        """Why ``perform(*args)`` cannot be called (its signature does not take them), else None;
        None too when the signature cannot be read (a builtin, a C extension)."""
        signature = self._signature
        if signature is None:
            return None
        try:
            signature.bind(*args)
        except TypeError as exc:
            return f"{self.name}{signature} cannot take {len(args)} argument(s): {exc}"
        return None

    @functools.cached_property
    def _signature(self) -> inspect.Signature | None:
        """The signature a job's arguments are passed to (without ``self`` for a plain method)."""
        perform: Any = self.target
        if self.is_class:
            perform = self._static_perform or inspect.getattr_static(self.target, "perform", None)
            if perform is None:
                return None
        try:
            signature = inspect.signature(perform)
        except (TypeError, ValueError):
            return None
        if self.is_class and self._static_perform is None:  # a plain method: drop ``self``
            params = list(signature.parameters.values())[1:]
            signature = signature.replace(parameters=params)
        return signature

    def hooks(self, prefix: str) -> tuple[Callable[..., Any], ...]:
        """Resque's job hooks: every attribute of the class whose name starts with ``prefix``,
        sorted by name, so plugins can add ``before_perform_audit`` next to ``before_perform``.

        Found once per prefix (a class's attributes are read with ``dir``, ~10 µs a prefix, four
        prefixes a job): a hook added to a class after its first job is not seen."""
        found = self._hooks.get(prefix)
        if found is None:
            found = self._hooks[prefix] = self._find_hooks(prefix)
        return found

    @functools.cached_property
    def _hooks(self) -> dict[str, tuple[Callable[..., Any], ...]]:
        return {}

    def prime(self) -> None:
        """Look up now what running a job looks up (its hooks, its ``perform``): a worker that
        forks does it once, and every child it forks finds it done."""
        for prefix in HOOK_PREFIXES:
            self.hooks(prefix)
        if self.is_class:
            _ = self._static_perform

    def _find_hooks(self, prefix: str) -> tuple[Callable[..., Any], ...]:
        if not self.is_class:
            return ()
        names = sorted(n for n in dir(self.target) if n.startswith(prefix))
        return tuple(getattr(self.target, n) for n in names if callable(getattr(self.target, n)))


def default_name(target: Callable[..., Any]) -> str:
    """``module.qualname``, the name a payload uses for a job registered without ``name=``."""
    return f"{target.__module__}.{target.__qualname__}"


class Registry:
    """Job names -> JobSpecs, plus the import prefixes an operator allowed."""

    def __init__(self) -> None:
        self._by_name: dict[str, JobSpec] = {}
        self._allowed_prefixes: list[str] = []

    def register(
        self,
        name: str,
        target: Callable[..., Any] | str,
        queue: str | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
    ) -> JobSpec:
        """Make ``name`` resolve to ``target`` (a callable, or the name of a registered job)."""
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"job {name}: timeout must be a number of seconds above 0")
        if isinstance(target, str):
            spec = self.resolve(target)
            target_callable = spec.target
            queue = queue or spec.queue
            timeout = timeout or spec.timeout
            retry = retry or spec.retry
        else:
            target_callable = target
            known = self.spec_for(target)
            queue = queue or (known.queue if known else None) or _queue_attribute(target)
            timeout = timeout or (known.timeout if known else None)
            retry = retry or (known.retry if known else None)
        new = JobSpec(name, target_callable, queue, timeout, retry)
        self._by_name[name] = new
        return new

    def allow_module(self, prefix: str) -> None:
        """Allow payloads to name callables by import path under ``prefix`` (``myapp.jobs``)."""
        if (
            not prefix
            or prefix.startswith(".")
            or not all(p.isidentifier() for p in prefix.split("."))
        ):
            raise ConfigError(f"allowed job module {prefix!r} is not a dotted module path")
        if prefix not in self._allowed_prefixes:
            self._allowed_prefixes.append(prefix)

    def allow_modules(self, prefixes: Iterable[str]) -> None:
        for prefix in prefixes:
            self.allow_module(prefix)

    def spec_for(self, target: Callable[..., Any]) -> JobSpec | None:
        """The spec registered for a callable, preferring its default name."""
        for spec in self._by_name.values():
            if spec.target is target:
                return spec
        return None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def resolve(self, name: str) -> JobSpec:
        """The job a payload names, or UnknownJobClass saying why it was not found."""
        spec = self._by_name.get(name)
        if spec is not None:
            return spec
        if self._allowed(name):
            target = _import_path(name, self._allowed_prefixes)
            if target is not None:
                return self.register(name, target)
        raise UnknownJobClass(
            f"no job named {name!r} is registered"
            + (
                f" or importable under the allowed modules {', '.join(self._allowed_prefixes)}"
                if self._allowed_prefixes
                else " (and no job modules are allowed for import)"
            )
        )

    def _allowed(self, name: str) -> bool:
        return _under(name, self._allowed_prefixes)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name.startswith(prefix + ".") for prefix in prefixes)


def _queue_attribute(target: Callable[..., Any]) -> str | None:
    queue = getattr(target, "queue", None)
    return queue if isinstance(queue, str) else None


def _import_path(path: str, allowed: Sequence[str]) -> Callable[..., Any] | None:
    """Import ``a.b.C.d`` as the longest importable module prefix plus attribute lookups.

    Only what is defined under an allowed module counts: the attribute walk never enters another
    module and never reads a private name, so ``myapp.jobs.os.system`` (``os`` imported by
    ``myapp.jobs``) does not resolve to ``os.system``. A module that exists but fails to import
    raises UnknownJobClass (a failure record), rather than an arbitrary error that would stop the
    worker.
    """
    parts = path.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    base = min((len(a.split(".")) for a in allowed if path.startswith(a + ".")), default=len(parts))
    if any(p.startswith("_") for p in parts[base:]):
        return None  # private and dunder names below the allowed module are not jobs
    for split in range(len(parts) - 1, base - 1, -1):  # never above the allowed module
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                continue  # no such module: try a shorter prefix, the rest may be attributes
            raise UnknownJobClass(f"job module {module_name} failed to import: {exc}") from exc
        except Exception as exc:
            raise UnknownJobClass(
                f"job module {module_name} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        for attr in parts[split:]:
            obj = getattr(obj, attr, None)
            if obj is None or (inspect.ismodule(obj) and not _under(obj.__name__ + ".", allowed)):
                return None
        owner = getattr(obj, "__module__", None)
        if not callable(obj) or not isinstance(owner, str) or not _under(owner + ".", allowed):
            return None
        return obj  # type: ignore[no-any-return]
    return None


DEFAULT_REGISTRY: Final = ProcessWide(Registry, "the job registry @pyresque.job writes to")


def default_registry() -> Registry:
    return DEFAULT_REGISTRY.get()
