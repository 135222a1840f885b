"""The push gateway against a real Temporal dev server, the simulator and PostgreSQL (R2.1.1,
R6.3.1, R6.3.2): a push is answered ok only once Temporal holds it as a workflow start or a
signal; a push that cannot be read, verified or handed over is answered ng and kept.

No worker runs: the server accepts starts and signals without one, and the workflow's history
shows exactly what the gateway handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from localstack.simulator import (
    BackgroundServer,
    RunningSimulator,
    SimConfig,
    SimOrder,
    serve_simulator,
)
from meituan.codes import LogisticsStatus, OrderStatus, PlatformCancelReason
from meituan.intake import to_platform_order
from meituan.models import (
    CancelPush,
    LogisticsPush,
    OrderPush,
    PartialRefundPush,
    PlatformModel,
    RefundFood,
    RefundPush,
    RefundStatusPush,
    RemindPush,
)
from meituan.pushes import PushKind, encode_fields, encode_order_push, encode_push
from schemas.messages import (
    CustomerReminder,
    DeliveryStatus,
    PlatformCancel,
    PlatformRefund,
    RefundNotice,
)
from schemas.order import OrderInput
from starter.gateway import GatewaySettings, create_app
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.infra.test_redaction import captured as captured
from tests.infra.test_redaction import lines

SETTINGS = GatewaySettings()
SIGNALS: Mapping[str, type] = {
    "platform_cancel": PlatformCancel,
    "platform_refund": PlatformRefund,
    "delivery_status": DeliveryStatus,
    "customer_reminder": CustomerReminder,
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=5)
    async with serve_simulator(config) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(
    dev_server: WorkflowEnvironment, running: RunningSimulator, db_pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(dev_server, running, db_pool) as client:
        yield client


@contextlib.asynccontextmanager
async def gateway_client(
    dev_server: WorkflowEnvironment, running: RunningSimulator, pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in process, with the simulator as the platform, as HTTP sees it."""
    async with running.client() as meituan:
        app = create_app(dev_server.client, pool, SETTINGS, meituan=meituan)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


# --- helpers ------------------------------------------------------------------------------------


def new_order(running: RunningSimulator, **fields: Any) -> SimOrder:
    return running.sim.create_order({"app_poi_code": "SH-XH-001", **fields}, push=False)


def signed(kind: PushKind, push: PlatformModel, **overrides: Any) -> dict[str, str]:
    options: dict[str, Any] = {
        "url": SETTINGS.push_url(kind),
        "app_id": SETTINGS.app_id,
        "secret": SETTINGS.app_secret,
    }
    options.update(overrides)
    return encode_push(kind, push, **options)


async def send(
    http: httpx.AsyncClient, kind: PushKind, fields: Mapping[str, str], method: str = "POST"
) -> httpx.Response:
    path = f"/meituan/push/{kind.value}"
    if method == "GET":
        return await http.get(path, params=dict(fields))
    return await http.post(path, data=dict(fields))


def is_ok(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"data": "ok"}


async def history(client: Client, order_id: int) -> tuple[OrderInput, list[tuple[str, Any]]]:
    """The start input and the signals, decoded, of an order's workflow."""
    events = (await client.get_workflow_handle(f"order-{order_id}").fetch_history()).events
    assert events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    started = events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "OrderWorkflow"
    assert started.task_queue.name == "orders"
    [inp] = await client.data_converter.decode(started.input.payloads, [OrderInput])
    signals: list[tuple[str, Any]] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            [arg] = await client.data_converter.decode(
                attrs.input.payloads, [SIGNALS[attrs.signal_name]]
            )
            signals.append((attrs.signal_name, arg))
    return inp, signals


async def rejected(pool: asyncpg.Pool, marker: str) -> list[asyncpg.Record]:
    """Rows of `rejected_pushes` whose raw body or query mentions `marker`."""
    return await pool.fetch(
        "SELECT * FROM rejected_pushes WHERE raw_body LIKE $1 OR query LIKE $1 ORDER BY push_id",
        f"%{marker}%",
    )


async def push_order(http: httpx.AsyncClient, order: OrderPush) -> httpx.Response:
    fields = encode_order_push(
        order,
        url=SETTINGS.push_url(PushKind.ORDER),
        app_id=SETTINGS.app_id,
        secret=SETTINGS.app_secret,
        empty_discount=True,
    )
    return await send(http, PushKind.ORDER, fields)


# --- the mapping (meituan.intake) -------------------------------------------------------------


def test_mapping_keeps_money_and_reads_delivery() -> None:
    push = OrderPush.model_validate(
        {
            "order_id": 27061900311184578,
            "wm_order_id_view": 10061900311184578,
            "app_poi_code": "SH-XH-001",
            "recipient_name": "陆(先生)",
            "recipient_phone": "13812345678_1234",
            "recipient_address": "汇成一村8号楼1202室@#上海市徐汇区漕溪北路1200弄",
            "latitude": 31.186512,
            "longitude": 121.438211,
            "shipping_fee": "5.0",
            "total": "91.5",
            "original_price": "99.5",
            "caution": "少放辣",
            "ctime": 1761874800,
            "delivery_time": 1761879600,
            "day_seq": 12,
            "logistics_code": "1001",
            "package_bag_money": "50",  # fen
            "detail": '[{"app_food_code":"G-HSR","food_name":"红烧肉","quantity":1,"price":48.0,'
            '"box_num":1,"box_price":1.0,"spec":"大份"},{"app_food_code":"G-XLB",'
            '"food_name":"小笼包","quantity":2,"price":22.0,"box_num":0.5,"box_price":1.0}]',
            "extras": '[{"reduce_fee":8.0,"mt_charge":1.0,"poi_charge":7.0,"remark":"满50减8",'
            '"type":2},{}]',
        }
    )
    order = to_platform_order(push)
    assert order.order_id == "27061900311184578"
    assert order.view_id == "10061900311184578"
    assert (order.customer.name, order.customer.phone) == ("陆(先生)", "13812345678_1234")
    assert order.customer.address == "汇成一村8号楼1202室"
    assert (order.customer.latitude, order.customer.longitude) == (31.186512, 121.438211)
    first, second = order.items
    assert (first.sku, first.name, first.quantity, first.unit_price) == (
        "G-HSR",
        "红烧肉",
        1,
        Decimal("48.0"),
    )
    assert (first.box_num, first.box_price, first.spec) == (1, Decimal("1.0"), "大份")
    # Half a box each is kept as money: one box of the line's box amount.
    assert (second.box_num, second.box_price) == (1, Decimal("0.50"))
    [discount] = order.discounts
    assert (discount.kind, discount.amount, discount.merchant_share) == (
        2,
        Decimal("8.0"),
        Decimal("7.0"),
    )
    assert (order.shipping_fee, order.package_fee, order.total) == (
        Decimal("5.0"),
        Decimal("0.5"),
        Decimal("91.5"),
    )
    assert order.original_price == Decimal("99.5")
    assert order.remarks == "少放辣"
    assert order.created_at == datetime.fromtimestamp(1761874800, UTC)
    assert order.expected_at == datetime.fromtimestamp(1761879600, UTC)
    assert (order.pickup, order.platform_delivery, order.day_seq) == (False, True, 12)

    def delivery(**fields: Any) -> tuple[bool, bool, datetime | None]:
        mapped = to_platform_order(push.model_copy(update=fields))
        return mapped.pickup, mapped.platform_delivery, mapped.expected_at

    assert delivery(logistics_code="0000", delivery_time=0) == (False, False, None)
    assert delivery(logistics_code="") == (False, False, order.expected_at)
    # The store's own delivery under the platform's other two codes (go-meituan logistics_code.go)
    assert delivery(logistics_code="00009002")[1] is False
    assert delivery(logistics_code="00009003")[1] is False
    assert delivery(logistics_code="1001")[1] is True
    assert delivery(logistics_code="1003", is_third_shipping=1)[1] is False
    assert delivery(pick_type=1) == (True, False, order.expected_at)


# --- the gateway ------------------------------------------------------------------------------


async def test_probe_and_health(http: httpx.AsyncClient) -> None:
    for kind in PushKind:
        for method in ("GET", "POST"):
            response = await http.request(method, f"/meituan/push/{kind.value}", content=b"")
            assert is_ok(response), (kind, method, response.text)
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"ok": True, "temporal": "ok", "database": "ok"}


async def test_every_line_logged_for_a_push_names_its_order(
    http: httpx.AsyncClient, running: RunningSimulator, captured: io.StringIO
) -> None:
    push = new_order(running).current()
    assert is_ok(await push_order(http, push))
    records = [r for r in lines(captured) if r["logger"] == "orderflow.gateway"]
    assert records, "the gateway logged nothing for the push"
    assert all(
        r["order_id"] == str(push.order_id) and r["workflow_id"] == f"order-{push.order_id}"
        for r in records
    ), records


async def test_order_push_starts_one_workflow(
    http: httpx.AsyncClient, running: RunningSimulator, dev_server: WorkflowEnvironment
) -> None:
    sim_order = new_order(running)
    push = sim_order.current()
    first = await push_order(http, push)
    assert is_ok(first), first.text
    handle = dev_server.client.get_workflow_handle(f"order-{push.order_id}")
    started = await handle.describe()
    second = await push_order(http, push)  # the platform pushes twice
    assert is_ok(second), second.text

    description = await handle.describe()
    assert description.run_id == started.run_id  # still the one run
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.workflow_type == "OrderWorkflow"
    assert description.task_queue == "orders"
    inp, signals = await history(dev_server.client, push.order_id)
    assert inp == OrderInput(order=to_platform_order(push), source="push")
    assert inp.order.store_code == "SH-XH-001"
    assert inp.order.total == push.total
    assert isinstance(inp.order.total, Decimal)
    assert [i.sku for i in inp.order.items] == [line.app_food_code for line in push.detail]
    assert inp.order.platform_delivery is sim_order.platform_delivery
    assert signals == []


async def _counts(http: httpx.AsyncClient) -> dict[str, float]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        sample: float(value)
        for line in response.text.splitlines()
        if line and not line.startswith("#")
        for sample, value in [line.rsplit(" ", 1)]
    }


async def test_metrics_count_pushes_accepted_and_refused_by_kind(
    http: httpx.AsyncClient, running: RunningSimulator
) -> None:
    """What Prometheus scrapes (the compose dashboard's gateway panels)."""
    before = await _counts(http)
    push = new_order(running).current()
    assert is_ok(await push_order(http, push))
    assert is_ok(await push_order(http, push))  # the platform pushes twice
    forged = encode_order_push(
        push, url=SETTINGS.push_url(PushKind.ORDER), app_id=SETTINGS.app_id, secret="not-ours"
    )
    assert (await send(http, PushKind.ORDER, forged)).status_code == 400
    after = await _counts(http)
    accepted = 'orderflow_gateway_pushes_accepted_total{kind="order",held="%s"}'
    refused = 'orderflow_gateway_pushes_refused_total{kind="order",code="703"}'
    for sample in (accepted % "started", accepted % "duplicate", refused):
        assert after[sample] - before.get(sample, 0) == 1, sample


async def test_bad_signature_is_refused_and_kept(
    http: httpx.AsyncClient, running: RunningSimulator, db_pool: asyncpg.Pool
) -> None:
    push = new_order(running).current()
    fields = encode_order_push(
        push,
        url=SETTINGS.push_url(PushKind.ORDER),
        app_id=SETTINGS.app_id,
        secret="someone-elses-secret",
    )
    response = await send(http, PushKind.ORDER, fields)
    assert response.status_code == 400
    assert response.json()["data"] == "ng"
    assert response.json()["error"]["code"] == 703
    # Whoever sent it is unknown: its metadata, parameter names and a hash, not its body.
    body = urlencode(fields).encode()
    [row] = await db_pool.fetch(
        "SELECT * FROM rejected_pushes WHERE body_sha256 = $1", hashlib.sha256(body).hexdigest()
    )
    assert row["route"] == "/meituan/push/order"
    assert row["method"] == "POST"
    assert (row["raw_body"], row["query"]) == ("", "")
    assert row["field_names"] == sorted(fields)
    assert row["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert "signature" in row["reason"]
    assert row["refused"] and row["received_at"] is not None
    assert await rejected(db_pool, str(push.order_id)) == []

    # A push signed for another push URL (a mismatched console setting) fails the same way.
    cancel = CancelPush(order_id=push.order_id, reason_code=1101, reason="不想要了")
    wrong_url = signed(PushKind.CANCEL, cancel, url=SETTINGS.push_url(PushKind.ORDER))
    response = await send(http, PushKind.CANCEL, wrong_url, method="GET")
    assert (response.status_code, response.json()["error"]["code"]) == (400, 703)


async def test_malformed_pushes_are_refused_and_kept(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    marker = str(uuid.uuid4().int % 10**15)
    # Correctly signed, but `detail` is not JSON.
    values = {
        "order_id": marker,
        "app_poi_code": "SH-XH-001",
        "total": "10.0",
        "detail": "[not json",
    }
    fields = encode_fields(
        PushKind.ORDER,
        values,
        url=SETTINGS.push_url(PushKind.ORDER),
        app_id=SETTINGS.app_id,
        secret=SETTINGS.app_secret,
    )
    response = await send(http, PushKind.ORDER, fields)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 705
    assert "detail" in response.json()["error"]["msg"]

    # Correctly signed, without the cancellation's reason_code.
    missing = encode_fields(
        PushKind.CANCEL,
        {"order_id": marker, "reason": "x"},
        url=SETTINGS.push_url(PushKind.CANCEL),
        app_id=SETTINGS.app_id,
        secret=SETTINGS.app_secret,
    )
    response = await send(http, PushKind.CANCEL, missing, method="GET")
    assert (response.status_code, response.json()["error"]["code"]) == (400, 701)

    # Another app's push.
    other = signed(PushKind.CANCEL, CancelPush(order_id=int(marker), reason_code=1101), app_id="x")
    response = await send(http, PushKind.CANCEL, other)
    assert (response.status_code, response.json()["error"]["code"]) == (400, 702)

    # Not even UTF-8.
    not_utf8 = b"order_id=" + marker.encode() + b"&remind_id=\xff\xfe"
    response = await http.post(
        "/meituan/push/remind",
        content=not_utf8,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["data"] == "ng"

    # The signed ones are kept whole; the unreadable one, unsigned, as names and a hash.
    rows = await rejected(db_pool, marker)
    assert [r["route"] for r in rows] == [
        "/meituan/push/order",
        "/meituan/push/cancel",
        "/meituan/push/cancel",
    ]
    assert rows[1]["method"] == "GET"
    assert marker in rows[1]["query"]
    [unread] = await db_pool.fetch(
        "SELECT * FROM rejected_pushes WHERE body_sha256 = $1", hashlib.sha256(not_utf8).hexdigest()
    )
    assert (unread["route"], unread["raw_body"]) == ("/meituan/push/remind", "")
    assert unread["field_names"] == ["order_id", "remind_id"]
    assert all(r["reason"] for r in [*rows, unread])


async def test_temporal_down_answers_503_and_keeps_the_push(
    running: RunningSimulator, db_pool: asyncpg.Pool
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = await Client.connect(
        f"127.0.0.1:{closed}", data_converter=pydantic_data_converter, lazy=True
    )
    push = new_order(running).current()
    async with running.client() as meituan:
        app = create_app(down, db_pool, SETTINGS, meituan=meituan)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await push_order(client, push)
            cancel = signed(PushKind.CANCEL, CancelPush(order_id=push.order_id, reason_code=1101))
            cancelled = await send(client, PushKind.CANCEL, cancel, method="GET")
            health = await client.get("/healthz")
    for answer in (response, cancelled):
        assert answer.status_code == 503
        assert answer.json()["data"] == "ng"
        assert answer.json()["error"]["code"] == 700
    assert health.status_code == 503
    assert health.json()["temporal"] == "unreachable"  # the detail is logged, not answered
    rows = await rejected(db_pool, str(push.order_id))
    assert [r["route"] for r in rows] == ["/meituan/push/order", "/meituan/push/cancel"]
    assert all("Temporal" in r["reason"] for r in rows)


async def test_cancel_of_a_running_order_is_a_signal(
    http: httpx.AsyncClient, running: RunningSimulator, dev_server: WorkflowEnvironment
) -> None:
    sim_order = new_order(running)
    assert is_ok(await push_order(http, sim_order.current()))
    running.sim.user_cancel(sim_order.order_id)
    cancel = CancelPush(
        order_id=sim_order.order_id,
        reason_code=PlatformCancelReason.USER_1101,
        reason="用户取消订单",
        deal_op_type=1,
    )
    response = await send(http, PushKind.CANCEL, signed(PushKind.CANCEL, cancel), method="GET")
    assert is_ok(response), response.text
    _, signals = await history(dev_server.client, sim_order.order_id)
    assert signals == [
        (
            "platform_cancel",
            PlatformCancel(reason_code=1101, reason="用户取消订单", deal_op_type=1),
        )
    ]
    # The running workflow was signalled: the platform was not asked for the order.
    assert "order/getOrderDetail" not in [c.name for c in sim_order.calls]


async def test_cancel_of_an_unknown_order_starts_it_with_the_signal(
    http: httpx.AsyncClient, running: RunningSimulator, dev_server: WorkflowEnvironment
) -> None:
    # The order push was lost; the cancellation is the first Temporal hears of the order.
    sim_order = new_order(running)
    running.sim.user_cancel(sim_order.order_id)
    cancel = CancelPush(order_id=sim_order.order_id, reason_code=1201, reason="客服取消")
    response = await send(http, PushKind.CANCEL, signed(PushKind.CANCEL, cancel), method="GET")
    assert is_ok(response), response.text
    assert "order/getOrderDetail" in [c.name for c in sim_order.calls]
    inp, signals = await history(dev_server.client, sim_order.order_id)
    assert inp.order.order_id == str(sim_order.order_id)
    assert inp.order.items == to_platform_order(sim_order.current()).items
    assert signals == [("platform_cancel", PlatformCancel(reason_code=1201, reason="客服取消"))]
    description = await dev_server.client.get_workflow_handle(
        f"order-{sim_order.order_id}"
    ).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert sim_order.status == OrderStatus.CANCELLED


async def test_courier_reminder_and_refund_pushes_are_signals(
    http: httpx.AsyncClient, running: RunningSimulator, dev_server: WorkflowEnvironment
) -> None:
    sim_order = new_order(running)
    oid = sim_order.order_id
    assert is_ok(await push_order(http, sim_order.current()))
    logistics = LogisticsPush(
        order_id=oid,
        logistics_status=LogisticsStatus.PICKED_UP,
        time=1761876000,
        dispatcher_name="王师傅",
        dispatcher_mobile="13900001111",
    )
    remind = RemindPush(order_id=oid, remind_id=4242, remind_time=1761876100)
    refund = RefundPush(order_id=oid, refund_id=77, notify_type="apply", reason="少送了")
    partial = PartialRefundPush(
        order_id=oid,
        refund_id=78,
        notify_type="apply",
        reason="一份不对",
        food=[RefundFood(app_food_code="G-HSR", count=1, refund_price=Decimal("48.00"))],
        money=Decimal("48.00"),
    )
    answers = [
        await send(http, PushKind.LOGISTICS, signed(PushKind.LOGISTICS, logistics)),
        await send(http, PushKind.REMIND, signed(PushKind.REMIND, remind)),
        await send(http, PushKind.REFUND, signed(PushKind.REFUND, refund), method="GET"),
        await send(
            http, PushKind.PARTIAL_REFUND, signed(PushKind.PARTIAL_REFUND, partial), method="GET"
        ),
    ]
    assert all(is_ok(a) for a in answers), [a.text for a in answers]
    _, signals = await history(dev_server.client, oid)
    assert signals == [
        (
            "delivery_status",
            DeliveryStatus(
                status=20,
                at=datetime.fromtimestamp(1761876000, UTC),
                courier_name="王师傅",
                courier_phone="13900001111",
            ),
        ),
        ("customer_reminder", CustomerReminder(remind_id="4242")),
        (
            "platform_refund",
            PlatformRefund(refund_id="77", notify_type=RefundNotice.APPLY, reason="少送了"),
        ),
        (
            "platform_refund",
            PlatformRefund(
                refund_id="78",
                notify_type=RefundNotice.APPLY,
                reason="一份不对",
                partial=True,
                amount=Decimal("48.00"),
            ),
        ),
    ]


async def test_refund_status_is_recorded(http: httpx.AsyncClient, db_pool: asyncpg.Pool) -> None:
    refund_id = uuid.uuid4().int % 10**12
    status = RefundStatusPush(refund_id=refund_id, refund_status=3, money=Decimal("92.00"))
    response = await send(http, PushKind.REFUND_STATUS, signed(PushKind.REFUND_STATUS, status))
    assert is_ok(response), response.text
    [row] = await rejected(db_pool, f"refund_id={refund_id}")
    assert row["route"] == "/meituan/push/refund-status"
    assert row["reason"].startswith("accepted and recorded")


async def test_push_for_a_closed_order_is_accepted_and_kept(
    http: httpx.AsyncClient,
    running: RunningSimulator,
    dev_server: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
) -> None:
    sim_order = new_order(running)
    oid = sim_order.order_id
    assert is_ok(await push_order(http, sim_order.current()))
    handle = dev_server.client.get_workflow_handle(f"order-{oid}")
    run_id = (await handle.describe()).run_id
    await handle.terminate("test")
    remind = RemindPush(order_id=oid, remind_id=9)
    response = await send(http, PushKind.REMIND, signed(PushKind.REMIND, remind))
    assert is_ok(response), response.text
    again = await push_order(http, sim_order.current())
    assert is_ok(again), again.text
    _, signals = await history(dev_server.client, oid)
    assert signals == []
    description = await handle.describe()  # the terminated run; no new one started
    assert (description.run_id, description.status) == (
        run_id,
        WorkflowExecutionStatus.TERMINATED,
    )
    [row] = await rejected(db_pool, f"order_id={oid}&remind_id=9")
    assert "ended" in row["reason"]


async def test_simulator_pushes_over_http(
    running: RunningSimulator, dev_server: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    """The platform stand-in probes and pushes to a real uvicorn server: GET and POST forms,
    its own signing and double encoding, all answered ok and all in the workflow."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = GatewaySettings(push_base_url=f"http://127.0.0.1:{port}/meituan/push")
    sim = running.sim
    async with running.client() as meituan:
        app = create_app(dev_server.client, db_pool, settings, meituan=meituan)
        async with BackgroundServer(app, port=port):
            sim.config.push_base = settings.push_base_url
            try:
                probe = await sim.probe()
                sim_order = sim.create_order({"app_poi_code": "SH-PD-002"})
                await sim.drain()
                sim.remind(sim_order.order_id)
                sim.courier_step(sim_order.order_id)
                sim.apply_refund(sim_order.order_id, partial=True)
                sim.user_cancel(sim_order.order_id)
                async with asyncio.timeout(20):
                    await sim.drain()
            finally:
                sim.config.push_base = None
    assert all(all(answers.values()) for answers in probe.values()), probe
    assert [(p.kind.value, p.state) for p in sim_order.pushes] == [
        ("order", "delivered"),
        ("remind", "delivered"),
        ("logistics", "delivered"),
        ("partial-refund", "delivered"),
        ("cancel", "delivered"),
    ]
    inp, signals = await history(dev_server.client, sim_order.order_id)
    assert inp.order == to_platform_order(sim_order.order)
    assert inp.order.platform_delivery  # the Pudong kitchen uses the platform's couriers
    assert [name for name, _ in signals] == [
        "customer_reminder",
        "delivery_status",
        "platform_refund",
        "platform_cancel",
    ]
    assert signals[2][1].partial is True
