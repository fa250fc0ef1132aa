"""The bench jobs with Sentry on (``--app benchsentry``): errors and tracing (every job a span;
errors only with BENCH_SENTRY_TRACES=0), through a transport that serializes each envelope in a
background thread, as the SDK's HTTP transport does before it sends, and then drops it (no
network)."""

from __future__ import annotations

import io
import os
from typing import Any

import benchjobs  # noqa: F401 - registers the jobs
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.worker import BackgroundWorker

from pyresque.contrib.sentry import PyresqueIntegration


class SerializingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._worker = BackgroundWorker()

    def capture_envelope(self, envelope: Envelope) -> None:
        self._worker.submit(lambda: envelope.serialize_into(io.BytesIO()))

    def flush(self, timeout: float, callback: Any = None) -> None:
        self._worker.flush(timeout, callback)


sentry_sdk.init(
    dsn="https://public@sentry.invalid/1",
    transport=SerializingTransport,
    integrations=[PyresqueIntegration()],
    traces_sample_rate=None if os.environ.get("BENCH_SENTRY_TRACES") == "0" else 1.0,
)


def flush() -> None:
    """Send what is queued (the bench's --direct counts the transport's work)."""
    sentry_sdk.flush()
