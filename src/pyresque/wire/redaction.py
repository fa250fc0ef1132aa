"""Passwords out of sight: Redis URLs redacted for logs and titles, and scrubbed from argv.

Standard library only (and ``setproctitle``, imported when there is something to hide), so that an
entry point can scrub its command line before it imports anything slow such as redis-py.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.I)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.I)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``.

    The user info ends at the last ``@`` of the authority, not the first: a password with an
    unescaped ``@``, ``/``, ``?`` or ``#`` (common in copied credentials) must not leak in part.
    User info without a colon (``redis://s3cret@host``) is hidden whole: redis-rb and most
    clients read it as the password, not as a user name.
    """
    scheme = _SCHEME.match(url)
    if scheme is not None:
        rest = url[scheme.end() :]
        head = rest.split("?", 1)[0].split("#", 1)[0]
        at = head.rfind("@")
        if at < 0:
            at = rest.rfind("@")  # a password with an unescaped '?' or '#'
        user, colon, _password = rest[: max(at, 0)].partition(":")
        if at >= 0 and colon:
            url = f"{scheme.group()}{user}:***@{rest[at + 1 :]}"
        elif at > 0:  # user info without a colon: Redis clients take it as the password
            url = f"{scheme.group()}***@{rest[at + 1 :]}"
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", url)


def scrub_argv(argv: Sequence[str] | None = None) -> bool:
    """Rewrite this process's command line with every Redis password replaced by ``***``.

    Why: ``/proc/<pid>/cmdline`` is readable by every user of the host, and a password given with
    ``--redis`` stays there for the life of the process (and of forked workers, until they set
    their own title). Called first thing by each entry point. True when something was hidden.
    """
    args = _own_cmdline() if argv is None else list(argv)
    scrubbed = redact_argv(args)
    if scrubbed == args:
        return False
    import setproctitle

    setproctitle.setproctitle(" ".join(scrubbed))
    return True


def _own_cmdline() -> list[str]:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return list(sys.argv)
    return [part.decode(errors="surrogateescape") for part in raw.split(b"\0")[:-1]] or list(
        sys.argv
    )


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with every Redis password replaced by ``***`` (for an error report)."""
    return [_redact_arg(arg) for arg in argv]


def _redact_arg(arg: str) -> str:
    if arg.startswith("-") and "=" in arg:
        option, _eq, value = arg.partition("=")
        return f"{option}={redact(value)}"
    return redact(arg)
