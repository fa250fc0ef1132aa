"""Passwords out of sight: Redis URLs redacted for logs and titles, and scrubbed from argv.

Standard library only (and ``setproctitle``, imported when there is something to hide), so that an
entry point can scrub its command line before it imports anything slow such as redis-py.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

# Where the authority starts: after the first "://" (whatever precedes it, even a scheme with a
# space or a leading blank, as a copied REDIS_URL has), else after a "scheme:/" with too few
# slashes, else at the start (user info with no scheme at all).
_AUTHORITY_START = re.compile(r"^(?:.*?://|[^:/@]*:/+)?", re.S)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)(?P<value>[^&#]*)", re.I)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, however malformed the URL is.

    The user info ends at the last ``@`` of the authority, not the first: a password with an
    unescaped ``@``, ``/``, ``?`` or ``#`` (common in copied credentials) must not leak in part.
    User info without a colon (``redis://s3cret@host``), or with an empty password
    (``s3cret:@host``), is hidden whole: redis-rb and most clients read it as the password, not as
    a user name, and a secret typed there is still a secret. A URL that is not well formed (a space
    in or before the scheme, one slash, no scheme) is redacted too: it is exactly the URL an
    error message quotes.
    """
    start, userinfo, after = _split_userinfo(url)
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        url = f"{start}{user}:***@{after}" if colon and password else f"{start}***@{after}"
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", url)


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with every password of ``url`` replaced by ``***``.

    Why: a parser's message may quote a part of the URL (a port, a path, a query value), and a
    password typed in the wrong place is still a password.
    """
    for secret in sorted(passwords_in(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def passwords_in(url: str) -> set[str]:
    """The passwords ``url`` holds, in its user info or as ``?password=``; the empty one left out."""
    found = {m["value"] for m in _PASSWORD_PARAM.finditer(url)}
    _start, userinfo, _after = _split_userinfo(url)
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        found.add(password if colon and password else user)
    return {secret for secret in found if secret}


def _split_userinfo(url: str) -> tuple[str, str | None, str]:
    """``(before, user info, after)`` of ``url``; user info None when there is no ``@`` in it."""
    head_start = _AUTHORITY_START.match(url)
    begin = head_start.end() if head_start is not None else 0
    rest = url[begin:]
    head = rest.split("?", 1)[0].split("#", 1)[0]
    at = head.rfind("@")
    if at <= 0:  # a password with an unescaped '?' or '#' (``@?pw@``: not an empty user info)
        at = rest.rfind("@")
    if at <= 0:
        return url, None, ""
    return url[:begin], rest[:at], rest[at + 1 :]


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
