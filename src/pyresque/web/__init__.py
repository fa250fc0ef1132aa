"""The pyresque dashboard: ``pyresque web``, or mounted in another app with one line.

ASGI (Starlette, FastAPI)::

    app.mount("/resque", pyresque.web.create_app())

WSGI (Flask, Django)::

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/resque": pyresque.web.wsgi_app()})

Needs the ``web`` extra (``pip install 'pyresque[web]'``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "wsgi_app"]


def create_app(redis_url: str | None = None, namespace: str | None = None, **options: Any) -> Any:
    """The dashboard as an ASGI app (see :func:`pyresque.web.app.create_app`)."""
    from pyresque.web.app import create_app as build

    return build(redis_url, namespace, **options)


def wsgi_app(redis_url: str | None = None, namespace: str | None = None, **options: Any) -> Any:
    """The dashboard as a WSGI app (see :func:`pyresque.web.app.wsgi_app`)."""
    from pyresque.web.app import wsgi_app as build

    return build(redis_url, namespace, **options)
