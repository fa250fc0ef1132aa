"""What enqueue refuses before anything reaches Redis: queue names no worker's queue list can
address, arguments that cannot match the job's signature, and mappings whose keys JSON would
change (issue 25). Nothing here talks to Redis: ``prepare`` builds the payload only."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from pyresque.errors import ConfigError, PayloadError
from pyresque.jobs.client import Client
from pyresque.jobs.registry import Registry
from pyresque.wire.keys import queue_name_problem
from pyresque.wire.protocol import encode_payload


def send(user_id: int, template: str = "welcome") -> None: ...


def only_keywords(*, user_id: int) -> None: ...


def anything(*args: Any, **kwargs: Any) -> None: ...


class Static:
    @staticmethod
    def perform(a: int, b: int) -> None: ...


class Plain:
    def perform(self, a: int) -> None: ...


@pytest.fixture
def client() -> Client:
    registry = Registry()
    for name, target in [
        ("Send", send),
        ("OnlyKeywords", only_keywords),
        ("Anything", anything),
        ("Static", Static),
        ("Plain", Plain),
    ]:
        registry.register(name, target, "mail")
    nowhere = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    return Client(nowhere, namespace="resque", registry=registry)


@pytest.mark.parametrize(
    "name", ["*", "a,b", "mail*", "ma?l", "[ab]", "!mail", "a b", " mail", "mail\t", "new\nline"]
)
def test_a_queue_no_queue_list_can_address_is_refused(client: Client, name: str) -> None:
    with pytest.raises(ConfigError, match="queue name"):
        client.prepare(name, "Send", (1,))


@pytest.mark.parametrize("name", ["mail", "mail:high", "a-b.c_d", "héllo", "a!b", "UPPER"])
def test_ordinary_queue_names_pass(client: Client, name: str) -> None:
    assert queue_name_problem(name) is None
    assert client.prepare(name, "Send", (1,)) is not None


@pytest.mark.parametrize(
    ("job", "args", "needle"),
    [
        ("Send", (), "missing a required argument: 'user_id'"),
        ("Send", (1, "x", 3), "too many positional arguments"),
        ("OnlyKeywords", (1,), "too many positional arguments"),
        ("Static", (1,), "missing a required argument: 'b'"),
        ("Plain", (1, 2), "too many positional arguments"),
    ],
)
def test_an_argument_count_that_cannot_match_is_refused_at_enqueue(
    client: Client, job: str, args: tuple[Any, ...], needle: str
) -> None:
    with pytest.raises(PayloadError, match=needle) as refused:
        client.prepare("mail", job, args)
    assert job in str(refused.value)


@pytest.mark.parametrize(
    ("job", "args"),
    [
        ("Send", (1,)),
        ("Send", (1, "t")),
        ("Anything", ()),
        ("Anything", (1, 2, 3)),
        ("Static", (1, 2)),
        ("Plain", (1,)),
    ],
)
def test_matching_arguments_pass(client: Client, job: str, args: tuple[Any, ...]) -> None:
    assert client.prepare("mail", job, args) is not None


def test_a_job_known_only_by_name_is_not_checked(client: Client) -> None:
    assert client.prepare("mail", "Ruby::Mailer", (1, 2, 3)) is not None


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ([{1: "a"}], "args[0] has key 1"),
        ([{"a": {2.5: "b"}}], "args[0]['a'] has key 2.5"),
        ([[{"ok": 1}, {None: 1}]], "args[0][1] has key None"),
        ([1, {(1, 2): 3}], "args[1] has key (1, 2)"),
    ],
)
def test_a_key_json_would_change_is_refused(args: list[Any], path: str) -> None:
    """JSON keys are strings: ``{1: "a"}`` would be queued as ``{"1": "a"}`` and the job would
    get a different mapping than was given."""
    with pytest.raises(
        PayloadError, match=path.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        encode_payload("Job", args)


def test_tuples_are_queued_as_lists_as_documented() -> None:
    assert (
        encode_payload("Job", [(1, 2), {"k": (3,)}]) == '{"class":"Job","args":[[1,2],{"k":[3]}]}'
    )
