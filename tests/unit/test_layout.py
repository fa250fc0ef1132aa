"""CYCLE's layout is declared once: the Lua's indices and header come from it, by name."""

from __future__ import annotations

import re

import pytest

from pyresque.store.cycle import Ack, CycleRequest, Reservation
from pyresque.wire import layout, scripts
from pyresque.wire.keys import Keys


def test_the_lua_names_every_slot_it_reads() -> None:
    """No KEYS[n] or ARGV[n] with a literal index in the template: each says which slot."""
    assert re.findall(r"(?:KEYS|ARGV)\[\s*\d", scripts.CYCLE_TEMPLATE) == []
    assert "$" not in scripts.CYCLE.replace("%s*$'", "")  # every name was replaced


def test_every_declared_slot_is_read_by_the_lua() -> None:
    used = set(re.findall(r"\$([a-z_]+)", scripts.CYCLE_TEMPLATE))
    declared = set(layout.CYCLE.indices())
    assert used <= declared
    slots = [s.name for s in layout.CYCLE.keys + layout.CYCLE.args + layout.CYCLE.queue_args]
    slots += [s.name for tail in layout.CYCLE.tails for s in tail.keys + tail.args]
    assert set(slots) - used == set(), "a declared slot the script never reads"


def test_indices_follow_the_declaration() -> None:
    at = layout.CYCLE.indices()
    assert (at["inflight"], at["inflight_workers"], at["queue"]) == (1, 8, 9)
    assert (at["worker_id"], at["extras"], at["queue_name"], at["queue_json"]) == (1, 8, 9, 10)
    assert (at["failed"], at["worker_failed_count"], at["failure_keys"], at["forget_keys"]) == (
        1,
        3,
        3,
        1,
    )


def test_the_header_is_generated_from_the_declaration() -> None:
    header = layout.CYCLE.header()
    assert scripts.CYCLE.startswith(header)
    for i, slot in enumerate(layout.CYCLE.keys, 1):
        assert f"--   {i} {slot.name}: " in header
    for i, slot in enumerate(layout.CYCLE.args, 1):
        assert f"--   {i} {slot.name}: " in header


def test_an_undeclared_name_is_refused() -> None:
    with pytest.raises(KeyError):
        layout.CYCLE.render("return KEYS[$nowhere]")


def test_keys_and_arguments_line_up_with_the_declared_slots() -> None:
    """The generic call's lists, read back by the declared names: each slot holds its value."""
    k = Keys("resque")
    res = Reservation("q", "{}", 1, "n.1")
    ack = Ack(res, '{"error":"x"}', True, "resque:retry:x")
    request = CycleRequest("w", "T", ack, ["q", "r"], "n.2", False)
    keys, argv = request.keys(k), request.argv(k)
    at = layout.CYCLE.indices()
    assert keys[at["inflight"] - 1] == "resque:inflight:w"
    assert keys[at["queue"] - 1 : at["queue"] + 1] == ["resque:queue:q", "resque:queue:r"]
    last = at["keys"] + 2
    assert keys[last + at["failed"] - 1] == "resque:failed"
    assert keys[last + at["failure_keys"] + at["forget"] - 1] == "resque:retry:x"
    assert argv[at["acked_token"] - 1] == "n.1" and argv[at["token"] - 1] == "n.2"
    assert argv[at["reserve_from"] - 1] == "2" and argv[at["extras"] - 1] == "fd"
    assert argv[at["queue_name"] - 1 : at["queue_name"] + 3] == ["q", '"q"', "r", '"r"']
    record_at = at["args"] + at["per_queue_args"] * 2 + at["failure_record"]
    assert argv[record_at - 1] == '{"error":"x"}'
    assert len(argv) == record_at
    args = request.arg_values()
    assert (args.acked_queue, args.acked_sha, args.acked_token) == ("q", res.sha, "n.1")
    assert list(args) == argv[: at["args"]]
