"""Flask: every job runs inside the application context of the app a factory built.

::

    def create_app() -> Flask:
        app = Flask(__name__)
        ...
        pyresque.contrib.flask.init_app(app)
        return app

and, for the pool, a module that builds the app once in the master (``--app myapp.worker``)::

    from myapp import create_app

    app = create_app()

Jobs then use ``current_app``, ``g`` and extensions as a view does, and the context's teardown
(``teardown_appcontext``: Flask-SQLAlchemy's session removal, for instance) runs after each job. The
hooks are the worker's ``before_job``/``after_job``, so this holds in a forked job child and in an
in-process worker alike. Database engines still need their fork hooks: see
:mod:`pyresque.contrib.sqlalchemy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from flask import Flask
from flask.ctx import AppContext

import pyresque
from pyresque.processwide import ProcessWide


@dataclass
class _FlaskJobs:
    """The app whose context jobs run in, and the context of the running job."""

    app: Flask | None = None
    contexts: list[AppContext] = field(default_factory=list)  # one entry while a job runs
    installed: bool = False


_STATE: Final = ProcessWide(_FlaskJobs, "the Flask app jobs run in")


def push_context(job: object) -> None:
    state = _STATE.get()
    if state.app is not None:
        context = state.app.app_context()
        context.push()
        state.contexts.append(context)


def pop_context(job: object) -> None:
    contexts = _STATE.get().contexts
    if contexts:
        contexts.pop().pop()


def init_app(app: Flask) -> Flask:
    """Run every job of this process inside ``app``'s application context (the last app given
    wins: a process runs one app's jobs). Returns the app, for chaining in a factory."""
    state = _STATE.get()
    state.app = app
    app.extensions["pyresque"] = True
    if not state.installed:
        state.installed = True
        pyresque.before_job(push_context)
        pyresque.after_job(pop_context)
    return app
