"""Worker ids written by other clients: parsed only when they print back to the same bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyresque.worker.recovery import WorkerId


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web1:4242:critical,low", WorkerId("web1", 4242, "critical,low")),
        ("web1:7:ns:queue:with:colons", WorkerId("web1", 7, "ns:queue:with:colons")),
        ("web1:0:*", WorkerId("web1", 0, "*")),
        ("web1:4242", None),
        ("web1:x:q", None),
        ("web1:-1:q", None),
        # found by fuzz/run.py worker: these printed back as other ids, so a prune or a memory
        # lookup would have acted on pid 42 for a worker that is not pid 42
        ("web1:042:q", None),
        ("web1:\u0664\u0662:q", None),  # Arabic-Indic digits, which int() reads as 42
        ("web1:\u00b2:q", None),  # a superscript two: isdigit() but not int()
    ],
)
def test_parse(text: str, expected: WorkerId | None) -> None:
    assert WorkerId.parse(text) == expected


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_a_parsed_id_prints_back_to_itself(text: str) -> None:
    parsed = WorkerId.parse(text)
    assert parsed is None or str(parsed) == text


@settings(max_examples=100, deadline=None)
@given(
    st.text(st.characters(blacklist_characters=":"), max_size=20),
    st.integers(0, 2**22),
    st.text(max_size=20),
)
def test_every_id_a_worker_writes_is_read_back(host: str, pid: int, queues: str) -> None:
    identity = WorkerId(host, pid, queues)
    assert WorkerId.parse(str(identity)) == identity
