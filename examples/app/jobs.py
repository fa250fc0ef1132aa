"""The example app's jobs: what ``resque-pool --app jobs`` preloads before it forks its workers.

Three jobs on three queues, as a small web app might have them:

- ``send_welcome`` (queue ``mail``): a welcome email, simulated by a print and a short sleep;
- ``ResizeImage`` (queue ``images``): a thumbnail, registered under a Ruby-style class name so a Ruby
  app could enqueue it as ``Resque.enqueue_to('images', 'ResizeImage', 7, 320, 240)``;
- ``deliver_webhook`` (queue ``default``): a POST to a customer's URL, which fails whenever the
  customer's endpoint is down (simulated: any host under ``down.example.com``).

The pool runs one worker group per line of ``config/resque-pool.yml``. Enqueue from anywhere that
imports this module::

    import jobs, pyresque
    pyresque.enqueue(jobs.send_welcome, 42, "ada@example.com")
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pyresque
import pyresque.pool

if TYPE_CHECKING:
    from pyresque.worker import Worker

# Workers in the main group. Heroku's resque-pool guide sets this constant in an initializer and
# writes ``'*': <%= WORKER_CONCURRENCY %>`` in the config: the pool looks the name up here first
# (an attribute of the --app module), then in the environment.
WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "2"))


class WebhookError(Exception):
    """The customer's endpoint did not accept the delivery."""


def say(text: str) -> None:
    """One line to stdout, in one write (several processes share the pipe), flushed at once
    (under a process manager stdout is a pipe, which Python buffers)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@pyresque.job(queue="mail")
def send_welcome(user_id: int, email: str) -> None:
    """Send the welcome email to a new user."""
    time.sleep(0.3)  # talking to the mail server
    say(f"[job {os.getpid()}] welcome email sent to {email} (user {user_id})")


@pyresque.job(queue="images", name="ResizeImage")
class ResizeImage:
    """Make a thumbnail of an uploaded image (Resque's job shape: a class with ``perform``)."""

    @staticmethod
    def perform(image_id: int, width: int, height: int) -> None:
        time.sleep(0.5)  # decoding, resampling, encoding
        say(f"[job {os.getpid()}] image {image_id} resized to {width}x{height}")


@pyresque.job(queue="default")
def deliver_webhook(url: str, event: str) -> None:
    """POST an event to a customer's endpoint; raises (and becomes a failure record) when it is down."""
    time.sleep(0.1)
    host = urlsplit(url).hostname or ""
    if host == "down.example.com" or host.endswith(".down.example.com"):
        raise WebhookError(f"{url} answered 503 Service Unavailable")
    say(f"[job {os.getpid()}] webhook {event} delivered to {url}")


@pyresque.pool.setup
def close_connections() -> None:
    """In the master, once, after this module is loaded: drop connections the workers must not share."""
    say(f"[master {os.getpid()}] setup: closing the database connection before forking")


@pyresque.pool.after_prefork
def reconnect(worker: Worker) -> None:
    """In each new worker, before it takes a job: open this process's own connections."""
    say(f"[worker {worker.id}] after_prefork: reconnecting to the database")
