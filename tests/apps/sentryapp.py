"""An app with Sentry on, its envelopes recorded to $SENTRY_EVENTS (one JSON line per item).

The transport sends as the SDK's HTTP transport does: from a background thread, a little later
(a network round trip), so an event still queued when a job child exits is lost unless the
child flushes. SENTRY_REPORT_RETRIES=1 reports every attempt; SENTRY_TRACES=1 turns tracing on.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import observejobs  # noqa: F401 - registers the jobs
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.worker import BackgroundWorker

from pyresque.contrib.sentry import PyresqueIntegration

SEND_DELAY = 0.2  # seconds, as a round trip to Sentry might take


class RecordingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._worker = BackgroundWorker()

    def capture_envelope(self, envelope: Envelope) -> None:
        self._worker.submit(lambda: self._record(envelope))

    def _record(self, envelope: Envelope) -> None:
        time.sleep(SEND_DELAY)
        with open(os.environ["SENTRY_EVENTS"], "a") as f:
            for item in envelope.items:
                payload = item.payload.json
                if payload is None:
                    continue
                line = {"type": item.type, "pid": os.getpid(), "payload": payload}
                f.write(json.dumps(line, default=str) + "\n")

    def flush(self, timeout: float, callback: Any = None) -> None:
        self._worker.flush(timeout, callback)


sentry_sdk.init(
    dsn="https://public@sentry.invalid/1",
    transport=RecordingTransport,
    integrations=[
        PyresqueIntegration(report_retries=bool(os.environ.get("SENTRY_REPORT_RETRIES")))
    ],
    traces_sample_rate=1.0 if os.environ.get("SENTRY_TRACES") else None,
)
