"""Settings of the example shop: SQLite by default, PostgreSQL with ``DATABASE_URL``.

``DATABASE_URL`` is ``sqlite:///shop.sqlite3`` (relative to this project; ``sqlite:////abs/path``)
or ``postgres://user[:password]@host[:port]/dbname``. Redis comes from ``$REDIS_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"  # Django's default is America/Chicago: its pool's log lines said -06:00
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

INSTALLED_APPS = [
    "pyresque.contrib.django",  # manage.py resque_pool / resque_work, fork-safe connections
    "orders",
]


def database(url: str) -> dict[str, object]:
    if url.startswith("sqlite:///"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / url[len("sqlite:///") :]}
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL: expected sqlite:/// or postgres://, got {url!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,  # workers keep a connection between jobs; closed when older
    }


DATABASES = {"default": database(os.environ.get("DATABASE_URL", "sqlite:///shop.sqlite3"))}

PYRESQUE = {
    # REDIS_URL and NAMESPACE default to $REDIS_URL and $RESQUE_NAMESPACE
    "POOL": "config/resque-pool.yml",
}
