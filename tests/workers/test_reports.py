"""R4.3.1 the regular statistics: the Schedules a worker keeps, and a round that reaches each
manager's inbox and robot (a local receiver playing WeCom's robot), with the report kept as a
file. A real Temporal dev server (Schedules), the real activities on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import ScheduleRange
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from analytics.delivery import period_before
from infra.settings import settings
from schemas.contract import REPORT_SCHEDULE_IDS, TASK_QUEUE
from schemas.reports import ReportSent
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.real_stack import platform as platform
from tests.robot import Robot
from tests.robot import robot as robot
from workers.dispatcher import Dispatcher
from workers.registry import WORKFLOWS, build_activities
from workers.schedules import ensure_report_schedules

pytestmark = pytest.mark.timeout(300)


def test_the_period_is_the_day_or_the_week_before() -> None:
    friday = date(2026, 12, 4)
    daily = period_before("daily", friday)
    assert (daily.start, daily.end) == (date(2026, 12, 3), date(2026, 12, 3))
    weekly = period_before("weekly", friday)
    assert (weekly.start, weekly.end) == (date(2026, 11, 23), date(2026, 11, 29))
    assert period_before("weekly", date(2026, 11, 30)).start == date(2026, 11, 23)


async def test_a_scheduled_report_reaches_each_managers_inbox_and_robot(
    dev_server: WorkflowEnvironment,
    demo_pool: asyncpg.Pool,
    platform: Any,
    robot: Robot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = dev_server.client
    try:
        await _a_round(client, demo_pool, platform, robot, tmp_path, monkeypatch)
    finally:  # no round of them may start later on the module's shared server
        for schedule_id in REPORT_SCHEDULE_IDS.values():
            await client.get_schedule_handle(schedule_id).delete()


async def _a_round(
    client: Any,
    demo_pool: asyncpg.Pool,
    platform: Any,
    robot: Robot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await ensure_report_schedules(client)
    await ensure_report_schedules(client)  # a second worker: brought in line, not added
    daily = client.get_schedule_handle(REPORT_SCHEDULE_IDS["daily"])
    spec = (await daily.describe()).schedule.spec
    assert spec.time_zone_name == "Asia/Shanghai"
    assert list(spec.calendars[0].hour) == [ScheduleRange(6)]
    await demo_pool.execute(
        "INSERT INTO notify_routes (scope, owner, kind, url, mention) "
        "VALUES ('person', 'M-001', 'wecom', $1, 'zhoujingli')",
        robot.url,
    )
    meituan = platform.client()
    with monkeypatch.context() as env:  # where the report file goes, read as they are built
        env.setenv("ORDERFLOW_DATA_DIR", str(tmp_path))
        settings.cache_clear()
        activities = build_activities(demo_pool, meituan)
    settings.cache_clear()
    try:
        async with Worker(
            client, task_queue=TASK_QUEUE, workflows=WORKFLOWS, activities=activities
        ):
            await daily.trigger()
            run = client.get_workflow_handle(await _started(daily))
            sent = ReportSent.model_validate(await asyncio.wait_for(run.result(), 60))
    finally:
        await meituan.aclose()
    assert sent.managers == ["M-001", "M-002", "M-003"]
    page = await asyncio.to_thread(Path(sent.file).read_text, encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    inbox = await demo_pool.fetch(
        "SELECT recipient, subject, text FROM notifications WHERE topic = 'report' "
        "ORDER BY recipient"
    )
    assert [r["recipient"] for r in inbox] == ["M-001", "M-002", "M-003"]
    assert inbox[0]["subject"] == f"日报 {sent.period_from}"
    assert "SH-XH-001: 0" in inbox[0]["text"] and sent.file in inbox[0]["text"]
    stop = asyncio.Event()
    dispatching = asyncio.create_task(Dispatcher(demo_pool).run(stop))
    try:
        for _ in range(200):
            if robot.received:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await dispatching
    [message] = robot.received  # M-001's own robot; the others have none: their inbox
    assert message["body"]["text"]["mentioned_list"] == ["zhoujingli"]
    assert f"日报 {sent.period_from}" in message["body"]["text"]["content"]


async def _started(schedule: Any) -> str:
    """The run the trigger started (a Schedule suffixes its workflow id with the time)."""
    for _ in range(200):
        actions = (await schedule.describe()).info.recent_actions
        if actions:
            workflow_id: str = actions[-1].action.workflow_id
            return workflow_id
        await asyncio.sleep(0.05)
    raise AssertionError("the trigger started nothing")
