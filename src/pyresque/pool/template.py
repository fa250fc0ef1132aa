"""Config templating: ``${VAR}``, the common ERB ``ENV`` idioms and ``<%= CONSTANT %>``, as text.

resque-pool reads ``resque-pool.yml`` through ERB, which runs arbitrary Ruby. We keep the few ERB
idioms real configs use and expand them as text, never as code: a config file is data. Every error
names the file and line, because a bad config found on HUP must be explained in the log while the
pool keeps running on its old one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

from pyresque.errors import ConfigError

_TOKEN = re.compile(r"\$\$|\$\{(?P<var>[^}]*)\}|\$\{|<%(?P<erb>.*?)%>|<%", re.DOTALL)
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?")
_ENV_NAME = r"""(?P<q>['"])(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P=q)"""
_LITERAL = r"""(?:(?P<int>-?[0-9]+)|(?P<dq>['"])(?P<str>[^'"\\]*)(?P=dq))"""
_ERB_FORMS = (
    # ENV['X']  and  ENV['X'] || default
    re.compile(rf"ENV\s*\[\s*{_ENV_NAME}\s*\](?:\s*\|\|\s*{_LITERAL})?"),
    # ENV.fetch('X')  and  ENV.fetch('X', default)
    re.compile(rf"ENV\.fetch\s*\(\s*{_ENV_NAME}\s*(?:,\s*{_LITERAL}\s*)?\)"),
    # ENV.fetch('X') { default }
    re.compile(rf"ENV\.fetch\s*\(\s*{_ENV_NAME}\s*\)\s*\{{\s*{_LITERAL}\s*\}}"),
)
# <%= WORKER_CONCURRENCY %>: a bare constant name, as Heroku's resque-pool guide writes it.
_CONSTANT = re.compile(r"[A-Z][A-Za-z0-9_]*")
_UNDERSTOOD = (
    "only ${VAR}, ${VAR:-default}, <%= ENV['X'] %>, <%= ENV['X'] || default %>, "
    "<%= ENV.fetch('X', default) %>, <%= ENV.fetch('X') { default } %> and <%= CONSTANT %> "
    "are understood (templates never run code)"
)
_MISSING: Final = object()

# Where ``<%= NAME %>`` looks first: a mapping, or a callable returning the value or raising
# KeyError (the pool passes the attributes of its app modules, see ``apps.app_constants``).
Constants: TypeAlias = "Mapping[str, object] | Callable[[str], object]"


def render_template(
    text: str, env: Mapping[str, str], source: str, constants: Constants | None = None
) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}``, ``$$``, the common ERB ``ENV`` idioms and
    ``<%= CONSTANT %>``, as text.

    Why text and not code: resque-pool users keep ERB in their YAML to read the environment, and
    that is all we allow. ``${VAR:-default}`` follows the shell (the default also replaces an empty
    value); the ERB forms follow Ruby (``||`` and ``fetch`` fall back only when the variable is
    unset). A bare constant (Heroku's ``<%= WORKER_CONCURRENCY %>``, a Ruby constant set in an
    initializer) is looked up in ``constants`` (the app module's attribute of that name), else in
    the environment: an attribute lookup, never code. Whole-line ``#`` comments are left alone, so a
    commented-out line cannot fail the load. Expanded values are not expanded again.
    """

    def replace(match: re.Match[str]) -> str:
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        if text[line_start:start].lstrip().startswith("#"):
            return match.group(0)
        line = text.count("\n", 0, start) + 1
        where = f"{source}:{line}"
        token = match.group(0)
        if token == "$$":
            return "$"
        if match.group("var") is not None:
            return _expand_variable(match.group("var"), env, where)
        if match.group("erb") is not None:
            return _expand_erb(match.group("erb"), token, env, where, constants)
        closing = "}" if token == "${" else "%>"
        raise ConfigError(f"{where}: {token!r} is never closed by {closing!r}")

    return _TOKEN.sub(replace, text)


def _expand_variable(body: str, env: Mapping[str, str], where: str) -> str:
    match = _VARIABLE.fullmatch(body)
    if match is None:
        raise ConfigError(
            f"{where}: malformed ${{{body}}}: expected ${{NAME}} or ${{NAME:-default}}"
        )
    name, default = match.group("name"), match.group("default")
    value = env.get(name)
    if value:
        return value
    if default is not None:
        return default
    if value is not None:
        return value
    raise ConfigError(
        f"{where}: environment variable {name} is not set and ${{{name}}} has no default "
        f"(write ${{{name}:-default}} to give one)"
    )


def _expand_erb(
    body: str, token: str, env: Mapping[str, str], where: str, constants: Constants | None
) -> str:
    code = body.strip()
    if code.startswith("#"):
        return ""  # an ERB comment renders nothing
    if code.startswith("="):
        expression = code[1:].strip()
        if _CONSTANT.fullmatch(expression):
            return _expand_constant(expression, env, where, constants)
        for form in _ERB_FORMS:
            match = form.fullmatch(expression)
            if match is None:
                continue
            name = match.group("name")
            if name in env:
                return env[name]
            if match.group("int") is not None:
                return match.group("int")
            if match.group("str") is not None:
                return match.group("str")
            raise ConfigError(
                f"{where}: environment variable {name} is not set and {token} has no default"
            )
    shown = token if len(token) <= 60 else token[:57] + "..."
    raise ConfigError(f"{where}: unsupported template {shown}: {_UNDERSTOOD}")


def _expand_constant(
    name: str, env: Mapping[str, str], where: str, constants: Constants | None
) -> str:
    value = _lookup(constants, name)
    if value is _MISSING:
        if name in env:
            return env[name]
        looked = "the app modules (--app) and " if constants is not None else ""
        raise ConfigError(
            f"{where}: <%= {name} %>: no constant {name} in {looked}no environment variable "
            f"{name} is set (define {name} in the app module, or set it in the environment)"
        )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(
            f"{where}: <%= {name} %>: the app's {name} is {type(value).__name__}, "
            "expected a number or a string"
        )
    return str(value)


def _lookup(constants: Constants | None, name: str) -> object:
    if constants is None:
        return _MISSING
    if callable(constants):
        try:
            return constants(name)
        except KeyError:
            return _MISSING
    return constants.get(name, _MISSING)
