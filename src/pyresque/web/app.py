"""The dashboard as an ASGI application: pages, actions, JSON for live updates, /metrics.

Handlers are thin: they read typed rows from :mod:`pyresque.web.data` and hand them to a template,
which escapes every value (Jinja2 autoescape), so a job argument holding ``<script>`` renders as
text. Every change is a POST with a CSRF token; ``read_only`` hides and refuses all of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pyresque._version import __version__
from pyresque.store.connection import RETRYABLE_ERRORS, redact
from pyresque.store.operations import Store
from pyresque.web import actions, data, jobstats
from pyresque.web.security import CSRF_COOKIE, CSRF_FIELD, new_token, token_ok
from pyresque.wire.keys import SAMPLES_TTL

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PER_PAGE = 50
# scripts only from our own files (a second wall behind escaping); no framing (clickjacking)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
KEY_LIMIT = 500


@dataclass(frozen=True)
class WebConfig:
    """What one dashboard instance shows and allows."""

    redis_label: str  # the Redis URL with any password redacted
    namespace: str
    read_only: bool = False


def _int(request: Request, name: str, default: int, low: int = 0, high: int = 10**9) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        value = default
    return min(max(value, low), high)


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


class Dashboard:
    """Routes bound to one store; :meth:`app` builds the Starlette application."""

    def __init__(self, store: Store, config: WebConfig) -> None:
        self.store = store
        self.config = config
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(("html",), default=True),
        )
        self.env.filters.update(bytes=_fmt_bytes, age=_fmt_age, ms=_fmt_ms, urlq=quote)
        from pyresque.web.metrics import metrics_registry

        self.registry = metrics_registry(store)
        self.minutes = data.MinuteCache()
        # the overview records a sample for the charts, unless Redis refused one (a read-only user)
        self.samples_kept = True

    # --- rendering ------------------------------------------------------------------------------

    def render(self, request: Request, name: str, **context: Any) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or new_token()
        base = request.scope.get("root_path", "").rstrip("/")
        html = self.env.get_template(name).render(
            base=base,
            csrf=token,
            csrf_field=CSRF_FIELD,
            read_only=self.config.read_only,
            redis=self.config.redis_label,
            namespace=self.config.namespace,
            version=__version__,
            paused=self.store.paused_all(),
            path=request.url.path,
            query=request.url.query,
            **context,
        )
        response = HTMLResponse(html, headers=SECURITY_HEADERS)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(
                CSRF_COOKIE, token, httponly=True, samesite="strict", path=base or "/"
            )
        return response

    # --- pages ----------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        return self.render(request, "overview.html", page="overview", o=data.overview(self.store))

    def queue(self, request: Request) -> Response:
        name = request.path_params["name"]
        start = _int(request, "start", 0)
        jobs = data.queue_page(self.store, name, start, PER_PAGE)
        return self.render(request, "queue.html", page="queues", queue=name, jobs=jobs)

    def workers(self, request: Request) -> Response:
        rows = data.worker_rows(self.store)
        return self.render(request, "workers.html", page="workers", workers=rows)

    def working(self, request: Request) -> Response:
        rows = [w for w in data.worker_rows(self.store) if w.job]
        return self.render(request, "working.html", page="working", workers=rows)

    def failed(self, request: Request) -> Response:
        queue = request.query_params.get("queue", "")
        klass = request.query_params.get("class", "")
        start = _int(request, "start", 0)
        failures = data.failure_page(self.store, start, PER_PAGE, queue, klass)
        return self.render(
            request, "failed.html", page="failed", failures=failures, queue=queue, klass=klass
        )

    def stats(self, request: Request) -> Response:
        processed, failed = self.store.stats()
        return self.render(
            request,
            "stats.html",
            page="stats",
            processed=processed,
            failed=failed,
            info=data.redis_info(self.store),
            keys=self.store.dashboard.namespace_keys(KEY_LIMIT),
            key_limit=KEY_LIMIT,
        )

    def pools(self, request: Request) -> Response:
        return self.render(request, "pools.html", page="pools", pools=data.pools(self.store))

    def jobs(self, request: Request) -> Response:
        hours = _int(request, "hours", 1, 1, 8)
        rows = data.job_metrics(self.store, time.time(), hours, self.minutes)
        name = request.query_params.get("class") or None
        chosen = next((r for r in rows if r.name == name), None)
        return self.render(
            request,
            "jobs.html",
            page="jobs",
            rows=rows,
            hours=hours,
            klass=name or "",
            histogram=jobstats.histogram(chosen) if chosen else None,
        )

    # --- JSON for the scripts -------------------------------------------------------------------

    def live(self, request: Request) -> Response:
        o = data.overview(self.store)
        now = time.time()
        if self.samples_kept:
            self.samples_kept = self.store.dashboard.record_samples(
                int(now) // 60,
                dict(o.queues),
                len(o.working),
                o.workers - len(o.working),
                SAMPLES_TTL,
            )
            if not self.samples_kept:
                log.warning(
                    "dashboard: Redis refuses writes from this user; the charts show only what a "
                    "pool master records"
                )
        return JSONResponse(
            {
                "time": now,
                "processed": o.processed,
                "failed": o.failed,
                "failures": o.failures,
                "workers": o.workers,
                "working": len(o.working),
                "paused": o.paused,
                "queues": dict(o.queues),
                "busy": [
                    {
                        "id": w.id,
                        "queue": w.job.queue,
                        "class": w.job.klass,
                        "args": w.job.args,
                        "run_at": w.run_at,
                    }
                    for w in o.working
                    if w.job
                ],
            }
        )

    def series(self, request: Request) -> Response:
        return JSONResponse(data.sample_series(self.store, time.time()))

    def job_series(self, request: Request) -> Response:
        hours = _int(request, "hours", 1, 1, 8)
        name = request.query_params.get("class") or None
        return JSONResponse(data.job_series(self.store, time.time(), hours, name, self.minutes))

    def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    # --- actions --------------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        """Every change: check read-only and the CSRF token, run it, go back to the page."""
        if self.config.read_only:
            return Response("this dashboard is read-only\n", status_code=403)
        form = await request.form()
        if not token_ok(request.cookies.get(CSRF_COOKIE), str(form.get(CSRF_FIELD) or "")):
            return Response("missing or wrong CSRF token; reload the page\n", status_code=403)
        name = request.path_params["action"]
        handler = actions.ACTIONS.get(name)
        if handler is None:
            return Response("no such action\n", status_code=404)
        fields = {k: [str(v) for v in form.getlist(k)] for k in form}
        await run_in_threadpool(handler, self.store, fields)
        base = request.scope.get("root_path", "").rstrip("/")
        back = str(form.get("next") or "/")
        if not back.startswith("/") or back.startswith("//") or "\\" in back:
            back = "/"
        return RedirectResponse(base + back, status_code=303)

    def app(self) -> Starlette:
        routes = [
            Route("/", self.overview),
            Route("/queues/{name:path}", self.queue),
            Route("/workers", self.workers),
            Route("/working", self.working),
            Route("/failed", self.failed),
            Route("/stats", self.stats),
            Route("/pools", self.pools),
            Route("/jobs", self.jobs),
            Route("/api/live", self.live),
            Route("/api/series", self.series),
            Route("/api/jobs", self.job_series),
            Route("/metrics", self.metrics),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/actions/{action}", self.act, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        handlers = dict.fromkeys(RETRYABLE_ERRORS, self.redis_down)
        return Starlette(routes=routes, exception_handlers=handlers)

    async def redis_down(self, request: Request, exc: Exception) -> Response:
        """Redis unreachable or refusing: say so (without the password), status 503."""
        text = f"Redis is unavailable at {self.config.redis_label}: {type(exc).__name__}\n"
        return Response(text, status_code=503, media_type="text/plain")


def create_app(
    redis_url: str | None = None,
    namespace: str | None = None,
    *,
    auth: str | None = None,
    read_only: bool = False,
    store: Store | None = None,
) -> Any:
    """The dashboard as an ASGI app, to run alone or mount in another (``app.mount("/resque",
    create_app())`` in Starlette/FastAPI). ``auth`` is ``user:password`` for HTTP basic auth."""
    from pyresque.settings import connection_settings
    from pyresque.store.connection import connect
    from pyresque.web.security import BasicAuth, parse_auth
    from pyresque.wire.keys import Keys

    resolved = connection_settings(redis_url, namespace)
    if store is None:
        store = Store(connect(resolved.redis_url), Keys(resolved.namespace))
    config = WebConfig(redact(resolved.redis_url), resolved.namespace, read_only)
    app: Any = Dashboard(store, config).app()
    credentials = parse_auth(auth)
    if credentials is not None:
        app = BasicAuth(app, *credentials)
    return app


def wsgi_app(redis_url: str | None = None, namespace: str | None = None, **options: Any) -> Any:
    """The same dashboard for a WSGI host (Flask, Django): mount it under a path with the host's
    dispatcher, e.g. ``DispatcherMiddleware(app.wsgi_app, {"/resque": wsgi_app()})``."""
    from a2wsgi import ASGIMiddleware

    return ASGIMiddleware(create_app(redis_url, namespace, **options))
