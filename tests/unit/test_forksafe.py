"""Silencing an inherited socket: the process's close says nothing, the other copy lives on.

Another process's copy of an inherited socket is stood in for by a second descriptor of it
(``os.dup``): both refer to one open socket, as a parent's and a child's do after ``fork``.
"""

from __future__ import annotations

import contextlib
import os
import socket

import pytest

from pyresque.contrib.forksafe import silence_connection, silence_fd


class FakeDbApiConnection:
    """What a DB-API connection offers that matters here: ``fileno()`` and a ``close()`` that
    says goodbye on the socket, as libpq's Terminate message does."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, b"goodbye")
        os.close(self.fd)


def test_a_silenced_connection_closes_without_a_word_and_the_other_copy_still_works() -> None:
    server, client = socket.socketpair()
    other_process_copy = os.dup(client.fileno())
    inherited = FakeDbApiConnection(client.detach())
    assert silence_connection(inherited) is True
    inherited.close()
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing sent, and no end of file: it is open elsewhere
        server.recv(100)
    os.write(other_process_copy, b"SELECT 1")
    assert server.recv(100) == b"SELECT 1"
    os.close(other_process_copy)
    server.close()


def test_silence_fd_leaves_the_descriptor_number_taken() -> None:
    """Unlike closing it: the number cannot be reused by a new socket the client would then shut."""
    server, client = socket.socketpair()
    fd = client.detach()
    silence_fd(fd)
    os.fstat(fd)  # still a valid descriptor (now /dev/null)
    assert os.readlink(f"/proc/self/fd/{fd}") == os.devnull
    os.close(fd)
    server.close()


def test_a_connection_without_a_socket_is_kept_not_closed() -> None:
    class NoSocket:
        closed = False

        def close(self) -> None:
            self.closed = True

    conn = NoSocket()
    assert silence_connection(conn) is False
    assert not conn.closed
