"""The push gateway's counts for Prometheus: `GET /metrics` in the text exposition format.

What the platform sent and what became of it, by push kind: accepted (and how: started,
signalled, recorded, ...) or refused (by the error code the platform was answered). A rising
refused rate is a wrong secret or URL in the platform's console, a replay, or Temporal or the
database out of reach (the code tells which). Written by hand rather than with a client
library: two counters need no dependency. Counts start at zero with the process, as
Prometheus' `rate()` expects of a counter.

The push URLs are public, the counts are not: the endpoint answers 404 to a request through a
trusted proxy (ORDERFLOW_TRUSTED_PROXIES, the proxy in front of the pushes), which does not
forward the path either (deploy/Caddyfile); Prometheus asks the gateway directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from infra.forwarded import parse_address, trusted
from infra.settings import Network

ACCEPTED: Final = "orderflow_gateway_pushes_accepted_total"
REFUSED: Final = "orderflow_gateway_pushes_refused_total"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
METRICS: Final = {
    ACCEPTED: ("Pushes answered ok, by kind and what became of them.", ("kind", "held")),
    REFUSED: ("Pushes answered ng, by kind and the error code answered.", ("kind", "code")),
}
"""Every metric the endpoint serves: its help and its labels (the dashboard's queries use
them, tests/system/test_compose.py checks that)."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PushCounters:
    """The counts since the process started; one instance per gateway."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[tuple[str, ...]]] = {name: Counter() for name in METRICS}

    def accepted(self, kind: str, held: str) -> None:
        self._counts[ACCEPTED][(kind, held)] += 1

    def refused(self, kind: str, code: int) -> None:
        self._counts[REFUSED][(kind, str(int(code)))] += 1

    def exposition(self) -> str:
        """The text format: HELP and TYPE of each metric, then a line per label set."""
        lines: list[str] = []
        for name, (help_text, labels) in METRICS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for values, count in sorted(self._counts[name].items()):
                pairs = ",".join(f'{k}="{_label(v)}"' for k, v in zip(labels, values, strict=True))
                lines.append(f"{name}{{{pairs}}} {count}")
        return "\n".join(lines) + "\n"


async def serve_metrics(
    request: Request, counters: PushCounters, proxies: Sequence[Network]
) -> Response:
    """The exposition, or 404 to a request that came through a trusted proxy."""
    peer = parse_address(request.client.host) if request.client else None
    if peer is not None and trusted(peer, proxies):
        return PlainTextResponse("Not Found", status_code=404)
    return PlainTextResponse(counters.exposition(), media_type=CONTENT_TYPE)
