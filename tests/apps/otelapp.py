"""An app with OpenTelemetry on: the SDK with a batching processor whose exporter appends each
span to $OTEL_SPANS as a JSON line (the batch is exported from a thread, so a job child that
did not flush before ``os._exit`` would lose its spans)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import observejobs  # noqa: F401 - registers the jobs
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from pyresque.contrib.otel import instrument


class FileSpanExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(os.environ["OTEL_SPANS"], "a") as f:
            for span in spans:
                f.write(span.to_json(indent=None) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
# a long delay: only a flush exports a job child's spans in time
provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(), schedule_delay_millis=60_000))
trace.set_tracer_provider(provider)
instrument()
