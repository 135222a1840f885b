"""The merchant API client against the simulator over real HTTP (R6.3.1): every call, the error
mapping, 808 tolerated when the platform already shows the wanted state, and 711 back-off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from infra.settings import DEFAULT_APP_ID, DEFAULT_APP_SECRET, DEFAULT_BASE_URL
from localstack.simulator import RunningSimulator, SimConfig, SimOrder, serve_simulator
from meituan.client import (
    AlreadyInState,
    ConfigurationError,
    InvalidRequest,
    MeituanClient,
    OrderFinished,
    OrderNotFound,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)
from meituan.codes import ErrorCode, MerchantCancelReason, OrderStatus


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=7)
    async with serve_simulator(config) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="session")
async def client(running: RunningSimulator) -> AsyncIterator[MeituanClient]:
    async with running.client(rate_limit_backoff=0.01) as meituan:
        yield meituan


def new_order(running: RunningSimulator, store: str = "SH-XH-001") -> SimOrder:
    return running.sim.create_order({"app_poi_code": store}, push=False)


def call_names(order: SimOrder) -> list[str]:
    return [call.name for call in order.calls]


async def test_self_delivery_lifecycle(running: RunningSimulator, client: MeituanClient) -> None:
    order = new_order(running)
    oid = order.order_id
    assert await client.view_status(oid) == OrderStatus.SUBMITTED
    assert await client.poi_received(oid) is True
    assert await client.view_status(oid) == OrderStatus.RECEIVED
    assert await client.confirm(oid) is True
    assert await client.preparation_complete(oid) is True
    assert order.meal_ready
    assert await client.delivering(oid) is True
    assert await client.view_status(oid) == OrderStatus.DELIVERING
    assert await client.arrived(oid) is True
    assert await client.view_status(oid) == OrderStatus.COMPLETED
    assert call_names(order) == [
        "order/viewstatus",
        "order/poi_received",
        "order/viewstatus",
        "order/confirm",
        "order/preparationMealComplete",
        "order/delivering",
        "order/viewstatus",
        "order/arrived",
        "order/viewstatus",
    ]
    assert all(call.ok for call in order.calls)
    assert order.calls[3].params["order_id"] == str(oid)
    assert order.calls[3].params["app_id"] == DEFAULT_APP_ID
    assert "sig" not in order.calls[3].params


async def test_808_when_already_done_is_success(
    running: RunningSimulator, client: MeituanClient
) -> None:
    order = new_order(running)
    oid = order.order_id
    assert await client.confirm(oid) is True
    # A retried activity confirms again: the platform says 808, the status shows it is done.
    assert await client.confirm(oid) is False
    assert await client.poi_received(oid) is False
    assert await client.preparation_complete(oid) is True
    assert await client.arrived(oid) is True
    assert await client.arrived(oid) is False
    assert await client.delivering(oid) is False
    second_confirm = order.calls[1]
    assert (second_confirm.name, second_confirm.error_code) == ("order/confirm", 808)
    assert order.calls[2].name == "order/viewstatus"


async def test_808_in_another_state_raises(
    running: RunningSimulator, client: MeituanClient
) -> None:
    order = new_order(running)
    running.sim.user_cancel(order.order_id)
    with pytest.raises(AlreadyInState) as caught:
        await client.confirm(order.order_id)
    assert caught.value.code == ErrorCode.STATUS_CHANGED
    assert caught.value.current_status == OrderStatus.CANCELLED
    assert caught.value.retryable is False
    with pytest.raises(AlreadyInState):
        await client.delivering(order.order_id)


async def test_cancel(running: RunningSimulator, client: MeituanClient) -> None:
    order = new_order(running)
    assert await client.cancel(order.order_id, "商品已售完", MerchantCancelReason.SOLD_OUT)
    assert order.status == OrderStatus.CANCELLED
    assert (order.cancel_reason_code, order.cancel_reason) == (2009, "商品已售完")
    assert order.calls[0].params["reason_code"] == "2009"
    assert await client.cancel(order.order_id, "商品已售完", 2009) is False

    finished = new_order(running)
    await client.confirm(finished.order_id)
    await client.arrived(finished.order_id)
    with pytest.raises(OrderFinished) as caught:
        await client.cancel(finished.order_id, "顾客要求", MerchantCancelReason.CUSTOMER_ASKED)
    assert caught.value.code == 1022 and not caught.value.retryable


async def test_refunds(running: RunningSimulator, client: MeituanClient) -> None:
    sim = running.sim
    order = new_order(running)
    oid = order.order_id
    await client.confirm(oid)
    with pytest.raises(AlreadyInState):  # nothing to answer yet
        await client.refund_reject(oid, "无退款申请")

    sim.apply_refund(oid, reason="不想要了")
    assert await client.refund_reject(oid, "已出餐，不支持退款") is True
    assert order.refunds[-1].state == "rejected"

    line = order.order.detail[0]
    assert await client.apply_part_refund(
        oid, "缺货", [{"app_food_code": line.app_food_code, "count": 1}]
    )
    partial = order.refunds[-1]
    assert partial.partial and partial.state == "agreed"
    assert partial.money == line.price + line.box_price
    assert order.status == OrderStatus.CONFIRMED
    with pytest.raises(InvalidRequest):
        await client.apply_part_refund(oid, "缺货", [{"app_food_code": "NOPE", "count": 1}])

    sim.apply_refund(oid, reason="送错了")
    assert await client.refund_agree(oid, "同意退款") is True
    assert order.status == OrderStatus.CANCELLED
    assert order.refunds[-1].money == order.order.total
    assert await client.refund_agree(oid, "同意退款") is False  # retried: already refunded


async def test_order_detail_matches_the_platform(
    running: RunningSimulator, client: MeituanClient
) -> None:
    order = running.sim.create_order(push=False, anomaly="wrong_price")
    await client.poi_received(order.order_id)
    detail = await client.get_order_detail(order.order_id, is_mt_logistics=True)
    assert detail.status == OrderStatus.RECEIVED
    exclude = {"status", "utime"}
    assert detail.model_dump(exclude=exclude) == order.order.model_dump(exclude=exclude)
    assert isinstance(detail.total, Decimal)
    assert detail.total_consistent


async def test_day_seq_walk_finds_every_order(
    running: RunningSimulator, client: MeituanClient
) -> None:
    # R2.1.2: the patrol walks getOrderDaySeq -> getOrderIdByDaySeq -> getOrderDetail.
    created = {new_order(running, "SH-PD-002").order_id for _ in range(3)}
    latest = await client.get_order_day_seq("SH-PD-002")
    assert latest >= 3
    found = set()
    for seq in range(1, latest + 1):
        order_id = await client.get_order_id_by_day_seq("SH-PD-002", seq)
        detail = await client.get_order_detail(order_id)
        assert (detail.app_poi_code, detail.day_seq) == ("SH-PD-002", seq)
        found.add(order_id)
    assert created <= found
    with pytest.raises(OrderNotFound):
        await client.get_order_id_by_day_seq("SH-PD-002", latest + 1)
    with pytest.raises(OrderNotFound):
        await client.get_order_id_by_day_seq("SH-PD-002", 1, "20000101")
    assert await client.get_order_day_seq("SH-HS-100") >= 0
    with pytest.raises(InvalidRequest):
        await client.get_order_day_seq("NO-SUCH-STORE")


async def test_remind_reply(running: RunningSimulator, client: MeituanClient) -> None:
    order = new_order(running)
    remind = running.sim.remind(order.order_id)
    assert await client.remind_reply(order.order_id, remind["remind_id"], "已出餐，马上送到")
    assert order.reminds[0]["reply"] == "已出餐，马上送到"
    with pytest.raises(AlreadyInState):
        await client.remind_reply(order.order_id, 1, "?")


async def test_errors_map_to_exceptions(running: RunningSimulator, client: MeituanClient) -> None:
    order = new_order(running)
    async with running.client(secret="not-the-secret") as wrong_secret:
        with pytest.raises(ConfigurationError) as caught:
            await wrong_secret.confirm(order.order_id)
        assert caught.value.code == ErrorCode.BAD_SIGNATURE and not caught.value.retryable
    async with running.client(app_id="nobody") as wrong_app:
        with pytest.raises(ConfigurationError) as caught:
            await wrong_app.view_status(order.order_id)
        assert caught.value.code == ErrorCode.UNKNOWN_APP_ID
    assert order.status == OrderStatus.SUBMITTED  # nothing happened
    with pytest.raises(OrderNotFound) as not_found:
        await client.confirm(1)
    assert not_found.value.code == 806
    with pytest.raises(InvalidRequest) as missing:
        await client.call("order/cancel", {"order_id": order.order_id})
    assert missing.value.code == ErrorCode.MISSING_PARAMETER
    with pytest.raises(InvalidRequest) as bad_format:
        await client.call("order/confirm", {"order_id": "abc"})
    assert bad_format.value.code == ErrorCode.BAD_PARAMETER_FORMAT


async def test_system_error_is_retryable(running: RunningSimulator, client: MeituanClient) -> None:
    order = new_order(running)
    running.sim.config.faults.api_error_rate = 1.0
    try:
        with pytest.raises(PlatformError) as caught:
            await client.view_status(order.order_id)
    finally:
        running.sim.config.faults.api_error_rate = 0.0
    assert type(caught.value) is PlatformError
    assert caught.value.code == ErrorCode.SYSTEM_ERROR and caught.value.retryable


async def test_rate_limit_back_off(running: RunningSimulator) -> None:
    order = new_order(running)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(seconds)

    faults = running.sim.config.faults
    async with running.client(rate_limit_retries=3, rate_limit_backoff=0.02, sleep=sleep) as c:
        faults.rate_limit_next = 2
        assert await c.view_status(order.order_id) == OrderStatus.SUBMITTED
        assert pauses == [0.02, 0.04]

        pauses.clear()
        faults.rate_limit_next = 10
        try:
            with pytest.raises(RateLimited) as caught:
                await c.confirm(order.order_id)
        finally:
            faults.rate_limit_next = 0
        assert pauses == [0.02, 0.04, 0.08]
        assert caught.value.code == 711 and caught.value.retryable
    limited = [call for call in running.sim.api_log if call.error_code == 711]
    assert len(limited) == 2 + 4
    assert order.status == OrderStatus.SUBMITTED


async def test_unreachable_platform() -> None:
    async with MeituanClient("http://127.0.0.1:9/api/v1", timeout=2.0) as c:
        with pytest.raises(PlatformUnavailable) as caught:
            await c.view_status(1)
    assert caught.value.retryable


async def test_non_platform_answer(running: RunningSimulator) -> None:
    async with MeituanClient(f"{running.url}/nothing-here/", timeout=2.0) as c:
        with pytest.raises(PlatformUnavailable, match="404"):
            await c.view_status(1)


def test_from_env() -> None:
    default = MeituanClient.from_env({})
    assert (default.base_url, default.app_id, default.secret) == (
        DEFAULT_BASE_URL,
        DEFAULT_APP_ID,
        DEFAULT_APP_SECRET,
    )
    custom = MeituanClient.from_env(
        {
            "MEITUAN_BASE_URL": "https://waimaiopen.meituan.com/api/v1",
            "MEITUAN_APP_ID": "123",
            "MEITUAN_APP_SECRET": "s3",
        },
        timeout=httpx.Timeout(3.0),
    )
    assert custom.base_url == "https://waimaiopen.meituan.com/api/v1/"
    assert (custom.app_id, custom.secret) == ("123", "s3")
    signed = custom.signed_params("order/confirm", {"order_id": 5, "skip": None})
    assert set(signed) == {"order_id", "app_id", "timestamp", "sig"}
