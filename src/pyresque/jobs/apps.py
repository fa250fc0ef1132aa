"""Loading the application: the modules that register jobs and hooks, for ``work`` and ``pool``.

Its own module so that both commands (and the pool's workers, with ``--no-preload``) use one way
of finding and importing the app, and nothing below the command line imports ``cli``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence

from pyresque.errors import ConfigError

logger = logging.getLogger(__name__)


def app_modules(given: Sequence[str] | None, env: Mapping[str, str] | None = None) -> list[str]:
    """The modules to import: ``--app`` (repeatable), else ``$PYRESQUE_APP`` (comma separated)."""
    if given:
        return list(given)
    env = os.environ if env is None else env
    return [m.strip() for m in env.get("PYRESQUE_APP", "").split(",") if m.strip()]


def import_apps(modules: Sequence[str]) -> None:
    """Import the application modules that register jobs and hooks (from the current directory
    too, as ``python -m`` would).

    A file path (``./jobs.py``, ``app/jobs.py``) is refused with the module name to use instead;
    a module that is not found is one line; an error raised while the app itself imports (its own
    missing dependency, a syntax error, anything) is logged with its traceback first, because that
    is the line a user needs to fix it.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        hint = _path_hint(name)
        if hint is not None:
            raise ConfigError(f"--app {name}: {hint}")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not _is_part_of(exc.name, name):
                raise _failed(name, exc) from exc
            raise ConfigError(
                f"--app {name}: cannot import it: no module {exc.name!r} on the path "
                f"(the working directory {os.getcwd()} and PYTHONPATH)"
            ) from exc
        except Exception as exc:
            raise _failed(name, exc) from exc


def _path_hint(name: str) -> str | None:
    """Why ``name`` is not a module name, and which one to use, or None when it is one."""
    if not name.strip():
        return "expected a module name, such as myapp.jobs"
    if not (name.endswith(".py") or "/" in name or os.sep in name or name.startswith(".")):
        return None
    module = name.removesuffix(".py").lstrip("./").replace(os.sep, ".").replace("/", ".")
    return (
        f"is a file path, not a module name: use the module name {module!r} "
        f"(--app {module}), run from the directory that holds it or with it on PYTHONPATH"
    )


def _is_part_of(missing: str, name: str) -> bool:
    """True when the missing module is ``name`` itself or one of its parent packages."""
    return name == missing or name.startswith(missing + ".")


def _failed(name: str, exc: BaseException) -> ConfigError:
    """The error for an app that raised while importing, after logging where: the app's own
    frames and the one-line summary (importlib's frames, most of a raw traceback, tell a user
    nothing), or with ``-v`` (DEBUG) the whole traceback."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.error("--app %s: importing it raised %s", name, type(exc).__name__, exc_info=exc)
    else:
        logger.error(
            "--app %s: importing it raised %s (its own frames; -v for the whole traceback):\n%s",
            name,
            type(exc).__name__,
            app_traceback(exc),
        )
    return ConfigError(f"--app {name}: importing it raised {type(exc).__name__}: {exc}")


def app_traceback(exc: BaseException) -> str:
    """``exc``'s traceback without the frames of importlib and of pyresque, then its summary
    (which for a SyntaxError shows the line and where on it)."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(("<frozen ", _OURS, _IMPORTLIB))
    ]
    head = ["Traceback (most recent call last):\n"] if frames else []
    lines = head + traceback.format_list(frames) + traceback.format_exception_only(exc)
    return "".join(lines).rstrip()


_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_IMPORTLIB = os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep


NO_APP_WARNING = (
    "no app loaded (--app MODULE or $PYRESQUE_APP) and no --allow-module given: no job is "
    'registered, so every job taken will fail with "no job named ... is registered"'
)


def nothing_to_run(apps: Sequence[str], allowed: Sequence[str], registered: Sequence[str]) -> bool:
    """True when a worker started like this can run no job at all: no app module to import, no
    module allowed by path, and no job registered some other way (a forgotten ``--app``)."""
    return not apps and not allowed and not registered


def warn_if_nothing_to_run(apps: Sequence[str], allowed: Sequence[str] | None) -> bool:
    """Log :data:`NO_APP_WARNING` at start (``pyresque work``, the pool) when
    :func:`nothing_to_run`; True if it did. Why: otherwise the only sign is one failure per job."""
    from pyresque.jobs.registry import default_registry

    if not nothing_to_run(apps, allowed or (), default_registry().names()):
        return False
    logger.warning("%s", NO_APP_WARNING)
    return True


def app_constants(modules: Sequence[str]) -> Callable[[str], object]:
    """The lookup for ``<%= NAME %>`` in the pool's config: attribute ``NAME`` of the first app
    module that has it (KeyError if none does), for :func:`pyresque.pool.template.render_template`.

    The Python counterpart of the Ruby initializer Heroku's guide relies on
    (``WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", 5))`` in the app). Modules are
    imported on the first lookup only (a config without constants imports nothing early); an
    attribute is read, never called.
    """

    def lookup(name: str) -> object:
        import_apps([m for m in modules if m not in sys.modules])
        for module in modules:
            if hasattr(sys.modules[module], name):
                return getattr(sys.modules[module], name)
        raise KeyError(name)

    return lookup
