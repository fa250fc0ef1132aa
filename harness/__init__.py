"""The process harness that tests/ and bench/ both use: real servers and processes, no mocks.

A private redis-server on a unix socket or a free port (``redis_server``), a Sentinel cluster of a
master, a replica and three sentinels (``sentinels``), simulated hosts in network and UTS
namespaces (``fleet``), a job ledger that counts every perform in a Redis no fault touches
(``ledger``, with its job app in ``apps/``), and the process table read from /proc
(``proctable``).

It lives at the repository root, beside tests/ and bench/, because both need it and neither should
import the other; it is not part of the pyresque package (pyproject.toml only finds packages under
src/) and is not shipped in the wheel. The tests import it from the repository root that pytest
puts on ``sys.path``; a bench script gets the root from bench/common.py.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: ``ROOT / "src"`` goes on the PYTHONPATH of the processes started here."""

APP_DIR = Path(__file__).resolve().parent / "apps"
"""The harness's job apps (``ledgerapp``): the PYTHONPATH entry and working directory of the
pools it starts."""
