"""A Flask app factory whose jobs use ``current_app``, for the integration tests.

``create_app`` is what a web server calls too; ``flask_app.worker`` builds the app once for the
pool's master. The database is ``$PYRESQUE_TEST_PG_URL``, the table the tests' ``flask_entry``.
"""

from __future__ import annotations

import os

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, text

import pyresque
import pyresque.contrib.flask
import pyresque.contrib.sqlalchemy


def create_app() -> Flask:
    app = Flask("flask_app")
    app.config["GREETING"] = "made by create_app"
    engine = create_engine(os.environ["PYRESQUE_TEST_PG_URL"])
    app.extensions["engine"] = engine
    pyresque.contrib.sqlalchemy.install(engine)
    pyresque.contrib.flask.init_app(app)

    @app.get("/")
    def index() -> str:
        return str(app.config["GREETING"])

    return app


@pyresque.job(queue="flask", name="Flask.Write")
def write(n: int) -> None:
    """Runs inside the app's context: the engine and config come from ``current_app``."""
    engine: Engine = current_app.extensions["engine"]
    with engine.begin() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO flask_entry (n, backend, pid, ppid, note) "
                "VALUES (:n, :backend, :pid, :ppid, :note)"
            ),
            {
                "n": n,
                "backend": backend,
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "note": current_app.config["GREETING"],
            },
        )
