"""Personal data kept out of logs (the masking processor) and out of reporting (the database
roles and masked views of migration 0007)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import structlog
from temporalio import activity
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from activities.notify import Notifier
from activities.orders import OrderRecords
from activities.policy import load_policy
from infra import database as db
from infra.logging import (
    MASK,
    SECRET_MASK,
    configure_logging,
    get_logger,
    mask_phones,
    mask_text,
    redact,
    redact_event,
)
from schemas.messages import MarkDelivered, MarkReady
from schemas.notices import Audience, Notification
from schemas.order import OrderInput, Stage
from schemas.people import Person, Role
from schemas.reads import OrderFilter
from schemas.records import RecordEvent, RecordOrder, TimelineEntry
from starter import order_reads, work_reads
from starter.api import admin as admin_api
from starter.api import admin_people, admin_stock, measures, tokens
from tests import jitter
from tests.db_fixtures import as_role, make_order
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.doubles import Business
from tests.orders import GOODS_STORE, at_stage, platform_order
from workers.interceptors import LogContextInterceptor
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

PHONE, NAME, ADDRESS = "13812345678", "陆(先生)", "上海市徐汇区漕溪北路100号"
ANY_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


# --- the processor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("13812345678", "138****5678"),
        ("13812345678_1234", "138****5678_****"),  # the platform's privacy number
        ("+86 138 1234 5678", "138****5678"),
        ("86-13812345678", "138****5678"),
        ("电话13812345678转123请联系", "电话138****5678_****请联系"),
        ("021-64381234", "021****1234"),
        ("0755 8888 6666", "075****6666"),
        ("010-1234567", "010****4567"),
        ("uuid 1f0e2d3c-0123-4567-89ab-0123456789ab", "uuid 1f0e2d3c-0123-4567-89ab-0123456789ab"),
        ("07558888666", "075****8666"),
        ("order 27061900311184578 at 1761874800", "order 27061900311184578 at 1761874800"),
        ("amount 138.12345678", "amount 138.12345678"),
    ],
)
def test_phones_in_text(text: str, masked: str) -> None:
    assert mask_phones(text) == masked


def test_nested_event_dict_is_masked_by_key_and_in_text() -> None:
    event = {
        "event": f"push for {NAME}: call 13812345678_1234 or 021-64381234",
        "level": "info",
        "order": {
            "order_id": "27061900311184578",
            "recipient_name": NAME,
            "recipient_phone": "13812345678_1234",
            "backup_recipient_phone": ["13912345678", "18600001111"],
            "recipient_address": ADDRESS,
            "detail": [{"food_name": "红烧肉", "quantity": 1}],
            "caution": "到了打13812345678",
        },
        "customer": {"name": NAME, "phone": PHONE, "address": ADDRESS, "latitude": 31.19},
        "changes": [{"name": "王五", "Phone": "13700001111", "Address": "北京市朝阳区"}],
        "staff": ("S-101", {"phone": "02164381234"}),
        "headers": {"Authorization": "Bearer abc", "X-Sig": "x"},
        "sig": "0123456789abcdef",
        "app_secret": "s3cret",
        "note": "form recipient_name=%E9%99%86&recipient_address=abc&app_secret=s3cret",
        "count": 3,
        "ok": True,
    }
    out = redact_event(None, "info", dict(event))
    # Prose names cannot be recognised: everything but the message is checked for them.
    rendered = json.dumps({k: v for k, v in out.items() if k != "event"}, ensure_ascii=False)
    for plain in (PHONE, "13912345678", "18600001111", "13700001111", "64381234", NAME, ADDRESS):
        assert plain not in rendered, plain
    assert "王五" not in rendered and "北京市朝阳区" not in rendered
    assert "s3cret" not in rendered and "Bearer abc" not in rendered
    assert out["order"]["recipient_phone"] == "138****5678_****"
    assert out["order"]["recipient_name"] == "陆**"
    assert out["order"]["recipient_address"] == MASK
    assert out["order"]["backup_recipient_phone"] == ["139****5678", "186****1111"]
    assert out["order"]["caution"] == MASK  # the customer's own words
    assert out["order"]["detail"] == [{"food_name": "红烧肉", "quantity": 1}]  # not personal
    assert out["order"]["order_id"] == "27061900311184578"
    assert out["customer"] == MASK
    assert out["changes"] == [{"name": "王**", "Phone": "137****1111", "Address": MASK}]
    assert out["staff"] == ["S-101", {"phone": "021****1234"}]
    assert out["headers"]["Authorization"] == SECRET_MASK
    assert out["sig"] == SECRET_MASK and out["app_secret"] == SECRET_MASK
    assert (out["count"], out["ok"], out["level"]) == (3, True, "info")
    assert out["event"].startswith("push for 陆(先生): call 138****5678_****")  # prose: not a key


def test_reprs_and_json_in_text_are_masked_field_by_field() -> None:
    order = platform_order("1", GOODS_STORE, datetime(2030, 1, 1, tzinfo=UTC))
    for text in (repr(order), order.model_dump_json(), str(order.model_dump())):
        masked = mask_text(text)
        assert PHONE not in masked and NAME not in masked and ADDRESS not in masked, masked
        assert "SH-XH-001" in masked  # the rest is left readable
    assert redact(order)["customer"] == MASK


# --- configure_logging --------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure_logging into a buffer; the logging set-up is put back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    routed = ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio")
    saved_routed: dict[str, tuple[list[logging.Handler], bool]] = {}
    for name in routed:
        logger = logging.getLogger(name)
        saved_routed[name] = (list(logger.handlers), logger.propagate)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, (handlers, propagate) in saved_routed.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate = propagate
        structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_configure_logging_writes_masked_json_lines(captured: io.StringIO) -> None:
    logging.getLogger("orderflow.gateway").info("order push from %s", "13812345678_1234")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/1.1" %d',
        "127.0.0.1:5000",
        "GET",
        "/meituan/push/cancel?order_id=1&sig=abcdef0123&reason=13812345678",
        200,
    )
    get_logger("orderflow.test").info("recorded", customer={"name": NAME}, phone=PHONE, n=1)
    try:
        raise RuntimeError(f"constraint failed for customer_phone={PHONE}")
    except RuntimeError:
        logging.getLogger("temporalio.activity").exception("activity failed")
    logging.getLogger("orderflow.quiet").debug("below the level: %s", PHONE)

    records = lines(captured)
    text = captured.getvalue()
    assert PHONE not in text and NAME not in text and "abcdef0123" not in text
    assert [r["logger"] for r in records] == [
        "orderflow.gateway",
        "uvicorn.access",
        "orderflow.test",
        "temporalio.activity",
    ]
    assert records[0]["event"] == "order push from 138****5678_****"
    assert records[0]["level"] == "info" and records[0]["timestamp"].endswith("Z")
    assert "sig=[secret]" in records[1]["event"]
    assert records[2]["customer"] == MASK and records[2]["phone"] == "138****5678"
    assert records[2]["n"] == 1
    assert "RuntimeError" in records[3]["exception"]
    assert "customer_phone=138****5678" in records[3]["exception"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7d9a-4bc4 200",
            "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=[secret] 200",
        ),
        (
            "hook https://open.feishu.cn/open-apis/bot/v2/hook/2f3c4d5e-aaaa-bbbb failed",
            "hook https://open.feishu.cn/open-apis/bot/v2/hook/[secret] failed",
        ),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=abc123&timestamp=1&sign=xyz",
            "https://oapi.dingtalk.com/robot/send?access_token=[secret]&timestamp=1&sign=[secret]",
        ),
        (
            "cannot reach postgresql://orderflow:hunter2@db:5432/orderflow",
            "cannot reach postgresql://orderflow:[secret]@db:5432/orderflow",
        ),
        ("redis://:hunter2@cache:6379/0", "redis://:[secret]@cache:6379/0"),
        ("postgresql://u:pa/ss@w@db/orders", "postgresql://u:[secret]@db/orders"),
        (
            "https://app/cb#access_token=abc&refresh_token=def",
            "https://app/cb#access_token=[secret]&refresh_token=[secret]",
        ),
        ("deadline key=prepare breached", "deadline key=prepare breached"),  # not in a URL
    ],
)
def test_credentials_in_urls_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("地址：上海市徐汇区漕溪北路88号 备注：不要辣", "地址：*** 备注：不要辣"),
        ("收货人: 陆先生，电话：021-64870000", "收货人: ***，电话：***"),
        ("身份证号 11010519491231002X 已核验", "身份证号 110***2X 已核验"),  # valid check digit
        ("customer 11010519491231002x", "customer 110***2x"),
        ("银行卡号：6222021234567890128", "银行卡号：***"),
        ("refund to 6222 0212 3456 7890 128", "refund to ***0128"),  # groups of four, Luhn
        # Order ids and run ids stay: no check digit, no groups, no label.
        ("order 110105194912310021 started", "order 110105194912310021 started"),
        ("order_id=27615631004214298", "order_id=27615631004214298"),
        ("card 6228 4800 1234 5678", "card 6228 4800 1234 5678"),  # fails the Luhn check
    ],
)
def test_chinese_labels_identity_and_card_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_http_clients_request_lines_are_not_written(captured: io.StringIO) -> None:
    """httpx writes every request's full URL at INFO: below the line, whatever the level."""
    configure_logging("DEBUG", stream=captured)
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', "https://x/?key=1")
    logging.getLogger("httpx").warning("retrying %s", "https://qyapi.weixin.qq.com/?key=abc")
    [record] = lines(captured)
    assert record["event"] == "retrying https://qyapi.weixin.qq.com/?key=[secret]"


def test_configure_logging_twice_does_not_double_lines(captured: io.StringIO) -> None:
    logging.basicConfig()  # a plain handler would print unmasked lines: it is replaced
    configure_logging("INFO", stream=captured)
    logging.getLogger("orderflow.test").warning("once %s", PHONE)
    assert len(lines(captured)) == 1
    assert not [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]


# --- a whole order's logs -----------------------------------------------------------------------


class _Careless(Interceptor):
    """Logs every activity's input the careless way (its repr in a message, and whole as a
    structured field) and fails `record_order` once quoting the phone, as a driver error
    would: everything a debugging session might add."""

    def __init__(self) -> None:
        self.failed = False

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        outer = self

        class Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                kind = activity.info().activity_type
                activity.logger.info("%s input: %r", kind, input.args)
                get_logger("tests.activities").info("activity", kind=kind, args=list(input.args))
                if kind == "record_order" and not outer.failed:
                    outer.failed = True
                    phone = input.args[0].order.customer.phone
                    raise RuntimeError(f"duplicate key value (customer_phone)=({phone})")
                return await super().execute_activity(input)

        return Inbound(next)


async def test_a_full_orders_logs_hold_no_phone(
    env: WorkflowEnvironment, captured: io.StringIO
) -> None:
    queue = f"redaction-{uuid.uuid4().hex[:8]}"
    careless = _Careless()
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[OrderWorkflow, AnomalyWorkflow, PatrolWorkflow],
        activities=[*Business().activities(), load_policy],
        interceptors=[LogContextInterceptor(), careless, *jitter.interceptors()],
    ):
        oid = str(uuid.uuid4().int % 10**15)
        order = platform_order(oid, GOODS_STORE, await env.get_current_time())
        handle = await env.client.start_workflow(
            OrderWorkflow.run, OrderInput(order=order), id=f"order-{oid}", task_queue=queue
        )
        try:
            await at_stage(handle, Stage.IN_PROGRESS)
            await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
            await at_stage(handle, Stage.DELIVERING)
            await handle.execute_update(
                OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="photo://door")
            )
            assert (await handle.result()).stage is Stage.CLOSED
        finally:
            # Left running on this queue it would stall the shared server's time skipping.
            with contextlib.suppress(RPCError):
                await handle.terminate("test ended")
    assert careless.failed

    records = lines(captured)  # every line is JSON
    text = captured.getvalue()
    assert len(records) > 20
    assert PHONE not in text
    assert not ANY_MOBILE.search(text)
    # The data was logged, masked: the check is not passing on an empty log.
    assert "138****5678_****" in text
    failed = [r for r in records if "Completing activity as failed" in r["event"]]
    assert failed and "(138****5678_****)" in failed[0]["exception"]
    # Names and addresses in fields and key=value text are masked too (in bare prose they
    # could not be recognised; here they appear only in fields).
    assert NAME not in text and ADDRESS not in text
    structured = [r for r in records if r["logger"] == "tests.activities"]
    recorded = [r for r in structured if r["kind"] == "record_order"]
    assert recorded and recorded[0]["args"][0]["order"]["customer"] == MASK
    staff_notice = next(r for r in structured if r["kind"] == "notify")["args"][0]
    assert staff_notice["facts"] == MASK  # a notification's facts quote the customer
    # Every line written while an activity ran says whose it was, the SDK's own lines too.
    during = [r for r in records if r["logger"] in ("tests.activities", "temporalio.activity")]
    assert during and all(
        r["order_id"] == oid and r["workflow_id"] == f"order-{oid}" and r["activity"]
        for r in during
    )


# --- the database: roles and masked views -------------------------------------------------------

MASKED_VIEWS = (
    "orders_masked",
    "notifications_masked",
    "customers_masked",
    "staff_masked",
    "order_events_masked",
    "feedback_masked",
    "anomalies_masked",
)
NOW = datetime(2030, 3, 1, 4, 0, tzinfo=UTC)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def recorded(demo_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """An order with personal data everywhere it can go, written by the activities."""
    order = make_order(name=NAME, phone=f"{PHONE}_1234", address=ADDRESS)
    order = order.model_copy(update={"remarks": f"到了打 {PHONE} 或 021-64381234"})
    records = OrderRecords(demo_pool)
    await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))
    entry = TimelineEntry(
        seq=1,
        at=NOW,
        event="customer_change",
        stage=Stage.RECEIVED,
        details={"phone": PHONE, "address": ADDRESS},
    )
    await records.record_event(RecordEvent(order_id=order.order_id, entry=entry))
    notifier = Notifier(demo_pool)
    await notifier.notify(
        Notification(
            key=f"{order.order_id}:confirmed",
            order_id=order.order_id,
            audience=Audience.CUSTOMER,
            store_code=order.store_code,
            subject=f"骑手电话 {PHONE}",
            text=f"{NAME}, {ADDRESS}",
        )
    )
    await demo_pool.execute(
        """
        INSERT INTO feedback (order_id, case_no, kind, text, opened_at)
        VALUES ($1, 1, 'complaint', $2, $3)
        """,
        order.order_id,
        f"{NAME} 打 {PHONE}",
        NOW,
    )
    await demo_pool.execute(
        "INSERT INTO anomalies (anomaly_id, order_id, kind, detail, opened_at) "
        "VALUES ($1, $2, 'info', $3, $4)",
        f"a-{order.order_id}",
        order.order_id,
        f"address {ADDRESS} unreachable",
        NOW,
    )
    yield order.order_id


async def test_masked_views_expose_no_phone_name_or_address(
    demo_pool: asyncpg.Pool, recorded: str
) -> None:
    # The base tables hold them (the check below is not blind) ...
    base = await demo_pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", recorded)
    assert base is not None and base["customer_phone"].startswith(PHONE)
    for view in MASKED_VIEWS:
        rows = [dict(r) for r in await demo_pool.fetch(f"SELECT * FROM {view}")]
        assert rows, view
        text = json.dumps(rows, ensure_ascii=False, default=str)
        assert not ANY_MOBILE.search(text), (view, text)
        assert "64381234" not in text and NAME not in text and ADDRESS not in text, view
        columns = set(rows[0])
        assert not columns & {
            "customer_name",
            "customer_phone",
            "customer_address",
            "name",
            "phone",
            "address",
            "text",
            "details",
            "detail",
        }, view
    order = await demo_pool.fetchrow("SELECT * FROM orders_masked WHERE order_id = $1", recorded)
    assert order is not None
    assert order["remarks"] == "到了打 138****5678 或 021-********"
    assert order["customer_id"] == base["customer_id"]  # still countable per customer
    assert float(order["latitude_approx"]) == round(base["latitude"], 2)
    note = await demo_pool.fetchrow(
        "SELECT * FROM notifications_masked WHERE order_id = $1", recorded
    )
    assert note is not None and note["recipient"] is None
    assert note["subject"] == "骑手电话 138****5678"


async def test_service_role_can_do_what_the_activities_do_and_no_more(
    demo_pool: asyncpg.Pool, pg_dsn: str, recorded: str
) -> None:
    service = await as_role(demo_pool, pg_dsn, "orderflow_service")
    try:
        assert await service.fetchval("SELECT current_user") == "orderflow_service"
        # The activities' own statements, as the service.
        order = make_order(name=NAME, phone=PHONE, address=ADDRESS)
        records = OrderRecords(service)
        await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))
        changed = order.model_copy(update={"items": order.items[:1]})  # rewrites the lines
        await records.record_order(RecordOrder(order=changed, received_at=NOW, source="push"))
        entry = TimelineEntry(seq=1, at=NOW, event="reviewing", stage=Stage.REVIEWING)
        await records.record_event(RecordEvent(order_id=order.order_id, entry=entry))
        await records.record_event(RecordEvent(order_id=order.order_id, entry=entry))  # retry
        await Notifier(service).notify(
            Notification(
                key=f"{order.order_id}:n",
                order_id=order.order_id,
                audience=Audience.STAFF,
                store_code=order.store_code,
                subject="s",
                text="t",
            )
        )
        assert await service.fetchval("SELECT count(*) FROM schema_migrations") >= 7

        forbidden = [
            "UPDATE order_events SET event = 'x'",
            "DELETE FROM order_events",
            "SELECT details FROM order_events",
            "DELETE FROM orders",
            "TRUNCATE notifications",
            "CREATE TABLE intruder (id int)",
            "DROP TABLE stock",
            "ALTER TABLE orders ADD COLUMN x int",
            "INSERT INTO schema_migrations (version, checksum) VALUES ('9999_x', 'x')",
            "SELECT token_hash FROM staff_tokens",
        ]
        for statement in forbidden:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await service.execute(statement)
    finally:
        await service.close()


async def test_the_staff_api_role_reads_what_people_see_and_keeps_tokens_only(
    demo_pool: asyncpg.Pool, pg_dsn: str, recorded: str
) -> None:
    api = await as_role(demo_pool, pg_dsn, "orderflow_api")
    try:
        token = await tokens.issue(api, "M-001")
        assert (await tokens.person_for(api, token)).staff_id == "M-001"
        assert await tokens.revoke(api, "M-001") >= 1
        async with api.acquire() as conn:
            assert await order_reads.order_view(conn, recorded) is not None
            assert await order_reads.order_scope(conn, recorded) is not None
            await order_reads.list_orders(conn, OrderFilter(), 5)
            await order_reads.open_anomalies(conn, None, 5)
            assert await order_reads.order_sheet(conn, recorded) is not None
            assert await order_reads.reveal_contact(conn, recorded, "M-001")
            await work_reads.inbox(conn, "M-001")
            await work_reads.mark_read(conn, "M-001", None)
            await work_reads.my_work(conn, "M-001", ["KITCHEN-XH"])
            await work_reads.manager_queues(conn, ["KITCHEN-XH"])
            customers = await conn.fetchval(
                "SELECT count(*) FROM staff_inbox WHERE audience = 'customer'"
            )
            assert customers == 0  # the customers' notifications stay out of its reach
        admin = Person(staff_id="A-901", name="", role=Role.ADMIN, region="", departments=[])
        customer = await admin_api.customer_of_order(api, recorded)
        why = {"reason": "checked"}
        await admin_api.change_standing(api, admin, customer, admin_api.BAN, why)
        await admin_api.change_standing(api, admin, customer, admin_api.LIFT, why)
        assert (await admin_people.view(api, "S-101")).staff_id == "S-101"
        await admin_people.set_skills(api, admin, "S-101", {"skills": {"hot_dishes": 3}, **why})
        await admin_people.change(api, admin, "S-101", {"capacity": 3, **why})
        await admin_stock.restock(api, admin, "SH-XH-001", "G-HSR", {"quantity": 1, **why})
        taken = await measures.add(
            api,
            admin,
            {
                "finding_kind": "rating_below_target",
                "subject": "satisfaction",
                "what": "x",
                "owner": "M-001",
                "due": "2026-12-31",
            },
        )
        assert await measures.listing(api, admin)
        await measures.end(api, admin, str(taken["measure_id"]), {"state": "done"})
        for statement in (
            "UPDATE orders SET stage = 'closed'",
            "INSERT INTO order_events (order_id, seq, at, event, stage) "
            "VALUES ('x', 1, now(), 'x', 'received')",
            "SELECT * FROM customers",
            "SELECT text FROM notifications",
            "UPDATE staff SET phone = 'x'",  # people's roles: only through an admin's request
            "DELETE FROM staff",
            "UPDATE customers SET phone = 'x'",
            "SELECT phone FROM customers",
            "DELETE FROM staff_tokens",
            "UPDATE notifications SET text = 'x'",
            "UPDATE contact_reveals SET staff_id = 'x'",
            "SELECT * FROM contact_reveals",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await api.execute(statement)
    finally:
        await api.close()


async def test_reporting_role_reads_masked_views_only(
    demo_pool: asyncpg.Pool, pg_dsn: str, recorded: str
) -> None:
    reporting = await as_role(demo_pool, pg_dsn, "orderflow_reporting")
    try:
        for view in MASKED_VIEWS:
            await reporting.fetch(f"SELECT * FROM {view} LIMIT 1")
        assert await reporting.fetchval("SELECT count(*) FROM order_summaries") >= 0
        assert await reporting.fetchval("SELECT count(*) FROM stores") > 0
        for statement in (
            "SELECT customer_phone FROM orders",
            "SELECT * FROM customers",
            "SELECT * FROM staff",
            "SELECT text FROM notifications",
            "SELECT raw_body FROM rejected_pushes",
            "INSERT INTO stores (code, name, region, order_type) VALUES ('x','x','x','goods')",
            "UPDATE stock SET on_hand = 0",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reporting.execute(statement)
    finally:
        await reporting.close()


async def test_roles_migration_runs_again_without_harm(
    demo_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    """Roles are per server: a second database's migrations meet them already created."""
    name = f"t_roles_again_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    pool = await db.connect(db.with_database(pg_dsn, name))
    try:
        assert "0007_roles" in await db.migrate(pool)
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)
    roles = await demo_pool.fetch(
        "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'orderflow_%' "
        "ORDER BY rolname"
    )
    assert [(r["rolname"], r["rolcanlogin"]) for r in roles] == [
        ("orderflow_api", False),
        ("orderflow_reporting", False),
        ("orderflow_service", False),
        ("orderflow_signin", False),  # migration 0021: the codec server's sign-in lookups
    ]
