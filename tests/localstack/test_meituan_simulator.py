"""The platform simulator over real HTTP: pushes to a receiver, auto-cancel (R6.1), couriers,
admin API, fault knobs (R2.1.2), and the order generator's realism and anomaly share."""

from __future__ import annotations

import asyncio
import math
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localstack.simulator import (
    AnomalyKind,
    BackgroundServer,
    OrderGenerator,
    SimConfig,
    Simulator,
    create_app,
    load_business,
)
from localstack.simulator.__main__ import build_config, parse_args
from meituan.client import AlreadyInState, MeituanClient, PlatformError
from meituan.codes import (
    DealOpType,
    ErrorCode,
    LogisticsStatus,
    OrderStatus,
    PlatformCancelReason,
    RefundStatus,
)
from meituan.models import (
    CancelPush,
    LogisticsPush,
    OrderPush,
    PartialRefundPush,
    PlatformModel,
    RefundPush,
    RefundStatusPush,
    RemindPush,
)
from meituan.pushes import PushDecodeError, PushKind, decode_push, is_probe, parse_form

ROOT = Path(__file__).resolve().parents[2]
PHONE = re.compile(r"^1[3-9]\d{9}(_\d{4})?$")
NAME = re.compile(r"^.\((先生|女士)\)$")


@dataclass
class Received:
    kind: PushKind
    method: str
    push: PlatformModel
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """A stand-in push gateway: verifies and decodes every push, answers `{"data":"ok"}`."""

    def __init__(self, app_id: str, secret: str) -> None:
        self.app_id = app_id
        self.secret = secret
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.probes = 0
        self.fail_next = 0
        route = Route("/meituan/push/{kind}", self.endpoint, methods=["GET", "POST"])
        self.app = Starlette(routes=[route])

    async def endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            form = dict(request.query_params)
        else:
            form = parse_form(await request.body())
        if is_probe(form):
            self.probes += 1
            return JSONResponse({"data": "ok"})
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"data": "ng"}, status_code=500)
        url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        kind = PushKind(request.path_params["kind"])
        try:
            push = decode_push(kind, form, url=url, secret=self.secret, app_id=self.app_id)
        except PushDecodeError as exc:
            self.errors.append(str(exc))
            return JSONResponse({"data": "ng"})
        self.received.append(Received(kind, request.method, push))
        return JSONResponse({"data": "ok"})

    def for_order(self, order_id: int, kind: PushKind | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if getattr(r.push, "order_id", None) == order_id and (kind is None or r.kind == kind)
        ]

    async def wait_for(self, check: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {[r.kind for r in self.received]}")
            await asyncio.sleep(0.02)


@dataclass
class Stack:
    sim: Simulator
    receiver: Receiver
    admin: httpx.AsyncClient
    client: MeituanClient


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack() -> AsyncIterator[Stack]:
    config = SimConfig(
        confirm_timeout_s=None,
        courier_step_s=0.05,
        push_retries=2,
        push_retry_delay_s=0.05,
        seed=11,
        empty_discount_rate=0.5,
    )
    receiver = Receiver(config.app_id, config.secret)
    async with BackgroundServer(receiver.app) as gateway:
        config.push_base = f"{gateway.url}/meituan/push"
        sim = Simulator(config)
        async with (
            BackgroundServer(create_app(sim)) as server,
            # Entered in order: `server.url` is read once the server is up.
            httpx.AsyncClient(base_url=server.url, timeout=5.0) as admin,
            MeituanClient(f"{server.url}/api/v1/", config.app_id, config.secret) as client,
        ):
            yield Stack(sim, receiver, admin, client)


@pytest.fixture(autouse=True)
def clean_faults(stack: Stack) -> None:
    stack.sim.config.faults.update(
        {"push_drop": 0, "push_duplicate": 0, "push_delay": 0, "push_reorder": 0}
    )
    stack.receiver.fail_next = 0


async def create(stack: Stack, **body: Any) -> dict[str, Any]:
    response = await stack.admin.post("/sim/orders", json=body)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_order_push_is_signed_double_encoded_and_matches(stack: Stack) -> None:
    view = await create(stack)
    oid = view["order_id"]
    await stack.receiver.wait_for(lambda: bool(stack.receiver.for_order(oid, PushKind.ORDER)))
    received = stack.receiver.for_order(oid, PushKind.ORDER)[0]
    assert received.method == "POST"
    pushed = received.push
    assert isinstance(pushed, OrderPush)
    platform = stack.sim.orders[oid].order
    exclude = {"app_id", "timestamp", "status"}
    assert pushed.model_dump(exclude=exclude) == platform.model_dump(exclude=exclude)
    assert pushed.status == OrderStatus.PUSHED
    assert not stack.receiver.errors

    raw = stack.sim.orders[oid].pushes[0].fields
    assert "%25" in raw["detail"] or "%" in raw["detail"]  # the second encoding is on the wire
    await stack.sim.drain()
    fetched = (await stack.admin.get(f"/sim/orders/{oid}")).json()
    assert fetched["status"] == OrderStatus.PUSHED
    assert fetched["pushes"][0]["state"] == "delivered"
    assert fetched["order"]["order_id"] == oid


async def test_create_with_fixed_fields_without_push(stack: Stack) -> None:
    view = await create(
        stack,
        app_poi_code="SH-HS-100",
        recipient_name="陆(先生)",
        recipient_phone="13812345678_1234",
        detail=[
            {"app_food_code": "S-PLM", "food_name": "水管疏通", "quantity": 1, "price": "150.00"}
        ],
        extras=[],
        push=False,
    )
    assert view["status"] == OrderStatus.SUBMITTED and view["pushes"] == []
    order = view["order"]
    assert order["recipient_name"] == "陆(先生)"
    assert order["recipient_phone"] == "13812345678_1234"
    assert Decimal(order["total"]) == Decimal("150.00")  # recomputed from the fixed lines
    assert view["anomaly"] is None
    assert stack.receiver.for_order(view["order_id"]) == []

    bad = await stack.admin.post("/sim/orders", json={"app_poi_code": "NOPE"})
    assert bad.status_code == 400
    dup = await stack.admin.post("/sim/orders", json={"order_id": view["order_id"]})
    assert dup.status_code == 409
    missing = await stack.admin.get("/sim/orders/1")
    assert missing.status_code == 404


async def test_auto_cancel_sends_cancel_push(stack: Stack) -> None:
    # R6.1: an order the store does not confirm in time is cancelled with reason 1001.
    stack.sim.config.confirm_timeout_s = 0.3
    try:
        late = (await create(stack, anomaly="none"))["order_id"]
        in_time = (await create(stack, anomaly="none"))["order_id"]
    finally:
        stack.sim.config.confirm_timeout_s = None
    assert await stack.client.confirm(in_time)
    receiver = stack.receiver
    await receiver.wait_for(lambda: bool(receiver.for_order(late, PushKind.CANCEL)))
    received = receiver.for_order(late, PushKind.CANCEL)[0]
    cancel = received.push
    assert isinstance(cancel, CancelPush)
    assert received.method == "GET"
    assert cancel.reason_code == PlatformCancelReason.NOT_CONFIRMED_IN_TIME
    assert cancel.deal_op_type == DealOpType.SYSTEM
    assert cancel.reason
    assert stack.sim.orders[late].status == OrderStatus.CANCELLED
    with pytest.raises(AlreadyInState) as caught:
        await stack.client.confirm(late)
    assert caught.value.current_status == OrderStatus.CANCELLED
    await asyncio.sleep(0.2)
    assert stack.sim.orders[in_time].status == OrderStatus.CONFIRMED
    assert receiver.for_order(in_time, PushKind.CANCEL) == []


async def test_courier_pushes_after_meal_ready(stack: Stack) -> None:
    oid = (await create(stack, app_poi_code="SH-PD-002"))["order_id"]
    assert stack.sim.orders[oid].platform_delivery
    await stack.client.confirm(oid)
    await asyncio.sleep(0.15)
    assert stack.receiver.for_order(oid, PushKind.LOGISTICS) == []  # not before ready
    await stack.client.preparation_complete(oid)
    receiver = stack.receiver

    def statuses() -> list[int]:
        pushes = receiver.for_order(oid, PushKind.LOGISTICS)
        return [r.push.logistics_status for r in pushes if isinstance(r.push, LogisticsPush)]

    await receiver.wait_for(lambda: LogisticsStatus.DELIVERED in statuses())
    assert statuses() == [0, 10, 20, 40]
    last = receiver.for_order(oid, PushKind.LOGISTICS)[-1].push
    assert isinstance(last, LogisticsPush)
    assert last.dispatcher_name.endswith("师傅") and PHONE.match(last.dispatcher_mobile)
    assert stack.sim.orders[oid].status == OrderStatus.COMPLETED
    assert await stack.client.view_status(oid) == OrderStatus.COMPLETED


async def test_self_delivery_has_no_courier(stack: Stack) -> None:
    oid = (await create(stack, app_poi_code="SH-XH-001"))["order_id"]
    await stack.client.confirm(oid)
    await stack.client.preparation_complete(oid)
    await asyncio.sleep(0.3)
    assert stack.receiver.for_order(oid, PushKind.LOGISTICS) == []
    assert stack.sim.orders[oid].status == OrderStatus.CONFIRMED


async def test_admin_events_send_their_pushes(stack: Stack) -> None:
    admin, receiver = stack.admin, stack.receiver
    oid = (await create(stack, app_poi_code="SH-XH-001", anomaly="none"))["order_id"]
    await stack.client.confirm(oid)

    remind = (await admin.post(f"/sim/orders/{oid}/remind")).json()
    partial = await admin.post(f"/sim/orders/{oid}/refund", json={"partial": True})
    assert partial.status_code == 200, partial.text
    await stack.client.refund_agree(oid, "同意")
    full = (await admin.post(f"/sim/orders/{oid}/refund", json={"reason": "送错了"})).json()
    await stack.client.refund_agree(oid, "同意")
    step = await admin.post(f"/sim/orders/{oid}/deliver", json={})
    assert step.status_code == 409  # cancelled by the full refund

    other = (await create(stack, app_poi_code="SH-XH-001"))["order_id"]
    moved = (await admin.post(f"/sim/orders/{other}/deliver", json={})).json()
    assert moved["logistics_status"] == 0
    cancelled = await admin.post(
        f"/sim/orders/{other}/cancel", json={"reason_code": 1202, "reason": "客服取消"}
    )
    assert cancelled.json()["status"] == OrderStatus.CANCELLED
    again = await admin.post(f"/sim/orders/{other}/cancel", json={})
    assert again.status_code == 409
    wrong = await admin.post(f"/sim/orders/{other}/cancel", json={"bogus": 1})
    assert wrong.status_code == 400

    await receiver.wait_for(lambda: len(receiver.for_order(oid)) >= 6)
    await receiver.wait_for(lambda: len(receiver.for_order(other)) >= 3)
    kinds = [r.kind for r in receiver.for_order(oid)]
    assert kinds == [
        PushKind.ORDER,
        PushKind.REMIND,
        PushKind.PARTIAL_REFUND,
        PushKind.REFUND_STATUS,
        PushKind.REFUND,
        PushKind.REFUND_STATUS,
    ]
    pushes = [r.push for r in receiver.for_order(oid)]
    assert isinstance(pushes[1], RemindPush) and pushes[1].remind_id == remind["remind_id"]
    part = pushes[2]
    assert isinstance(part, PartialRefundPush) and part.notify_type == "part"
    assert part.food and part.money == sum(f.refund_price * f.count for f in part.food)
    assert isinstance(pushes[3], RefundStatusPush)
    assert pushes[3].refund_status == RefundStatus.PARTIAL_SUCCEEDED
    refund = pushes[4]
    assert isinstance(refund, RefundPush) and refund.refund_id == full["refund_id"]
    assert refund.reason == "送错了"
    assert isinstance(pushes[5], RefundStatusPush)
    assert pushes[5].refund_status == RefundStatus.FULL_SUCCEEDED
    assert pushes[5].money == stack.sim.orders[oid].order.total
    support = receiver.for_order(other, PushKind.CANCEL)[0].push
    assert isinstance(support, CancelPush)
    assert (support.reason_code, support.deal_op_type, support.reason) == (1202, 3, "客服取消")
    assert [r.method for r in receiver.for_order(oid)][2] == "GET"


async def test_push_is_retried_until_ok(stack: Stack) -> None:
    stack.receiver.fail_next = 2
    oid = (await create(stack))["order_id"]
    await stack.sim.drain()
    record = stack.sim.orders[oid].pushes[0]
    assert [a.ok for a in record.attempts] == [False, False, True]
    assert record.state == "delivered"
    assert len(stack.receiver.for_order(oid, PushKind.ORDER)) == 1


async def test_dropped_push_is_not_sent(stack: Stack) -> None:
    faults = (await stack.admin.post("/sim/faults", json={"push_drop": 1.0})).json()
    assert faults["push_drop"] == 1.0
    oid = (await create(stack))["order_id"]
    await stack.sim.drain()
    await asyncio.sleep(0.1)
    assert stack.receiver.for_order(oid) == []
    view = (await stack.admin.get(f"/sim/orders/{oid}")).json()
    assert view["pushes"][0]["state"] == "dropped" and view["pushes"][0]["attempts"] == []
    # The patrol still finds it (R2.1.2).
    assert (
        await stack.client.get_order_id_by_day_seq(
            view["app_poi_code"], view["day_seq"], view["date"]
        )
        == oid
    )


async def test_the_next_calls_of_one_merchant_api_can_be_made_to_fail(stack: Stack) -> None:
    """A 700 for the next N calls of one API only: one failing lookup of the patrol (R2.1.2)."""
    view = await create(stack)
    lookup = "order/getOrderIdByDaySeq"
    faults = (await stack.admin.post("/sim/faults", json={"fail_next": {lookup: 2}})).json()
    assert faults["fail_next"] == {lookup: 2}
    where = (view["app_poi_code"], view["day_seq"], view["date"])
    for _ in range(2):
        with pytest.raises(PlatformError) as failed:
            await stack.client.get_order_id_by_day_seq(*where)
        assert failed.value.code == ErrorCode.SYSTEM_ERROR
        assert await stack.client.view_status(view["order_id"])  # another API answers
    assert await stack.client.get_order_id_by_day_seq(*where) == view["order_id"]
    assert stack.sim.config.faults.fail_next == {lookup: 0}


async def test_order_push_drop_spares_the_other_pushes(stack: Stack) -> None:
    """The patrol's case (R2.1.2): an order whose first push never came, later pushes intact."""
    await stack.admin.post("/sim/faults", json={"order_push_drop": 1.0})
    try:
        oid = (await create(stack))["order_id"]
        await stack.admin.post(f"/sim/orders/{oid}/remind")
        await stack.sim.drain()
    finally:
        await stack.admin.post("/sim/faults", json={"order_push_drop": 0})
    assert stack.receiver.for_order(oid, PushKind.ORDER) == []
    assert len(stack.receiver.for_order(oid, PushKind.REMIND)) == 1


async def test_duplicate_push_is_sent_twice(stack: Stack) -> None:
    await stack.admin.post("/sim/faults", json={"push_duplicate": 1.0})
    oid = (await create(stack))["order_id"]
    await stack.sim.drain()
    received = stack.receiver.for_order(oid, PushKind.ORDER)
    assert len(received) == 2
    assert received[0].push == received[1].push
    assert stack.sim.orders[oid].pushes[0].copies == 2


async def test_out_of_order_and_delayed_pushes(stack: Stack) -> None:
    await stack.admin.post("/sim/faults", json={"push_reorder": 1.0})
    oid = (await create(stack, anomaly="none"))["order_id"]
    await stack.admin.post("/sim/faults", json={"push_reorder": 0.0})
    assert stack.sim.orders[oid].pushes[0].state == "held"
    await stack.admin.post(f"/sim/orders/{oid}/cancel", json={})
    await stack.sim.drain()
    assert [r.kind for r in stack.receiver.for_order(oid)] == [PushKind.CANCEL, PushKind.ORDER]

    await stack.admin.post("/sim/faults", json={"push_delay": 1.0, "push_delay_s": 0.3})
    started = time.monotonic()
    late = (await create(stack))["order_id"]
    await stack.sim.drain()
    arrived = stack.receiver.for_order(late, PushKind.ORDER)[0].at
    assert arrived - started >= 0.3


async def test_api_shapes_over_http(stack: Stack) -> None:
    admin = stack.admin
    missing = (await admin.get("/api/v1/order/confirm")).json()
    assert missing == {"data": "ng", "error": {"code": 701, "msg": missing["error"]["msg"]}}
    params = stack.client.signed_params("order/confirm", {"order_id": 1})
    params["sig"] = "0" * 32
    assert (await admin.get("/api/v1/order/confirm", params=params)).json()["error"]["code"] == 703
    params = stack.client.signed_params("order/viewstatus", {"order_id": 1})
    assert (await admin.get("/api/v1/order/viewstatus", params=params)).json()["error"][
        "code"
    ] == 806
    oid = (await create(stack, push=False))["order_id"]
    params = stack.client.signed_params("order/viewstatus", {"order_id": oid})
    assert (await admin.get("/api/v1/order/viewstatus", params=params)).json() == {
        "data": {"status": 1}
    }
    params = stack.client.signed_params("order/confirm", {"order_id": oid})
    assert (await admin.get("/api/v1/order/confirm", params=params)).json() == {"data": "ok"}
    assert (await admin.get("/api/v1/order/applyPartRefund")).status_code == 405
    bad_knob = await admin.post("/sim/faults", json={"no_such_knob": 1})
    assert bad_knob.status_code == 400
    listed = (await admin.get("/sim/orders", params={"status": "4"})).json()["orders"]
    assert oid in [o["order_id"] for o in listed]
    assert (await admin.get("/sim/health")).json()["ok"] is True
    calls = (await admin.get("/sim/calls")).json()["calls"]
    assert any(c["error_code"] == 703 for c in calls)


async def test_probe(stack: Stack) -> None:
    before = stack.receiver.probes
    result = (await stack.admin.post("/sim/probe")).json()
    assert set(result) == {kind.value for kind in PushKind}
    assert all(answer == {"GET": True, "POST": True} for answer in result.values())
    assert stack.receiver.probes == before + 2 * len(PushKind)


async def test_same_seed_same_orders_and_faults() -> None:
    def run() -> tuple[list[tuple[int, Decimal, AnomalyKind | None]], list[str]]:
        config = SimConfig(push_base="http://127.0.0.1:9/push", confirm_timeout_s=None, seed=5)
        config.faults.push_drop = 0.5
        sim = Simulator(config)
        orders = [sim.create_order() for _ in range(30)]
        summary = [(o.order_id, o.order.total, o.anomaly) for o in orders]
        return summary, [p.state for p in sim.pushes]

    first, second = run(), run()
    assert first == second
    states = Counter(first[1])
    assert 5 < states["dropped"] < 25


def test_generator_totals_and_anomaly_share() -> None:
    business = load_business()
    generator = OrderGenerator(business, seed=42, anomaly_rate=0.2)
    catalogue = {item.sku: item for item in business.catalogue}
    now = time.time()
    orders = [generator.generate(now=now) for _ in range(2000)]

    kinds = Counter(o.anomaly for o in orders)
    share = 1 - kinds[None] / len(orders)
    assert 0.17 < share < 0.23, share
    assert set(kinds) - {None} == set(AnomalyKind)

    for generated in orders:
        order, kind = generated.order, generated.anomaly
        store = business.store(order.app_poi_code)
        assert order.original_price == order.expected_original_price
        assert order.total_consistent == (kind is not AnomalyKind.TOTAL_MISMATCH), kind
        assert order.total > 0
        if kind is None:
            assert PHONE.match(order.recipient_phone), order.recipient_phone
            assert NAME.match(order.recipient_name), order.recipient_name
            assert all(PHONE.match(p) for p in order.backup_recipient_phone)
            assert "上海市" in order.recipient_address
            assert order.latitude is not None and order.longitude is not None
            assert _km(store.latitude, store.longitude, order.latitude, order.longitude) <= (
                store.delivery_radius_km
            )
            for item in order.detail:
                sku = catalogue[item.app_food_code]
                assert sku.kind == store.order_type and not sku.prohibited
                assert item.price == sku.price and item.box_price == sku.box_price
            assert order.discount_amount <= order.items_amount * Decimal("0.4")
        if store.order_type == "service":
            assert order.shipping_fee == 0 and order.delivery_time > now
        else:
            assert order.shipping_fee > 0 and order.delivery_time == 0
            assert all(item.box_num == item.quantity for item in order.detail)
        assert order.logistics_code == ("0000" if store.self_delivery else order.logistics_code)
        assert generated.platform_delivery == (not store.self_delivery)

        skus = [item.app_food_code for item in order.detail]
        if kind is AnomalyKind.UNKNOWN_ITEM:
            assert any(sku not in catalogue for sku in skus)
        elif kind is AnomalyKind.PROHIBITED_ITEM:
            assert any(catalogue[sku].prohibited for sku in skus if sku in catalogue)
        elif kind is AnomalyKind.WRONG_PRICE:
            assert any(item.price != catalogue[item.app_food_code].price for item in order.detail)
        elif kind is AnomalyKind.EXCESSIVE_DISCOUNT:
            assert order.discount_amount >= order.expected_original_price * Decimal("0.8")
        elif kind is AnomalyKind.BAD_PHONE:
            assert not PHONE.match(order.recipient_phone)
        elif kind is AnomalyKind.MISSING_ADDRESS:
            assert order.latitude is None and len(order.address_text) <= 8
        elif kind is AnomalyKind.FAR_ADDRESS:
            assert order.latitude is not None and order.longitude is not None
            distance = _km(store.latitude, store.longitude, order.latitude, order.longitude)
            assert distance > store.delivery_radius_km * 1.5

    stores = Counter(o.order.app_poi_code for o in orders)
    assert set(stores) == {store.code for store in business.stores}
    assert any(o.order.extras for o in orders) and any(o.order.has_invoiced for o in orders)
    assert any("_" in o.order.recipient_phone for o in orders)
    assert any(o.order.address_geocoded for o in orders)


async def test_day_seq_counts_per_store() -> None:
    sim = Simulator(SimConfig(push_base=None, confirm_timeout_s=None, seed=3))
    seqs: dict[str, list[int]] = {}
    for _ in range(40):
        order = sim.create_order().order
        assert order.day_seq is not None
        seqs.setdefault(order.app_poi_code, []).append(order.day_seq)
    for values in seqs.values():
        assert values == list(range(1, len(values) + 1))
    await sim.aclose()


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


def test_cli_arguments() -> None:
    args = parse_args(
        ["--port", "8091", "--push-base", "none", "--confirm-timeout", "0", "--push-drop", "0.1"]
    )
    config = build_config(args)
    assert args.port == 8091
    assert config.push_base is None and config.confirm_timeout_s is None
    assert config.faults.push_drop == 0.1
    assert build_config(parse_args([])).push_base == "http://127.0.0.1:8080/meituan/push"


async def test_command_line_server_starts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEITUAN_")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "localstack.simulator",
        "--port",
        str(port),
        "--push-base",
        "none",
        "--log-level",
        "warning",
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 15
            while True:
                try:
                    health = await http.get("/sim/health")
                    break
                except httpx.TransportError:
                    assert process.returncode is None, "simulator exited"
                    assert time.monotonic() < deadline, "simulator did not start"
                    await asyncio.sleep(0.1)
            assert health.json()["app_id"] == "orderflow-dev"
            created = (await http.post("/sim/orders", json={})).json()
            async with MeituanClient(f"http://127.0.0.1:{port}/api/v1/") as client:
                assert await client.view_status(created["order_id"]) == OrderStatus.PUSHED
    finally:
        if process.returncode is None:
            process.terminate()
        _, stderr = await process.communicate()
    assert b"meituan simulator on" in stderr
