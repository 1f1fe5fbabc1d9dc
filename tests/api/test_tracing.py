"""Traces through the API and Temporal, collected by an in-memory exporter (tracing.py; with
OTEL_EXPORTER_OTLP_ENDPOINT set they go over OTLP): the request that opens a case is one trace through the
workflow and its activities; a later request's trace reaches the case's handler, which links back to it."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from activities.roster_store import load_roster
from tests.support.api import API_ROSTER, ISSUER, OWNER, api_on, intake


async def test_a_request_is_one_trace_through_the_workflow_and_its_activities(dev_env, pool):
    await load_roster(pool, API_ROSTER)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with api_on(dev_env, pool, ISSUER, tracer_provider=provider) as (http, _):
        body = intake()
        assert (await http.post("/cases", json=body, headers=ISSUER.staff(OWNER))).status_code == 201
        started = {span.context.trace_id for span in exporter.get_finished_spans() if span.name.startswith("POST /cases")}
        path = f"/cases/{body['complaint_id']}/actions/accept_ownership"
        assert (await http.post(path, json={}, headers=ISSUER.staff(OWNER))).status_code == 200
    spans = exporter.get_finished_spans()
    by_trace: dict[int, set[str]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, set()).add(span.name)
    [start_trace] = started
    assert {"RunWorkflow:ComplaintWorkflow", "RunActivity:open_case"} <= by_trace[start_trace], sorted(by_trace[start_trace])
    [action_trace] = {s.context.trace_id for s in spans if s.name.startswith(f"POST {path}")}
    assert "StartWorkflowUpdate:accept_ownership" in by_trace[action_trace], sorted(by_trace[action_trace])
    # The case's own spans stay in the trace of the request that opened it; its handler of a later request
    # links back to that request's trace (temporalio's TracingInterceptor).
    [handled] = [s for s in spans if s.name == "HandleUpdate:accept_ownership"]
    assert handled.context.trace_id == start_trace
    assert action_trace in {link.context.trace_id for link in handled.links}


def test_tracing_is_off_unless_an_otlp_endpoint_is_set(monkeypatch):
    import tracing

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    app = object()
    assert not tracing.configure_tracing("complaints-test")
    assert tracing.temporal_interceptors() == [] and tracing.instrumented(app) is app
