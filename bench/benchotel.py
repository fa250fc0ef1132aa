"""The bench jobs with OpenTelemetry on (``--app benchotel``): the SDK's batching processor, its
exporter turning each span into JSON (the work an exporter does before it sends) and dropping it."""

from __future__ import annotations

from collections.abc import Sequence

import benchjobs  # noqa: F401 - registers the jobs
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from pyresque.contrib.otel import instrument


class SerializingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            span.to_json(indent=None)
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(SerializingExporter()))
trace.set_tracer_provider(provider)
instrument()


def flush() -> None:
    """Export what is queued (the bench's --direct counts the exporter's work)."""
    provider.force_flush()
