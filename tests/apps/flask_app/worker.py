"""The pool's app module: ``pyresque pool --app flask_app.worker`` builds the app in the master."""

from __future__ import annotations

from flask_app import create_app

app = create_app()
