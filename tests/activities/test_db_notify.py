"""Notifications: written once per key with their deliveries (the outbox), in the recipient's
language; routed to the person; delivered by the dispatcher through a local robot that plays
WeCom's API, including its 45009 rate answer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from activities.channels import Message, WebhookChannel
from activities.notice_texts import TEXTS
from activities.notify import Notifier
from activities.orders import OrderRecords
from infra.settings import SettingsError, settings
from schemas.notices import Audience, Language, Notification, Topic
from schemas.records import RecordOrder
from tests.db_fixtures import assign_recorded, make_order, order_id
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.robot import Robot
from tests.robot import robot as robot
from workers.dispatcher import LEADER_LOCK, DispatchConfig, Dispatcher


@pytest_asyncio.fixture(loop_scope="session")
async def outbox(demo_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The module's database with no deliveries or routes left by an earlier test."""
    await demo_pool.execute("DELETE FROM deliveries; DELETE FROM notify_routes")
    yield demo_pool


async def _route(pool: asyncpg.Pool, scope: str, owner: str, **values: str | None) -> None:
    columns = ["scope", "owner", *values]
    await pool.execute(
        f"INSERT INTO notify_routes ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
        scope,
        owner,
        *values.values(),
    )


def _note(
    key: str, audience: Audience = Audience.MANAGER, oid: str = "n-1", **more: object
) -> Notification:
    return Notification(
        key=key,
        order_id=oid,
        audience=audience,
        store_code="SH-XH-001",
        topic=Topic.ANOMALY_OPENED,
        facts={"kind": "price", "detail": "订单价格异常"},
        **more,
    )


async def _row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM notifications WHERE key = $1", key)
    assert row is not None
    return row


async def _deliveries(pool: asyncpg.Pool, key: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM deliveries WHERE notification_key = $1 ORDER BY route", key
    )


async def _drain(dispatcher: Dispatcher, pool: asyncpg.Pool, within_s: float = 30.0) -> None:
    """Rounds until nothing is pending."""
    deadline = asyncio.get_running_loop().time() + within_s
    while await pool.fetchval("SELECT count(*) FROM deliveries WHERE state = 'pending'"):
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await dispatcher.round()
        await asyncio.sleep(0.05)


# --- the write: inbox entry, outbox rows, words --------------------------------------------------


async def test_written_once_in_chinese_naming_day_number_and_store(outbox: asyncpg.Pool) -> None:
    order = make_order().model_copy(update={"day_seq": 17})
    await OrderRecords(outbox).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    due = datetime(2026, 12, 5, 4, 30, tzinfo=UTC)
    notifier = Notifier(outbox)
    await notifier.notify(_note("zh-1", oid=order.order_id, due_at=due))
    await notifier.notify(_note("zh-1", oid=order.order_id, due_at=due))
    row = await _row(outbox, "zh-1")
    assert row["subject"] == "异常订单（价格异常）"
    assert row["text"].splitlines() == [
        "#17 老弄堂小馆(徐汇店)",
        "订单价格异常。订单已暂停，等待您的决定。",
        "请于 12-05 12:30 前完成",  # Asia/Shanghai: what the store reads
    ]
    assert row["recipient"] == "M-001" and row["language"] == "zh-CN"
    assert row["channel"] == "inbox" and row["sent_at"] is not None  # nowhere else to go
    assert await _deliveries(outbox, "zh-1") == []
    assert await outbox.fetchval("SELECT count(*) FROM notifications WHERE key='zh-1'") == 1


async def test_a_person_may_read_english(outbox: asyncpg.Pool) -> None:
    await _route(outbox, "person", "M-001", kind="wecom", language="en")
    await Notifier(outbox).notify(_note("en-1", oid=order_id()))
    row = await _row(outbox, "en-1")
    assert row["subject"] == "Anomalous order (price)"
    assert row["text"].endswith("订单价格异常. Processing is paused until you decide.")


async def test_recipients_follow_the_order(demo_pool: asyncpg.Pool) -> None:
    order = make_order()
    record = await OrderRecords(demo_pool).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    assignee = await assign_recorded(demo_pool, order, record)
    notifier = Notifier(demo_pool)
    await notifier.notify(_note("to-staff", Audience.STAFF, order.order_id))
    await notifier.notify(_note("to-customer", Audience.CUSTOMER, order.order_id))
    await notifier.notify(_note("to-named", Audience.STAFF, order_id(), recipient="S-103"))
    assert (await _row(demo_pool, "to-staff"))["recipient"] == assignee.staff_id
    assert (await _row(demo_pool, "to-customer"))["recipient"] == record.customer_id
    assert (await _row(demo_pool, "to-named"))["recipient"] == "S-103"


async def test_routes_reach_the_person(outbox: asyncpg.Pool) -> None:
    """Their own robot; else @-mentioned on their department's; customers on no robot."""
    await _route(outbox, "person", "M-001", kind="dingtalk", url="http://own/", mobile="139")
    await _route(outbox, "person", "S-101", kind="wecom", mention="wangqing")
    await _route(outbox, "department", "KITCHEN-XH", kind="wecom", url="http://kitchen/")
    notifier = Notifier(outbox)
    await notifier.notify(_note("r-manager"))
    await notifier.notify(_note("r-staff", Audience.STAFF, order_id(), recipient="S-101"))
    await notifier.notify(_note("r-customer", Audience.CUSTOMER, order_id(), recipient="C-1"))
    [own] = await _deliveries(outbox, "r-manager")
    assert (own["route"], own["kind"], own["mobile"]) == ("person:M-001", "dingtalk", "139")
    [group] = await _deliveries(outbox, "r-staff")
    assert (group["route"], group["mention"]) == ("department:KITCHEN-XH", "wangqing")
    assert "kitchen" not in group["channel_key"]  # the robot's URL is a secret
    assert await _deliveries(outbox, "r-customer") == []


async def test_the_default_robot_when_nobody_has_a_route(
    outbox: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERFLOW_NOTIFY_WEBHOOK", "http://127.0.0.1:1/hook")
    settings.cache_clear()
    try:
        await Notifier(outbox).notify(_note("default-1"))
    finally:
        monkeypatch.delenv("ORDERFLOW_NOTIFY_WEBHOOK")
        settings.cache_clear()
    [default] = await _deliveries(outbox, "default-1")
    assert default["route"] == "default" and default["state"] == "pending"


# --- the dispatcher ------------------------------------------------------------------------------


async def test_delivered_once_with_the_mention(outbox: asyncpg.Pool, robot: Robot) -> None:
    await _route(
        outbox, "person", "M-001", kind="wecom", mention="zhoujingli", mobile="13900001111"
    )
    await _route(outbox, "department", "KITCHEN-XH", kind="wecom", url=robot.url)
    await Notifier(outbox).notify(_note("once-1"))
    dispatcher = Dispatcher(outbox)
    await _drain(dispatcher, outbox)
    await dispatcher.round()
    [sent] = robot.received
    assert sent["path"] == "/cgi-bin/webhook/send" and sent["query"] == {"key": ["k"]}
    text = sent["body"]["text"]
    assert sent["body"]["msgtype"] == "text" and "订单价格异常" in text["content"]
    assert text["mentioned_list"] == ["zhoujingli"]
    assert text["mentioned_mobile_list"] == ["13900001111"]
    [delivery] = await _deliveries(outbox, "once-1")
    assert delivery["state"] == "sent" and delivery["attempts"] == 1
    assert (await _row(outbox, "once-1"))["sent_at"] is not None


async def test_failures_back_off_then_dead_letter(outbox: asyncpg.Pool, robot: Robot) -> None:
    await _route(outbox, "store", "SH-XH-001", kind="wecom", url=robot.url)
    robot.answers.extend([(500, {}), (200, {"errcode": 93000, "errmsg": "invalid webhook url"})])
    robot.answers.append((500, {}))
    config = DispatchConfig(first_backoff=timedelta(minutes=1), max_attempts=3)
    dispatcher = Dispatcher(outbox, config)
    await Notifier(outbox).notify(_note("fail-1"))
    assert await dispatcher.round() == 0
    [first] = await _deliveries(outbox, "fail-1")
    assert first["attempts"] == 1 and "HTTP 500" in first["last_error"]
    assert first["next_at"] > datetime.now(UTC) + timedelta(seconds=50)  # backed off a minute
    assert await dispatcher.round() == 0 and len(robot.answers) == 2  # not resent before then
    second = await _after_backoff(outbox, dispatcher)
    assert second["attempts"] == 2 and "93000" in second["last_error"]
    assert second["next_at"] > datetime.now(UTC) + timedelta(seconds=110)  # doubled
    dead = await _after_backoff(outbox, dispatcher)
    assert dead["state"] == "dead" and dead["attempts"] == 3 and robot.answers == []
    assert (await _row(outbox, "fail-1"))["last_error"].startswith("dead:")
    assert robot.received == []


async def _after_backoff(pool: asyncpg.Pool, dispatcher: Dispatcher) -> asyncpg.Record:
    """The backoff over at once: no test waits for minutes."""
    await pool.execute("UPDATE deliveries SET next_at = now() WHERE state = 'pending'")
    await dispatcher.round()
    [row] = await pool.fetch("SELECT * FROM deliveries")
    return row


async def test_a_throttled_robot_is_held_for_its_window(outbox: asyncpg.Pool, robot: Robot) -> None:
    await _route(outbox, "store", "SH-XH-001", kind="wecom", url=robot.url)
    robot.answers.append((200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    dispatcher = Dispatcher(outbox, DispatchConfig(holds={"wecom": timedelta(seconds=1)}))
    await Notifier(outbox).notify(_note("slow-1"))
    await Notifier(outbox).notify(_note("slow-2"))
    assert await dispatcher.round() == 0  # the first answered 45009: the second waits too
    rows = await outbox.fetch("SELECT * FROM deliveries ORDER BY notification_key")
    assert [r["attempts"] for r in rows] == [0, 0] and "45009" in rows[0]["last_error"]
    await _drain(dispatcher, outbox)
    expected = []
    for key in ("slow-1", "slow-2"):
        row = await _row(outbox, key)
        expected.append(f"【{row['subject']}】\n{row['text']}")
    assert sorted(r["body"]["text"]["content"] for r in robot.received) == sorted(expected)


async def test_robot_down_then_back_within_its_rate_none_twice(outbox: asyncpg.Pool) -> None:
    """A robot allowing 3 a window: 8 queued while it was down arrive once each, never more
    than 3 in a window, and it never had to answer 45009."""
    robot = Robot(limit=3, window_s=1.5)
    robot.stop()
    try:
        await _route(outbox, "store", "SH-XH-001", kind="wecom", url=robot.url)
        people = ["S-101", "S-102", "S-103", "S-104"]
        for person in people:
            await _route(outbox, "person", person, kind="wecom", mention=f"wx-{person}")
        notifier = Notifier(outbox)
        for n in range(8):
            await notifier.notify(
                _note(f"burst-{n}", Audience.STAFF, order_id(), recipient=people[n % 4])
            )
        config = DispatchConfig(
            limits={"wecom": ((3, timedelta(seconds=1.5)),)}, first_backoff=timedelta(0)
        )
        dispatcher = Dispatcher(outbox, config)
        await dispatcher.round()  # down: every try fails, nothing is lost
        assert await outbox.fetchval("SELECT count(*) FROM deliveries WHERE state='pending'") == 8
        robot.start()
        await _drain(dispatcher, outbox)
        assert len(robot.received) == 8 and robot.refused_for_rate == 0
        assert robot.most_in_a_window() <= 3
        mentions = sorted(r["body"]["text"]["mentioned_list"][0] for r in robot.received)
        assert mentions == sorted(f"wx-{p}" for p in people * 2)
    finally:
        robot.stop()


async def test_one_dispatcher_sends_at_a_time(outbox: asyncpg.Pool, robot: Robot) -> None:
    await _route(outbox, "store", "SH-XH-001", kind="wecom", url=robot.url)
    stop = asyncio.Event()
    first, second = Dispatcher(outbox), Dispatcher(outbox)
    running = [asyncio.create_task(d.run(stop)) for d in (first, second)]
    try:
        for n in range(5):
            await Notifier(outbox).notify(_note(f"lead-{n}"))
        await _until(lambda: len(robot.received) == 5)
        leaders = await outbox.fetchval(
            """
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objid::bigint = $1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            LEADER_LOCK,
        )
        assert leaders == 1
    finally:
        stop.set()
        await asyncio.gather(*running)
    assert len(robot.received) == 5


async def _until(check: object, within_s: float = 10.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


# --- the robots' shapes --------------------------------------------------------------------------


def test_dingtalk_shape_and_signature() -> None:
    channel = WebhookChannel("https://robot/send?access_token=t", "dingtalk", secret="SECxyz")
    body = channel.body(Message("o", "s", "t", mention="u1", mobile="139"))
    assert body["at"] == {"atMobiles": ["139"], "atUserIds": ["u1"], "isAtAll": False}
    assert body["text"]["content"].endswith("@139")  # shown only when the content has it
    # DingTalk's rule: base64(HMAC-SHA256(secret, "<ms timestamp>\n<secret>")), URL-encoded.
    digest = hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()
    from urllib.parse import quote_plus

    assert channel.target(now=1_700_000_000.0) == (
        "https://robot/send?access_token=t&timestamp=1700000000000&sign="
        + quote_plus(base64.b64encode(digest).decode())
    )


def test_feishu_shape_and_signature() -> None:
    body = WebhookChannel("http://x", "feishu", secret="s").body(
        Message("o", "s", "t", mention="ou_1"), now=1_700_000_000.0
    )
    assert body["msg_type"] == "text"
    assert body["content"]["text"].startswith('<at user_id="ou_1"></at> 【s】')
    key = b"1700000000\ns"
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


async def test_feishu_within_five_a_second(outbox: asyncpg.Pool, robot: Robot) -> None:
    """Feishu's custom bots take 100 a minute and 5 a second."""
    await _route(outbox, "store", "SH-XH-001", kind="feishu", url=robot.url)
    for n in range(7):
        await Notifier(outbox).notify(_note(f"fs-{n}"))
    await _drain(Dispatcher(outbox), outbox)
    times = sorted(r["accepted_at"] for r in robot.received)
    assert len(times) == 7  # never a sixth within a second of five
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[5:], strict=False))


def test_plain_webhook_is_signed() -> None:
    channel = WebhookChannel("http://x", "webhook", secret="k")
    assert channel.body(Message("o", "s", "t"))["subject"] == "s"
    data = b'{"a": 1}'
    expected = hmac.new(b"k", data, hashlib.sha256).hexdigest()
    assert channel._headers(data)["X-Orderflow-Signature"] == f"sha256={expected}"


def test_every_topic_has_its_words_in_every_language() -> None:
    for topic in Topic:
        for language in Language:
            subject, text = TEXTS[topic][language]
            assert subject and text is not None, (topic, language)


async def test_customers_are_told_through_their_own_webhook_with_their_number(
    outbox: asyncpg.Pool, robot: Robot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORDERFLOW_CUSTOMER_WEBHOOK (an SMS provider's): the number is looked up when sending,
    never copied into the outbox."""
    order = make_order()
    await OrderRecords(outbox).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    monkeypatch.setenv("ORDERFLOW_CUSTOMER_WEBHOOK", robot.url)
    monkeypatch.setenv("ORDERFLOW_CUSTOMER_WEBHOOK_SECRET", "sms-secret")
    settings.cache_clear()
    try:
        told = Notification(
            key=f"cust-{order.order_id}",
            order_id=order.order_id,
            audience=Audience.CUSTOMER,
            store_code=order.store_code,
            topic=Topic.DELIVERED,
        )
        await Notifier(outbox).notify(told)
        [delivery] = await _deliveries(outbox, told.key)
        assert delivery["route"] == "customer" and delivery["mobile"] is None
        await _drain(Dispatcher(outbox), outbox)
    finally:
        settings.cache_clear()
    [sent] = robot.received
    assert sent["body"]["mobile"] == order.customer.phone
    assert sent["body"]["subject"] == "已送达" and "祝您用餐愉快" in sent["body"]["text"]
    assert sent["headers"]["X-Orderflow-Signature"].startswith("sha256=")


async def test_a_notification_written_before_the_outbox_and_never_sent_is_sent_on_retry(
    outbox: asyncpg.Pool, robot: Robot
) -> None:
    await _route(outbox, "store", "SH-XH-001", kind="wecom", url=robot.url)
    await outbox.execute(
        """
        INSERT INTO notifications (key, order_id, audience, recipient, store_code, subject, text,
                                   channel, attempts, last_error)
        VALUES ('legacy-1', 'n-1', 'manager', 'M-001', 'SH-XH-001', 'Low stock', 'G-HSR',
                'webhook:wecom', 3, 'DeliveryError: webhook:wecom answered HTTP 500')
        """
    )
    await Notifier(outbox).notify(_note("legacy-1"))  # Temporal retries the old activity
    await _drain(Dispatcher(outbox), outbox)
    [sent] = robot.received
    assert sent["body"]["text"]["content"] == "【Low stock】\nG-HSR"  # as it was written
    assert (await _row(outbox, "legacy-1"))["sent_at"] is not None


def test_a_robot_flavour_nobody_knows_stops_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERFLOW_NOTIFY_FLAVOUR", "slack")
    settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="ORDERFLOW_NOTIFY_FLAVOUR"):
            settings()
    finally:
        monkeypatch.delenv("ORDERFLOW_NOTIFY_FLAVOUR")
        settings.cache_clear()
