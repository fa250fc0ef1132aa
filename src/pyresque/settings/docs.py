"""The tables of docs/configuration.md, made from the declarations (a test holds them equal).

``python -m pyresque.settings --markdown`` prints them; paste the output between the markers.
"""

from __future__ import annotations

from pyresque.settings.declare import EVERY_COMMAND, Flag, Setting, declarations
from pyresque.settings.pool import POOL_OPTIONS
from pyresque.settings.worker import WorkerSettings

BEGIN = "<!-- settings tables: made by `python -m pyresque.settings --markdown` -->"
END = "<!-- end of the settings tables -->"


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None or value == "":
        return "—"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _flags(flags: tuple[Flag, ...]) -> str:
    shown = []
    for flag in flags:
        names = _code([f"{flag.names[0]} {flag.metavar}" if flag.metavar else flag.names[0]])
        names += "".join(f", `{n}`" for n in flag.names[1:])
        where = "every command" if EVERY_COMMAND in flag.commands else ", ".join(flag.commands)
        shown.append(f"{names} ({where})")
    return "; ".join(shown)


def _worker_row(declared: Setting, default: object) -> str:
    cells = (
        f"`{declared.name}`",
        _flags(declared.flags),
        _code([v.name for v in declared.env]),
        f"`{declared.django}`" if declared.django else "",
        declared.shown or _default(default),
        declared.doc,
    )
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _pool_row(flag: Flag) -> str:
    names = _code([f"{flag.names[0]} {flag.metavar}" if flag.metavar else flag.names[0]])
    names += "".join(f", `{n}`" for n in flag.names[1:])
    cells = (names, _code(list(flag.env)), flag.shown or _default(flag.default), flag.help)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def markdown() -> str:
    """Both tables, between the markers, as docs/configuration.md holds them."""
    worker = [
        "### Worker settings",
        "",
        "For `pyresque work` and every worker of a pool. The connection (`redis_url`, "
        "`namespace`) is every command's.",
        "",
        "| setting | command line | environment | `settings.PYRESQUE` | default | meaning |",
        "|---|---|---|---|---|---|",
        *(
            _worker_row(d, default)
            for d, default in declarations(WorkerSettings)
            if d.flags or d.env or d.django
        ),
    ]
    pool = [
        "### Pool options",
        "",
        "For `resque-pool` (`pyresque pool`, `manage.py resque_pool`) alone; an environment "
        "variable is read where the option is used, when the option is not given.",
        "",
        "| option | environment | default | meaning |",
        "|---|---|---|---|",
        *(_pool_row(flag) for flag in POOL_OPTIONS),
    ]
    return "\n".join([BEGIN, "", *worker, "", *pool, "", END]) + "\n"
