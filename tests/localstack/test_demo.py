"""`make demo` in small: a business day of eight orders through the real stack (Temporal dev
server, PostgreSQL, simulator, gateway, worker, simulated staff) ends with every order closed,
rejected or cancelled, and its summary adds up and agrees with an independent count in the
database (R1.3 data accuracy, R4.3.1 statistics)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from infra import database as db
from localstack.demo import DemoOptions, render, run_demo
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

TERMINAL = {"closed", "rejected", "cancelled"}


async def test_a_small_business_day_ends_and_its_summary_matches_the_database(
    tmp_path: Path, pg_dsn: str
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
        finally:
            await conn.close()
        assert stages == totals
        assert kinds == decided
        assert open_claims == 0
        assert summaries == 8
    finally:
        await db.drop_database(pg_dsn, name)
