"""OpenTelemetry traces: one HTTP request is one trace, through the Temporal call to the workflow's handler
and the activities it starts (temporalio's TracingInterceptor on client and worker, the ASGI app instrumented).

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then spans go over OTLP/HTTP, with OTEL_SERVICE_NAME or
the process's own name. Tests pass a tracer provider of their own (an in-memory exporter) instead.
"""

from __future__ import annotations

import os
from typing import Any

_provider: Any = None


def configure_tracing(service: str) -> bool:
    """Set up the process's tracer provider when OTEL_EXPORTER_OTLP_ENDPOINT is set; True if it is on."""
    global _provider
    if _provider is not None:
        return True
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def temporal_interceptors(provider: Any = None) -> list[Any]:
    """The client interceptors that carry a trace through Temporal (workers built on the client use them too)."""
    provider = provider or _provider
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("complaints"))]


def instrumented(app: Any, provider: Any = None) -> Any:
    """The ASGI app, each request its trace's root span (or the app as it is, tracing off)."""
    provider = provider or _provider
    if provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(app, tracer_provider=provider)
