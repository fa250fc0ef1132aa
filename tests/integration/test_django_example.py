"""The Django example answers bad input with a 400 and logs in UTC (issue 25). Run in a child
Python, as Django's settings are set once per process and the suite has its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_app"

PROBE = """
import json, django
from django.conf import settings
from django.test import Client
django.setup()
client = Client(raise_request_exception=False)
answers = {}
for name, body in [("broken", "{bad"), ("a list", "[1]"), ("no email", "{}"),
                   ("email not text", '{"email": 5}'), ("not UTF-8", b"\\xff")]:
    response = client.post("/orders/", data=body, content_type="application/json")
    answers[name] = [response.status_code, response.content.decode("utf-8", "replace")]
print(json.dumps({"time_zone": settings.TIME_ZONE, "answers": answers}))
"""


def test_bad_order_bodies_get_a_400_and_the_time_zone_is_utc(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/shop.sqlite3",
        "DEBUG": "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["time_zone"] == "UTC"
    for name, (status, body) in result["answers"].items():
        assert status == 400, (name, status, body)
        assert "error" in json.loads(body) and "Traceback" not in body, (name, body)
