"""Notifications: stored once per key, delivered once, through a real local robot webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import asyncpg
import pytest

from activities.assignment import Assignment
from activities.channels import (
    DeliveryError,
    RecordedChannel,
    WebhookChannel,
    channel_from_env,
)
from activities.notify import Notifier
from activities.orders import OrderRecords
from infra.settings import settings
from schemas.order import OrderType
from schemas.records import Audience, Notification, RecordOrder
from schemas.resources import AssignInput
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import make_order, order_id
from tests.db_fixtures import pg_dsn as pg_dsn


class Robot:
    """A group robot on 127.0.0.1: records each POST and answers from a script."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                parts = urlsplit(self.path)
                robot.received.append(
                    {
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    }
                )
                status, answer = robot.answers.pop(0) if robot.answers else (200, {"errcode": 0})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=k"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def robot() -> Iterator[Robot]:
    r = Robot()
    try:
        yield r
    finally:
        r.close()


def _note(key: str, audience: Audience = Audience.MANAGER, oid: str = "n-1") -> Notification:
    return Notification(
        key=key,
        order_id=oid,
        audience=audience,
        store_code="SH-XH-001",
        subject="异常订单",
        text="订单价格异常，请处理",
    )


async def _row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM notifications WHERE key = $1", key)
    assert row is not None
    return row


async def test_recorded_channel_stores_once(demo_pool: asyncpg.Pool) -> None:
    notifier = Notifier(demo_pool, RecordedChannel())
    await notifier.notify(_note("rec-1"))
    await notifier.notify(_note("rec-1"))
    row = await _row(demo_pool, "rec-1")
    assert row["channel"] == "recorded" and row["sent_at"] is not None
    assert row["recipient"] == "M-001"  # the manager of the department serving the store
    assert row["attempts"] == 1
    assert await demo_pool.fetchval("SELECT count(*) FROM notifications WHERE key='rec-1'") == 1


async def test_wecom_webhook_delivers_once_per_key(demo_pool: asyncpg.Pool, robot: Robot) -> None:
    notifier = Notifier(demo_pool, WebhookChannel(robot.url, "wecom"))
    await notifier.notify(_note("wecom-1"))
    await notifier.notify(_note("wecom-1"))
    assert len(robot.received) == 1
    sent = robot.received[0]
    assert sent["path"] == "/cgi-bin/webhook/send" and sent["query"] == {"key": ["k"]}
    assert sent["content_type"] == "application/json"
    body = sent["body"]
    assert set(body) == {"msgtype", "text"} and body["msgtype"] == "text"
    assert "订单价格异常，请处理" in body["text"]["content"]
    assert "异常订单" in body["text"]["content"] and "M-001" in body["text"]["content"]
    row = await _row(demo_pool, "wecom-1")
    assert row["channel"] == "webhook:wecom" and row["sent_at"] is not None


async def test_dingtalk_shape_and_signature(demo_pool: asyncpg.Pool, robot: Robot) -> None:
    notifier = Notifier(demo_pool, WebhookChannel(robot.url, "dingtalk", secret="SECxyz"))
    await notifier.notify(_note("ding-1"))
    sent = robot.received[0]
    assert sent["body"]["msgtype"] == "text" and "content" in sent["body"]["text"]
    assert sent["body"]["at"] == {"atMobiles": [], "isAtAll": False}
    assert {"key", "timestamp", "sign"} <= set(sent["query"])
    # DingTalk's rule: base64(HMAC-SHA256(secret, "<ms timestamp>\n<secret>")), URL-encoded.
    digest = hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()
    channel = WebhookChannel("https://robot/send?access_token=t", "dingtalk", secret="SECxyz")
    assert channel.target(now=1_700_000_000.0) == (
        "https://robot/send?access_token=t&timestamp=1700000000000&sign="
        + quote_plus(base64.b64encode(digest).decode())
    )


async def test_feishu_shape_and_signature(demo_pool: asyncpg.Pool, robot: Robot) -> None:
    robot.answers.append((200, {"code": 0, "msg": "success"}))
    notifier = Notifier(demo_pool, WebhookChannel(robot.url, "feishu", secret="s"))
    await notifier.notify(_note("feishu-1"))
    body = robot.received[0]["body"]
    assert body["msg_type"] == "text" and "订单价格异常" in body["content"]["text"]
    assert body["timestamp"].isdigit() and body["sign"]
    plain = WebhookChannel(robot.url, "feishu").body("hi")
    assert plain == {"msg_type": "text", "content": {"text": "hi"}}


async def test_failed_delivery_is_recorded_and_retried(
    demo_pool: asyncpg.Pool, robot: Robot
) -> None:
    robot.answers.extend([(500, {}), (200, {"errcode": 45009, "errmsg": "api freq out of limit"})])
    notifier = Notifier(demo_pool, WebhookChannel(robot.url, "wecom"))
    with pytest.raises(DeliveryError, match="HTTP 500"):
        await notifier.notify(_note("fail-1"))
    row = await _row(demo_pool, "fail-1")
    assert row["sent_at"] is None and row["attempts"] == 1 and "500" in row["last_error"]
    with pytest.raises(DeliveryError, match="45009"):
        await notifier.notify(_note("fail-1"))
    await notifier.notify(_note("fail-1"))  # the robot recovered
    await notifier.notify(_note("fail-1"))
    row = await _row(demo_pool, "fail-1")
    assert row["sent_at"] is not None and row["attempts"] == 3 and row["last_error"] is None
    assert len(robot.received) == 3


async def test_recipients_follow_the_order(demo_pool: asyncpg.Pool) -> None:
    order = make_order()
    record = await OrderRecords(demo_pool).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    assignee = await Assignment(demo_pool, shifts="ignore").assign_order(
        AssignInput(
            order_id=order.order_id,
            order_type=OrderType.GOODS,
            store_code=order.store_code,
            region=record.region,
            skills=record.skills,
        )
    )
    notifier = Notifier(demo_pool, RecordedChannel())
    await notifier.notify(_note("to-staff", Audience.STAFF, order.order_id))
    await notifier.notify(_note("to-customer", Audience.CUSTOMER, order.order_id))
    explicit = _note("to-named", Audience.STAFF, order_id()).model_copy(
        update={"recipient": "S-103"}
    )
    await notifier.notify(explicit)
    assert (await _row(demo_pool, "to-staff"))["recipient"] == assignee.staff_id
    assert (await _row(demo_pool, "to-customer"))["recipient"] == record.customer_id
    assert (await _row(demo_pool, "to-named"))["recipient"] == "S-103"


def test_channel_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERFLOW_NOTIFY_WEBHOOK", raising=False)
    settings.cache_clear()
    assert isinstance(channel_from_env(), RecordedChannel)
    monkeypatch.setenv("ORDERFLOW_NOTIFY_WEBHOOK", "http://127.0.0.1:1/hook")
    monkeypatch.setenv("ORDERFLOW_NOTIFY_FLAVOUR", "DingTalk")
    settings.cache_clear()
    channel = channel_from_env()
    assert isinstance(channel, WebhookChannel) and channel.name == "webhook:dingtalk"
    monkeypatch.setenv("ORDERFLOW_NOTIFY_FLAVOUR", "slack")
    settings.cache_clear()
    with pytest.raises(ValueError, match="flavour"):
        channel_from_env()
