"""The client skips what is not a job with a log line, instead of swallowing every error."""

from __future__ import annotations

import logging

import pytest
import redis

from pyresque.jobs.client import Client
from pyresque.jobs.registry import Registry


def client(r: redis.Redis) -> Client:
    return Client(r, namespace="resque", registry=Registry())


def test_enqueue_by_name_of_a_class_unknown_here_says_why_no_hooks_run(
    r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="pyresque.jobs.client"):
        assert client(r).enqueue_to("mail", "Ruby::Mailer", 1)
    assert r.lrange("resque:queue:mail", 0, -1) == [b'{"class":"Ruby::Mailer","args":[1]}']
    assert "job Ruby::Mailer is not a Python job here" in caplog.text


def test_dequeue_keeps_and_reports_entries_that_are_not_jobs(
    r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    c = client(r)
    r.rpush("resque:queue:mail", "not json", '{"class":"Mailer","args":[1]}', "[1]")
    with caplog.at_level(logging.WARNING, logger="pyresque.jobs.client"):
        assert c.dequeue("Mailer", queue="mail") == 1
    assert r.lrange("resque:queue:mail", 0, -1) == [b"not json", b"[1]"]
    assert caplog.text.count("dequeue: skipping an entry of queue mail that is not a job") == 2


def test_dequeue_matches_what_enqueue_queued_for_the_same_arguments(r: redis.Redis) -> None:
    """A tuple (or any value JSON writes differently) is queued as JSON writes it; dequeue with the
    same Python arguments compares in that form, so what ``enqueue`` queued, ``dequeue`` finds."""
    c = client(r)
    c.enqueue_to("mail", "Mailer", (1, 2), {"to": ("a", "b")})
    c.enqueue_to("mail", "Mailer", (1, 3), {"to": ("a", "b")})
    assert c.dequeue("Mailer", (1, 2), {"to": ("a", "b")}, queue="mail") == 1
    assert r.lrange("resque:queue:mail", 0, -1) == [
        b'{"class":"Mailer","args":[[1,3],{"to":["a","b"]}]}'
    ]
