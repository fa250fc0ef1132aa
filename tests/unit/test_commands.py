"""The command registry: one entry point, each command declared once and imported when chosen."""

from __future__ import annotations

import pytest

from pyresque.cli.main import COMMANDS, build_parser, program_parser
from pyresque.pool.clients import PoolClients


def test_resque_pool_and_pyresque_pool_are_one_parser() -> None:
    sub = build_parser()
    sub.parse_args(["pool", "--app", "x"])  # loads the pool's options into its subparser
    [pool] = [
        choice
        for action in sub._subparsers._group_actions  # type: ignore[union-attr]
        for name, choice in action.choices.items()  # type: ignore[union-attr]
        if name == "pool"
    ]
    standalone = program_parser("pool", "pyresque pool")
    assert pool.format_help() == standalone.format_help()
    assert program_parser("pool", "resque-pool").format_help().startswith("usage: resque-pool ")


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_parses_its_own_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    assert f"usage: pyresque {command}" in capsys.readouterr().out


def test_every_command_is_registered_once() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))


def test_a_workers_store_and_its_enqueue_client_share_one_client() -> None:
    store, client = PoolClients("redis://localhost:1/0", "ns").for_worker()
    assert client.redis is store.redis and client.namespace == "ns"
    clients = PoolClients("redis://localhost:1/0", "ns")
    assert clients.queue_reads is clients.queue_reads  # governor and publisher share it
    assert clients.queue_reads.redis is not clients.master.redis  # bounded: its own pool
