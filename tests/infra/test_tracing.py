"""Optional tracing (infra/tracing.py): off and free without OTEL_EXPORTER_OTLP_ENDPOINT; on,
a workflow started through our client gives one trace through the client, the workflow and
its activity, the gateway's requests get spans and the HTTP client and the database are
instrumented; asked for without the `otel` extra, a process refuses to start and says what to
install."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra import fail_closed, tracing
from infra.settings import SettingsError, load_settings
from infra.temporal import connect_client

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/", "ORDERFLOW_DEV": "1"}


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn(sandboxed=False)
class Traced:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.start(exporter=exporter) is not None
    try:
        yield exporter
    finally:
        tracing.stop()


def test_off_without_the_endpoint() -> None:
    assert tracing.start({}) is None
    assert tracing.temporal_interceptors({}) == []
    assert load_settings({}).tracing.otlp_endpoint is None


def test_the_endpoint_is_a_base_url() -> None:
    assert load_settings(ENDPOINT).tracing.otlp_endpoint == "http://collector:4318"
    with pytest.raises(SettingsError, match="OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318' is not"):
        load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})


async def test_a_workflow_started_through_the_client_is_one_trace(
    env: WorkflowEnvironment, spans: InMemorySpanExporter
) -> None:
    client = await connect_client(
        {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host, **ENDPOINT}
    )
    queue = f"traced-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Traced], activities=[greet]):
        result = await client.execute_workflow(
            Traced.run, "orders", id=f"traced-{queue}", task_queue=queue
        )
    assert result == "hello orders"
    finished = spans.get_finished_spans()
    names = {span.name for span in finished}
    assert {"StartWorkflow:Traced", "RunWorkflow:Traced", "RunActivity:greet"} <= names
    assert len({span.context.trace_id for span in finished if "Traced" in span.name}) == 1
    assert all(s.resource.attributes["service.name"] == "orderflow" for s in finished)
    # The merchant API's client and the database are instrumented with the same provider.
    assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert AsyncPGInstrumentor().is_instrumented_by_opentelemetry


async def test_each_request_to_the_gateway_app_is_a_span(spans: InMemorySpanExporter) -> None:
    async def ok(_: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", ok)])
    tracing.instrument_asgi(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        assert (await http.get("/healthz")).status_code == 200
    [server] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.attributes is not None and server.attributes.get("http.status_code") == 200


def test_without_the_extra_a_process_asked_to_trace_does_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    configured = load_settings(ENDPOINT)
    with pytest.raises(SettingsError, match=r"not installed: install the `otel` extra"):
        fail_closed.require(configured, fail_closed.Role.WORKER)
    with pytest.raises(tracing.TracingUnavailableError, match=r"requirements/otel\.txt"):
        tracing.start(ENDPOINT)
    fail_closed.require(load_settings({"ORDERFLOW_DEV": "1"}), fail_closed.Role.WORKER)  # off
