"""The platform's own material (tests/platform_fixtures/, each file naming where it was found):
real pushes verify with our signing against the URL they were signed for, decode into our
models, and become the workflow input the order deserves. Expected values are read off the
fixtures by eye, not computed by our code.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from localstack.simulator import RunningSimulator, SimConfig, serve_simulator
from meituan.intake import order_input
from meituan.models import CancelPush, LogisticsPush, OrderPush
from meituan.pushes import PushKind, PushSignatureError, decode_fields, decode_push
from meituan.signing import SIG, sign, signing_string
from schemas.contract import TASK_QUEUE
from schemas.order import Customer, Discount, OrderItem
from starter.gateway import GatewaySettings, create_app
from tests import platform_material as material
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from workers.registry import WORKFLOWS, build_activities

ORDERS = [f.name for f in material.every() if f.kind == "order" and f.values]
VERIFIABLE = [f.name for f in material.every() if f.verifiable and f.values]


def test_every_fixture_names_its_source() -> None:
    for fixture in material.every():
        assert re.search(r"repo: \S+/\S+", fixture.notes), fixture.name
        assert re.search(r"path: \S+", fixture.notes), fixture.name
        assert re.search(r"commit: [0-9a-f]{40}", fixture.notes), fixture.name
        assert {"kind", "format", "url", "app_id", "secret", "verifies"} <= set(fixture.header)


@pytest.mark.parametrize("name", VERIFIABLE)
def test_a_real_push_verifies_against_the_url_it_was_signed_for(name: str) -> None:
    fixture = material.load(name)
    push = decode_push(
        fixture.kind, fixture.wire, url=fixture.url, secret=fixture.secret, app_id=fixture.app_id
    )
    assert push is not None
    with pytest.raises(PushSignatureError):
        decode_push(fixture.kind, fixture.wire, url=fixture.url, secret="not-the-secret")
    with pytest.raises(PushSignatureError):  # the scheme is part of what is signed
        decode_push(
            fixture.kind,
            fixture.wire,
            url=fixture.url.replace("http://", "https://"),
            secret=fixture.secret,
        )


@pytest.mark.parametrize("name", VERIFIABLE)
def test_a_real_push_signs_its_empty_values(name: str) -> None:
    """Why the platform's pushes were refused before: it signs `caution=` and the like."""
    fixture = material.load(name)
    assert fixture.secret is not None
    fields = decode_fields(PushKind(fixture.kind), fixture.wire)
    empty = sorted(k for k, v in fields.items() if v == "")
    assert empty, "every real order push so far carries empty fields"
    kept = {k: v for k, v in fields.items() if v != ""}
    assert sign(fixture.url, kept, fixture.secret) != fields[SIG]
    assert sign(fixture.url, fields, fixture.secret) == fields[SIG]


def _signing_parts(text: str, secret: str) -> tuple[str, dict[str, str]]:
    """The URL and the parameters of a written-out signing string `url?k=v&k=v<secret>`."""
    url, _, rest = text.partition("?")
    return url, dict(entry.split("=", 1) for entry in rest.removesuffix(secret).split("&"))


def test_a_merchants_signing_string_is_ours_character_for_character() -> None:
    """Code-Fly wrote out the string it hashed for a real push; ours is the same."""
    fixture = material.load("order_codefly_123_signing_string.txt")
    assert fixture.secret is not None
    text = fixture.payload[fixture.payload.index('"') + 1 : fixture.payload.rindex('"')]
    text = text.replace('\\"', '"')
    url, params = _signing_parts(text, fixture.secret)
    assert params["shipper_phone"] == "" and params["caution"] == " 没零钱"
    assert url == fixture.url
    assert signing_string(url, params, fixture.secret) == text


def test_the_documentations_worked_example() -> None:
    fixture = material.load("signature_doc_poi_mget.txt")
    string = re.search(r"(http://\S+/poi/mget\?\S+)\s", fixture.payload)
    given = re.search(r"得到签名：([0-9a-f]{32})", fixture.payload)
    assert string is not None and given is not None and fixture.secret is not None
    url, params = _signing_parts(string.group(1), fixture.secret)
    assert sign(url, params, fixture.secret) == given.group(1)


# --- what each real order becomes ----------------------------------------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "order_dcxt_3987_logged.txt": {
        "order_id": "28983933726634026",
        "view_id": "28983933726634026",
        "store_code": "2898393",
        "customer": Customer(
            name="陆(先生)",
            phone="17865218840",
            address="色金拉",
            latitude=29.77389,
            longitude=95.36876,
        ),
        "items": [
            OrderItem(
                sku="81JP3Ub5ehYXVpZd__865715985",
                name="MT-05",
                quantity=1,
                unit_price=Decimal("0.01"),
                box_num=1,
                box_price=Decimal(0),
                spec="份",
            )
        ],
        "discounts": [],
        "shipping_fee": Decimal("0.01"),
        "total": Decimal("0.02"),
        "remarks": "",
        "created_at": datetime.fromtimestamp(1553709836, UTC),
        "day_seq": 1,
    },
    "order_dcxt_3987_transcribed.txt": {
        "order_id": "28983933105028871",
        "store_code": "2898393",
        "total": Decimal("0.02"),
        "created_at": datetime.fromtimestamp(1553791926, UTC),
        "customer": Customer(
            name="陆(先生)",
            phone="17865218840",
            address="色金拉",
            latitude=29.77389,
            longitude=95.36876,
        ),
    },
    "order_jiabangou_409.txt": {
        "order_id": "2310763339",
        "view_id": "15644621401905893",
        "store_code": "test_poi_01",
        "customer": Customer(
            name="王磊 (先生)",  # `+` in the once-encoded value is a space
            phone="13651187030",
            address="西藏昌都市气象局",
            latitude=31.143873,
            longitude=97.175621,
        ),
        "items": [
            OrderItem(sku="1", name="测试菜品1", quantity=1, unit_price=Decimal("0.1")),
        ],
        "discounts": [],
        "shipping_fee": Decimal("9.0"),
        "total": Decimal("9.1"),
        "original_price": Decimal("9.1"),
        "day_seq": 2,
        "expected_at": None,
    },
    "order_jiabangou_455.txt": {
        "order_id": "2582900212",
        "store_code": "23",
        "customer": Customer(
            name="刘婷婷(先生)",
            phone="15111994978",
            address="纯阳洞小区 (2号楼 25-6)",
            latitude=29.55424,
            longitude=106.56137,
        ),
        "items": [
            OrderItem(
                sku="1341",
                name="李子坝梁山鸡单品家庭装",
                quantity=1,
                unit_price=Decimal(188),
                box_num=1,
                box_price=Decimal(0),
            )
        ],
        "discounts": [
            Discount(
                kind=19,
                amount=Decimal(8),
                merchant_share=Decimal(0),
                remark="用户使用了点评新客抵用券减8元",
            )
        ],
        "shipping_fee": Decimal(15),
        "total": Decimal(195),
        "original_price": Decimal(203),
        "day_seq": 4,
    },
}


@pytest.mark.parametrize("name", ORDERS)
def test_a_real_order_becomes_the_right_workflow_input(name: str) -> None:
    fixture = material.load(name)
    push = decode_push(PushKind.ORDER, fixture.wire)
    assert isinstance(push, OrderPush)
    assert push.total_consistent, "the price review must pass the platform's own arithmetic"
    order = order_input(push).order
    assert order.pickup is False and order.platform_delivery is False
    for key, value in EXPECTED[name].items():
        assert getattr(order, key) == value, key


def test_what_we_do_not_model_is_kept_as_sent() -> None:
    push = decode_push(PushKind.ORDER, material.load("order_dcxt_3987_logged.txt").wire)
    assert isinstance(push, OrderPush)
    extra = push.model_extra or {}
    assert extra["avg_send_time"] == "4220.0" and extra["is_favorites"] == "true"
    assert extra["wm_poi_id"] == "2898393" and extra["shipper_phone"] == ""
    assert push.address_geocoded == "西藏自治区林芝市墨脱县色金拉"
    assert push.poi_receive_detail is not None
    assert push.poi_receive_detail["wmPoiReceiveCent"] == 2  # fen, unlike the order's yuan


# --- the other pushes ----------------------------------------------------------------------------


def test_a_real_logistics_push_decodes() -> None:
    push = decode_push(PushKind.LOGISTICS, material.load("logistics_linjia_358.txt").wire)
    assert isinstance(push, LogisticsPush)
    assert (push.order_id, push.logistics_status, push.time) == (3150594992, 0, 1484818629)
    assert (push.dispatcher_name, push.dispatcher_mobile) == ("", "")


def test_the_documented_cancel_push_decodes() -> None:
    push = decode_push(PushKind.CANCEL, material.load("cancel_doc_example.txt").wire)
    assert isinstance(push, CancelPush)
    assert (push.order_id, push.reason_code, push.reason) == (1233, 1001, "测试")


# --- how old a push is when it comes --------------------------------------------------------------


def test_the_push_age_window_covers_what_real_pushes_show() -> None:
    """`timestamp` minus `ctime` in every real order push: 18-62 s, so `timestamp` is when
    the push was sent, not when the order was made. The window for a push's age
    (ORDERFLOW_PUSH_MAX_AGE_SECONDS, from `timestamp`) needs to cover the network, the clocks
    and a retry that keeps its first signature; its default (600 s) is over five times the
    largest gap seen, and a push refused as late stays recoverable by the patrol."""
    gaps = []
    for name in ORDERS:
        fields = decode_fields(PushKind.ORDER, material.load(name).wire)
        gaps.append(int(fields["timestamp"]) - int(fields["ctime"]))
    assert sorted(gaps) == [18, 20, 23, 62]
    assert GatewaySettings().push_max_age_s >= 5 * max(gaps)


# --- through the running gateway ------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=3)
    async with serve_simulator(config) as served:
        yield served


async def test_a_real_push_goes_through_the_gateway_to_a_workflow_and_a_record(
    dev_server: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: RunningSimulator
) -> None:
    """The dcxt push, its original signature and all, sent to the gateway configured as that
    merchant was (app, secret, console URL); its store is added to the demo company."""
    fixture = material.load("order_dcxt_3987_logged.txt")
    assert fixture.secret is not None
    store = "2898393"
    await demo_pool.execute(
        """
        INSERT INTO stores (code, name, order_type, region, latitude, longitude,
                            delivery_radius_km, self_delivery, address, phone)
        SELECT $1, name, order_type, region, latitude, longitude, delivery_radius_km,
               self_delivery, address, phone
        FROM stores WHERE code = 'SH-XH-001'
        """,
        store,
    )
    settings = GatewaySettings(
        app_id=fixture.app_id,
        app_secret=fixture.secret,
        push_urls={PushKind.ORDER: fixture.url},
        push_max_age_s=0,  # signed in 2019: the age check is for live traffic
    )
    order_id = "28983933726634026"
    client = dev_server.client
    async with (
        platform.client() as meituan,
        Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=WORKFLOWS,
            activities=build_activities(demo_pool, meituan),
        ),
    ):
        app = create_app(client, demo_pool, settings, meituan=meituan)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m.ddera.com") as http:
            response = await http.post(
                urlsplit(fixture.url).path,
                content=fixture.wire,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        assert response.json() == {"data": "ok"}, response.text
        row = None
        for _ in range(200):
            row = await demo_pool.fetchrow(
                "SELECT store_code, total, customer_address, day_seq FROM orders"
                " WHERE order_id = $1",
                order_id,
            )
            if row is not None:
                break
            await asyncio.sleep(0.05)
        handle = client.get_workflow_handle(f"order-{order_id}")
        await handle.terminate("test done")
    assert row is not None, "the order never reached the system of record"
    assert dict(row) == {
        "store_code": store,
        "total": Decimal("0.02"),
        "customer_address": "色金拉",
        "day_seq": 1,
    }
