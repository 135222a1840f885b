"""Optional OpenTelemetry tracing: one trace from a push through the gateway, Temporal's client
and workers (`temporalio.contrib.opentelemetry`), the merchant API calls (httpx) and the
database (asyncpg), exported over OTLP/HTTP.

On when OTEL_EXPORTER_OTLP_ENDPOINT is set (`infra.settings.TracingSettings`), off and free
otherwise. The packages are the `otel` extra (requirements/otel.txt; the image with
`--build-arg TRACING=yes`), imported only when tracing is on, so the default install and the
production image need none of them. A process asked to trace without them does not start:
`TracingUnavailableError` says what to install, rather than running untraced unnoticed.

Set up once per process, on first use (`start`): the tracer provider is passed explicitly to
what it instruments, the global one is left alone.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from infra.settings import Settings, SettingsError, settings_for

log = logging.getLogger("orderflow.tracing")

REQUIRED: Final = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.httpx",
    "opentelemetry.instrumentation.asyncpg",
    "opentelemetry.instrumentation.asgi",
    "temporalio.contrib.opentelemetry",
)
"""What tracing imports, all from the `otel` extra (the last needs its API and SDK)."""


class TracingUnavailableError(SettingsError):
    """Tracing is asked for (OTEL_EXPORTER_OTLP_ENDPOINT) but the `otel` extra is missing: a
    setting the process cannot honour, refused at startup like a malformed one."""


def _require() -> None:
    for module in REQUIRED:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise TracingUnavailableError(
                f"OTEL_EXPORTER_OTLP_ENDPOINT is set but {err.name or module} is not installed: "
                "install the `otel` extra (pip install --require-hashes --no-deps -r "
                "requirements/otel.txt; the image: docker compose build --build-arg TRACING=yes) "
                "or unset OTEL_EXPORTER_OTLP_ENDPOINT"
            ) from None


def check(configured: Settings) -> None:
    """At a process's start (`infra.fail_closed.require`): tracing asked for can be done."""
    if configured.tracing.otlp_endpoint is not None:
        _require()


@dataclass(frozen=True)
class Tracing:
    """The process's tracer provider and what it has instrumented."""

    provider: Any  # opentelemetry.sdk.trace.TracerProvider: the extra is optional


_active: Tracing | None = None


def start(
    environ: Mapping[str, str] | None = None, *, exporter: Any | None = None
) -> Tracing | None:
    """The process's tracing, set up on the first call when it is on; None when it is off.
    `exporter` (an OTel SpanExporter) replaces OTLP and turns tracing on: for tests."""
    global _active
    if _active is not None:
        return _active
    configured = settings_for(environ).tracing
    if configured.otlp_endpoint is None and exporter is None:
        return None
    _require()
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": configured.service_name}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = f"{configured.otlp_endpoint}/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        log.info("tracing on: spans of %s to %s", configured.service_name, endpoint)
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _active = Tracing(provider)
    return _active


def stop() -> None:
    """Flush and end the process's tracing, its instrumentation undone (tests; shutdown)."""
    global _active
    if _active is None:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    _active.provider.shutdown()
    _active = None


def temporal_interceptors(environ: Mapping[str, str] | None = None) -> list[Any]:
    """The Temporal client's interceptors for tracing (none when off): spans for the client's
    calls and, on a worker built from the client, for each workflow and activity run."""
    tracing = start(environ)
    if tracing is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracing.provider.get_tracer("temporalio"))]


def instrument_asgi(app: Any, environ: Mapping[str, str] | None = None) -> None:
    """A span per request of a Starlette app, when tracing is on."""
    tracing = start(environ)
    if tracing is None:
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(OpenTelemetryMiddleware, tracer_provider=tracing.provider)
