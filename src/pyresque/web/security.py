"""HTTP basic auth and CSRF tokens for the dashboard.

Every change is a POST carrying a token that must equal the one in the visitor's cookie (a
"double submit"): another site can make a browser send the cookie, but cannot read it to put it in
the form. resque-web's GET links for actions are deliberately not copied.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

CSRF_COOKIE = "pyresque_csrf"
CSRF_FIELD = "csrf"
AUTH_ENV = "PYRESQUE_WEB_AUTH"


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); None for empty; ValueError when malformed."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth wants user:password")
    return user, password


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_ok(cookie: str | None, submitted: str | None) -> bool:
    return bool(cookie and submitted) and hmac.compare_digest(str(cookie), str(submitted))


class BasicAuth:
    """ASGI middleware: HTTP basic auth on every request, compared in constant time."""

    def __init__(self, app: ASGIApp, user: str, password: str, realm: str = "pyresque") -> None:
        self.app = app
        self._expected = f"{user}:{password}".encode()
        self._realm = realm

    def _allowed(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:6].lower() == b"basic ":
                try:
                    given = base64.b64decode(value[6:].strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                return hmac.compare_digest(given, self._expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", f'Basic realm="{self._realm}"'.encode()),
                    (b"content-type", b"text/plain; charset=utf-8"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"authentication required\n"})
