"""Ruby's job class of the resque-scheduler fixture, as a pyresque job: it records its args."""

from __future__ import annotations

import json
import os
from typing import Any

import pyresque
from pyresque.store.connection import connect


@pyresque.job(queue="mail", name="SomeJob")
def some_job(*args: Any) -> None:
    connect(os.environ["REDIS_URL"]).rpush("resque:test:performed", json.dumps(args))
