"""The platform-call activities against the simulator over real HTTP (R6.1, R6.3.1): each call
lands on the platform, refusals are non-retryable with the client's error name, transient
faults are raised for Temporal to retry, and a repeated success is still a success."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.orders import OrderRecords
from activities.platform_calls import PlatformCalls
from localstack.simulator import RunningSimulator, SimConfig, SimOrder, serve_simulator
from meituan.client import MeituanClient, PlatformError, PlatformUnavailable, RateLimited
from meituan.codes import ErrorCode, MerchantCancelReason, OrderStatus
from schemas.platform_calls import (
    PlatformCancelOrder,
    PlatformOrderCall,
    PlatformRefundAnswer,
    PlatformReminderReply,
    PlatformReport,
)
from schemas.records import RecordOrder
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import make_order
from tests.db_fixtures import pg_dsn as pg_dsn


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=11)
    async with serve_simulator(config) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="session")
async def calls(running: RunningSimulator) -> AsyncIterator[PlatformCalls]:
    async with running.client(rate_limit_backoff=0.01) as meituan:
        yield PlatformCalls(meituan)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def new_order(running: RunningSimulator) -> SimOrder:
    return running.sim.create_order({"app_poi_code": "SH-XH-001"}, push=False)


def call(order: SimOrder) -> PlatformOrderCall:
    return PlatformOrderCall(order_id=str(order.order_id))


def names(order: SimOrder) -> list[str]:
    return [c.name for c in order.calls if c.name != "order/viewstatus"]


async def refusal(env: ActivityEnvironment, fn: object, arg: object) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await env.run(fn, arg)  # type: ignore[arg-type]
    assert caught.value.non_retryable
    return caught.value


async def test_self_delivery_calls(
    running: RunningSimulator, calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    order = new_order(running)
    await env.run(calls.platform_receive, call(order))
    assert order.status == OrderStatus.RECEIVED
    await env.run(calls.platform_confirm, call(order))
    assert order.status == OrderStatus.CONFIRMED
    await env.run(calls.platform_meal_ready, call(order))
    assert order.meal_ready
    await env.run(calls.platform_delivering, call(order))
    assert order.status == OrderStatus.DELIVERING
    await env.run(calls.platform_arrived, call(order))
    assert order.status == OrderStatus.COMPLETED
    assert names(order) == [
        "order/poi_received",
        "order/confirm",
        "order/preparationMealComplete",
        "order/delivering",
        "order/arrived",
    ]


async def test_cancel_with_merchant_reason(
    running: RunningSimulator, calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    order = new_order(running)
    await env.run(
        calls.platform_cancel_order,
        PlatformCancelOrder(
            order_id=str(order.order_id),
            reason_code=MerchantCancelReason.SOLD_OUT,
            reason="商品已售完",
        ),
    )
    assert order.status == OrderStatus.CANCELLED
    assert (order.cancel_reason_code, order.cancel_reason) == (2009, "商品已售完")
    # A retry after the platform already cancelled it is a success (808, status cancelled).
    await env.run(
        calls.platform_cancel_order,
        PlatformCancelOrder(order_id=str(order.order_id), reason_code=2009, reason="商品已售完"),
    )


async def test_answer_refund_agree_and_reject(
    running: RunningSimulator, calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    agreed, rejected = new_order(running), new_order(running)
    for order in (agreed, rejected):
        await env.run(calls.platform_confirm, call(order))
    refund_a = running.sim.apply_refund(agreed.order_id)
    refund_r = running.sim.apply_refund(rejected.order_id)
    await env.run(
        calls.platform_answer_refund,
        PlatformRefundAnswer(
            order_id=str(agreed.order_id),
            refund_id=str(refund_a.refund_id),
            agree=True,
            reason="同意退款",
        ),
    )
    await env.run(
        calls.platform_answer_refund,
        PlatformRefundAnswer(
            order_id=str(rejected.order_id),
            refund_id=str(refund_r.refund_id),
            agree=False,
            reason="商品无问题",
        ),
    )
    assert (refund_a.state, agreed.status) == ("agreed", OrderStatus.CANCELLED)
    assert refund_r.state == "rejected"
    assert names(agreed)[-1] == "order/refund/agree"
    assert names(rejected)[-1] == "order/refund/reject"
    assert rejected.calls[-1].params["reason"] == "商品无问题"


async def test_reply_reminder(
    running: RunningSimulator, calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    order = new_order(running)
    entry = running.sim.remind(order.order_id)
    await env.run(
        calls.platform_reply_reminder,
        PlatformReminderReply(
            order_id=str(order.order_id), remind_id=str(entry["remind_id"]), text="马上就到"
        ),
    )
    assert entry["reply"] == "马上就到"
    # A reminder the platform does not know: 808 that no status check can confirm as done.
    error = await refusal(
        env,
        calls.platform_reply_reminder,
        PlatformReminderReply(order_id=str(order.order_id), remind_id="1", text="x"),
    )
    assert error.type == "AlreadyInState"


async def test_808_already_done_succeeds(
    running: RunningSimulator, calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    order = new_order(running)
    await env.run(calls.platform_confirm, call(order))
    await env.run(calls.platform_confirm, call(order))  # Temporal retried our own success
    await env.run(calls.platform_receive, call(order))  # confirmed is past "received"
    confirms = [c for c in order.calls if c.name == "order/confirm"]
    assert [c.error_code for c in confirms] == [None, ErrorCode.STATUS_CHANGED]


async def test_refusals_are_non_retryable(
    running: RunningSimulator, calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    unknown = PlatformOrderCall(order_id="1")
    assert (await refusal(env, calls.platform_confirm, unknown)).type == "OrderNotFound"

    cancelled = new_order(running)
    running.sim.user_cancel(cancelled.order_id)
    error = await refusal(env, calls.platform_confirm, call(cancelled))
    assert error.type == "AlreadyInState"
    assert "order/confirm" in error.message

    finished = new_order(running)
    await env.run(calls.platform_confirm, call(finished))
    await env.run(calls.platform_arrived, call(finished))
    error = await refusal(
        env,
        calls.platform_cancel_order,
        PlatformCancelOrder(order_id=str(finished.order_id), reason_code=2007, reason="x"),
    )
    assert error.type == "OrderFinished"

    not_an_id = PlatformOrderCall(order_id="abc")
    assert (await refusal(env, calls.platform_confirm, not_an_id)).type == "InvalidRequest"


async def test_wrong_secret_is_a_configuration_error(
    running: RunningSimulator, env: ActivityEnvironment
) -> None:
    order = new_order(running)
    async with running.client(secret="not-the-secret") as meituan:
        error = await refusal(env, PlatformCalls(meituan).platform_confirm, call(order))
    assert error.type == "ConfigurationError"
    assert "703" in error.message
    assert order.status == OrderStatus.SUBMITTED


async def test_transient_faults_are_raised_for_retry(
    running: RunningSimulator, env: ActivityEnvironment
) -> None:
    order = new_order(running)
    faults = running.sim.config.faults
    async with running.client(rate_limit_retries=1, rate_limit_backoff=0.01) as meituan:
        calls = PlatformCalls(meituan)
        faults.api_error_rate = 1.0
        try:
            with pytest.raises(PlatformError) as system_error:
                await env.run(calls.platform_confirm, call(order))
        finally:
            faults.api_error_rate = 0.0
        assert system_error.value.code == ErrorCode.SYSTEM_ERROR
        assert system_error.value.retryable

        faults.rate_limit_next = 2  # more than the client's own single retry
        with pytest.raises(RateLimited):
            await env.run(calls.platform_confirm, call(order))
        faults.rate_limit_next = 0

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    async with MeituanClient(f"http://127.0.0.1:{closed}/api/v1/", timeout=2.0) as offline:
        with pytest.raises(PlatformUnavailable):
            await env.run(PlatformCalls(offline).platform_confirm, call(order))
    assert order.status == OrderStatus.SUBMITTED


async def test_report_to_platform_notifies_the_liaison(
    running: RunningSimulator, demo_pool: asyncpg.Pool
) -> None:
    order = make_order()
    await OrderRecords(demo_pool).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="anomaly-x-1", activity_id="7")
    report = PlatformReport(order_id=order.order_id, kind="fraud", text="刷单: 同一地址十单")
    async with running.client() as meituan:
        calls = PlatformCalls(meituan, demo_pool)
        await env.run(calls.report_to_platform, report)
        await env.run(calls.report_to_platform, report)  # a retry: still one notification
    rows = await demo_pool.fetch("SELECT * FROM notifications WHERE order_id = $1", order.order_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["key"] == "platform-report:anomaly-x-1:7"
    assert (row["audience"], row["store_code"]) == ("platform_liaison", "SH-XH-001")
    assert row["subject"] == "需向美团反映：恶意或欺诈"  # the kind in Chinese
    assert "刷单" in row["text"]
    assert row["sent_at"] is not None


async def test_report_to_platform_without_database(
    calls: PlatformCalls, env: ActivityEnvironment
) -> None:
    report = PlatformReport(order_id="1", kind="agreement", text="x")
    assert (await refusal(env, calls.report_to_platform, report)).type == "ConfigurationError"
