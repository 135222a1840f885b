"""`make demo` in small: a business day of eight orders through the real stack (Temporal dev
server, PostgreSQL, simulator, gateway, worker, simulated staff) ends with every order closed,
rejected or cancelled, and its summary adds up and agrees with an independent count in the
database (R1.3 data accuracy, R4.3.1 statistics). Its console, notifications going to a group
robot that now and then fails, holds no customer's phone, name or address, no identity number
and not the robot's key."""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from infra import database as db
from infra.logging import PHONE_PATTERN, mask_chinese
from infra.settings import settings
from localstack.demo import DemoOptions, render, run_demo
from localstack.simulator.server import BackgroundServer
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.infra.test_redaction import captured as captured

TERMINAL = {"closed", "rejected", "cancelled"}
ROBOT_KEY = f"robot-key-{uuid.uuid4().hex}"


@pytest_asyncio.fixture(loop_scope="session")
async def robot(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[dict[str, object]]]:
    """A WeCom group robot that fails every third message (an HTTP 500), as robots do."""
    received: list[dict[str, object]] = []
    calls = itertools.count(1)

    async def send(request: Request) -> JSONResponse:
        if next(calls) % 3 == 0:
            return JSONResponse({"errcode": -1, "errmsg": "system busy"}, 500)
        received.append(await request.json())
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    server = BackgroundServer(
        Starlette(routes=[Route("/cgi-bin/webhook/send", send, methods=["POST"])])
    )
    await server.start()
    monkeypatch.setenv(
        "ORDERFLOW_NOTIFY_WEBHOOK", f"{server.url}/cgi-bin/webhook/send?key={ROBOT_KEY}"
    )
    settings.cache_clear()
    try:
        yield received
    finally:
        await server.stop()


async def test_a_small_business_day_ends_and_its_summary_matches_the_database(
    tmp_path: Path, pg_dsn: str, robot: list[dict[str, object]], captured: io.StringIO
) -> None:
    name = f"t_demo_{uuid.uuid4().hex[:8]}"
    options = DemoOptions(
        orders=8,
        seed=3,
        data_dir=tmp_path / "temporal",
        database=name,
        server_dsn=pg_dsn,
        temporal_port=None,  # free ports: never the stack of `make demo` or `orderctl dev`
        ui_port=None,
        gateway_port=None,
        api_port=None,
        simulator_port=None,
        limit_s=75,
    )
    lines: list[str] = []
    try:
        result = await run_demo(options, say=lines.append)
        summary = result.summary
        report = render(summary, kept=False)
        assert result.ok, report
        assert result.exit_code == 0
        assert summary["finished"] and not summary["open_orders"], report
        assert any(line.startswith("t+") for line in lines)  # the live progress

        totals = summary["outcome_totals"]
        assert set(totals) <= TERMINAL
        assert sum(totals.values()) == 8
        for stage, by_type in summary["outcomes"].items():
            assert sum(by_type.values()) == totals[stage]
        assert totals.get("cancelled", 0) >= 1
        assert sum(summary["cancelled_by"].values()) == totals.get("cancelled", 0)
        decided = {kind: sum(d.values()) for kind, d in summary["anomalies"].items()}
        assert sum(decided.values()) >= 1
        assert summary["database_agrees"]
        assert all(c["ok"] for c in summary["database_checks"])

        conn = await asyncpg.connect(db.with_database(pg_dsn, name))
        try:
            stages = {
                r["stage"]: r["n"]
                for r in await conn.fetch("SELECT stage, count(*) AS n FROM orders GROUP BY stage")
            }
            kinds = {
                r["kind"]: r["n"]
                for r in await conn.fetch("SELECT kind, count(*) AS n FROM anomalies GROUP BY kind")
            }
            open_claims = await conn.fetchval(
                "SELECT (SELECT count(*) FROM assignments WHERE active)"
                " + (SELECT count(*) FROM service_bookings WHERE active)"
                " + (SELECT coalesce(sum(reserved), 0) FROM stock)"
            )
            summaries = await conn.fetchval("SELECT count(*) FROM order_summaries")
            personal = {
                value
                for r in await conn.fetch(
                    "SELECT customer_name, customer_phone, customer_address FROM orders"
                )
                for value in r.values()
                if len(value) >= 4
            }
        finally:
            await conn.close()
        assert stages == totals
        assert kinds == decided
        assert open_claims == 0
        assert summaries == 8

        # The console of the whole run, at INFO (`make demo` shows warnings only): what the
        # services logged and the progress printed.
        console = "\n".join([captured.getvalue(), *lines])
        assert "answered HTTP 500" in console  # the robot's failures, logged
        assert robot, "no notification reached the robot"
        assert personal and not [value for value in personal if value in console]
        assert not PHONE_PATTERN.findall(console)
        assert mask_chinese(console) == console  # no labelled value, identity or card number
        assert ROBOT_KEY not in console
    finally:
        await db.drop_database(pg_dsn, name)
