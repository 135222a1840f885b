"""Every merchant call we make is built as the platform's official Java SDK builds it: the same
path, method and parameters, sent the same way, and signed over exactly what is sent.

Source of the expectations, read from the SDK and not from our code: imrobin/meituan-openapi-
java-sdk (the platform's `com.sankuai.meituan.waimai.opensdk` 1.0.13) at commit
e413d5907a9779bef1a168be539a605a468eb9a3:
- `factory/URLFactory.java` lines 243-312: each call's path and method (`urlTypeMap`);
- `constants/ParamRequiredEnum.java` lines 122-155: each call's required parameters;
- `api/OrderAPI.java`: the optional ones (`orderDelivering` courier_name/courier_phone,
  `orderGetOrderDetail` is_mt_logistics);
- `util/HttpUtil.java` lines 55-89 and `api/API.java` lines 86-99: a GET carries every parameter
  in the query; a POST carries app_id, timestamp and sig in the query and the application
  parameters as an `application/x-www-form-urlencoded` body;
- `factory/URLFactory.java` lines 369-410: the signature over all parameters sorted, empty ones
  included.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx
import pytest

from meituan.client import MeituanClient
from meituan.models import RefundFood
from meituan.signing import SIG, verify

BASE = "https://waimaiopen.meituan.com/api/v1/"
SECRET = "a-secret"
SYSTEM = {"app_id", "timestamp", SIG}
ORDER = 27061900311184578


@dataclass(frozen=True)
class Sdk:
    """One call as the official SDK defines it."""

    path: str
    method: str
    required: frozenset[str]
    optional: frozenset[str] = frozenset()


def sdk(path: str, method: str, required: str, optional: str = "") -> Sdk:
    return Sdk(path, method, frozenset(required.split()), frozenset(optional.split()))


Call = Callable[[MeituanClient], Awaitable[object]]
CALLS: dict[str, tuple[Sdk, Call]] = {
    "poi_received": (
        sdk("order/poi_received", "GET", "order_id"),
        lambda c: c.poi_received(ORDER),
    ),
    "confirm": (sdk("order/confirm", "GET", "order_id"), lambda c: c.confirm(ORDER)),
    "cancel": (
        sdk("order/cancel", "GET", "order_id reason reason_code"),
        lambda c: c.cancel(ORDER, "", 2009),  # an empty reason is sent, so it is signed
    ),
    "delivering": (
        sdk("order/delivering", "GET", "order_id", "courier_name courier_phone"),
        lambda c: c.delivering(ORDER),
    ),
    "arrived": (sdk("order/arrived", "GET", "order_id"), lambda c: c.arrived(ORDER)),
    "preparation_complete": (
        sdk("order/preparationMealComplete", "GET", "order_id"),
        lambda c: c.preparation_complete(ORDER),
    ),
    "refund_agree": (
        sdk("order/refund/agree", "GET", "order_id reason"),
        lambda c: c.refund_agree(ORDER, "同意退款"),
    ),
    "refund_reject": (
        sdk("order/refund/reject", "GET", "order_id reason"),
        lambda c: c.refund_reject(ORDER, "已出餐"),
    ),
    "apply_part_refund": (
        sdk("order/applyPartRefund", "POST", "order_id reason food_data"),
        lambda c: c.apply_part_refund(
            ORDER, "少送可乐", [RefundFood(app_food_code="G-CKW", sku_id="G-CKW", count=1)]
        ),
    ),
    "get_order_detail": (
        sdk("order/getOrderDetail", "GET", "order_id", "is_mt_logistics"),
        lambda c: c.get_order_detail(ORDER),
    ),
    "view_status": (sdk("order/viewstatus", "GET", "order_id"), lambda c: c.view_status(ORDER)),
    "get_order_day_seq": (
        sdk("order/getOrderDaySeq", "GET", "app_poi_code"),
        lambda c: c.get_order_day_seq("SH-XH-001"),
    ),
    "get_order_id_by_day_seq": (
        sdk("order/getOrderIdByDaySeq", "GET", "app_poi_code date_time day_seq"),
        lambda c: c.get_order_id_by_day_seq("SH-XH-001", 12, "20261205"),
    ),
    "remind_reply": (
        sdk("order/remindReply", "POST", "order_id reply_id reply_content remind_id"),
        lambda c: c.remind_reply(ORDER, 881, "马上送到"),
    ),
}

ANSWERS = {
    "order/getOrderDetail": {
        "order_id": ORDER,
        "app_poi_code": "SH-XH-001",
        "total": 10,
        "detail": [{"app_food_code": "G-CKW", "price": 5, "quantity": 2}],
    },
    "order/viewstatus": {"status": 4},
    "order/getOrderDaySeq": {"day_seq": 12},
    "order/getOrderIdByDaySeq": {"order_id": ORDER},
}


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, str]
    content_type: str


async def send(call: Call) -> Sent:
    sent: list[Sent] = []

    def platform(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        sent.append(
            Sent(
                request.method,
                request.url.path.removeprefix("/api/v1/"),
                dict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
                dict(parse_qsl(body, keep_blank_values=True)),
                request.headers.get("content-type", ""),
            )
        )
        data = ANSWERS.get(sent[-1].path, "ok")
        return httpx.Response(200, text=json.dumps({"data": data}))

    http = httpx.AsyncClient(transport=httpx.MockTransport(platform))
    async with MeituanClient(BASE, "4321", SECRET, http_client=http) as client:
        await call(client)
    await http.aclose()
    [request] = sent
    return request


@pytest.mark.parametrize("name", list(CALLS))
async def test_a_call_is_sent_as_the_official_sdk_sends_it(name: str) -> None:
    spec, call = CALLS[name]
    sent = await send(call)
    assert (sent.method, sent.path) == (spec.method, spec.path)
    everything = {**sent.query, **sent.body}
    application = set(everything) - SYSTEM
    assert spec.required <= application, f"missing {spec.required - application}"
    assert application <= spec.required | spec.optional, f"not in the SDK: {application}"
    if spec.method == "GET":
        assert sent.body == {}
    else:
        assert set(sent.query) == SYSTEM
        assert set(sent.body) == application
        assert sent.content_type == "application/x-www-form-urlencoded"
    # Signed over exactly what is sent, for the URL without its query.
    assert verify(BASE + spec.path, everything, SECRET)


async def test_an_empty_parameter_is_sent_and_signed() -> None:
    """`order/cancel` with an empty reason: the platform checks `reason=` in the signature."""
    spec, call = CALLS["cancel"]
    sent = await send(call)
    assert sent.query["reason"] == ""
    params = {k: v for k, v in sent.query.items() if k != "reason"}
    assert not verify(BASE + spec.path, params, SECRET)
    assert verify(BASE + spec.path, sent.query, SECRET)


def test_every_client_call_is_covered() -> None:
    public = {
        name
        for name in vars(MeituanClient)
        if not name.startswith("_")
        and name not in {"call", "signed_params", "from_env", "aclose"}
        and callable(getattr(MeituanClient, name))
    }
    assert public == set(CALLS)
