"""The merchant API as the simulated platform answers it: each call's required parameters and
what it does to the order, with the platform's error codes (R6.3.1).

`Simulator.handle` authenticates a call and applies the fault knobs before the handler here
runs; a handler only sees a call whose order exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from localstack.simulator.state import Refund
from meituan.client import PLATFORM_TZ
from meituan.codes import ErrorCode, OrderStatus
from meituan.models import OrderPush, loads_json
from meituan.pushes import dumps_json, jsonable

if TYPE_CHECKING:
    from localstack.simulator.engine import Simulator

OPEN = (OrderStatus.SUBMITTED, OrderStatus.PUSHED, OrderStatus.RECEIVED)
"""Statuses in which the store has not confirmed yet: the auto-cancel clock runs (R6.1)."""
ACCEPTED = (OrderStatus.CONFIRMED, OrderStatus.DELIVERING, OrderStatus.COMPLETED)
JSON_TEXT_FIELDS = ("detail", "extras", "poi_receive_detail", "backup_recipient_phone")


class ApiFailure(Exception):
    """A merchant API call answered `{"data":"ng","error":{code,msg}}`."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


Handler = Callable[["Simulator", dict[str, str]], Any]


@dataclass(frozen=True)
class ApiSpec:
    method: str
    required: tuple[str, ...]
    handler: Handler


def platform_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, PLATFORM_TZ).strftime("%Y%m%d")


def detail_payload(order: OrderPush) -> dict[str, Any]:
    """`getOrderDetail` data: typed JSON values, with the list/object fields as JSON text."""
    data = order.model_dump(exclude_none=True)
    for key in JSON_TEXT_FIELDS:
        if key in data:
            data[key] = dumps_json(data[key])
    result: dict[str, Any] = jsonable(data)
    return result


def int_param(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, f"{name} must be an integer") from None


def _status_changed() -> ApiFailure:
    return ApiFailure(ErrorCode.STATUS_CHANGED, "操作失败，订单状态已变更")


def _poi_received(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    if order.status in (OrderStatus.SUBMITTED, OrderStatus.PUSHED):
        order.set_status(OrderStatus.RECEIVED)
    elif order.status != OrderStatus.RECEIVED:
        raise _status_changed()
    return "ok"


def _confirm(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    if order.status not in OPEN:
        raise _status_changed()
    order.set_status(OrderStatus.CONFIRMED)
    return "ok"


def _cancel(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    code = int_param(params, "reason_code")
    if order.status == OrderStatus.COMPLETED:
        raise ApiFailure(ErrorCode.ORDER_FINISHED, "订单已完成，不能取消")
    if order.status == OrderStatus.CANCELLED:
        raise _status_changed()
    order.set_status(OrderStatus.CANCELLED)
    order.cancel_reason_code = code
    order.cancel_reason = params["reason"]
    return "ok"


def _delivering(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    if order.status != OrderStatus.CONFIRMED:
        raise _status_changed()
    order.set_status(OrderStatus.DELIVERING)
    return "ok"


def _arrived(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    if order.status not in (OrderStatus.CONFIRMED, OrderStatus.DELIVERING):
        raise _status_changed()
    order.set_status(OrderStatus.COMPLETED)
    return "ok"


def _preparation_complete(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    if order.status != OrderStatus.CONFIRMED:
        raise _status_changed()
    if not order.meal_ready:
        order.meal_ready = True
        step = sim.config.courier_step_s
        if order.platform_delivery and step is not None:
            sim.start_courier(order, step)
    return "ok"


def _refund_agree(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    refund = sim.open_refund(order)
    if refund is None:
        raise _status_changed()
    refund.state = "agreed"
    if not refund.partial:
        order.set_status(OrderStatus.CANCELLED)
    sim.push_refund_status(order, refund)
    return "ok"


def _refund_reject(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    refund = sim.open_refund(order)
    if refund is None:
        raise _status_changed()
    refund.state = "rejected"
    return "ok"


def _apply_part_refund(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    try:
        lines = loads_json(params["food_data"])
    except ValueError:
        raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, "food_data 不是 JSON") from None
    if not isinstance(lines, list) or not lines:
        raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, "food_data 必须是非空列表")
    if order.status not in ACCEPTED:
        raise _status_changed()
    food, money = sim.refund_lines(order, lines)
    refund = Refund(sim.new_id(), True, money, params["reason"], state="agreed", food=food)
    order.refunds.append(refund)
    sim.push_refund_status(order, refund)
    return "ok"


def _get_order_detail(sim: Simulator, params: dict[str, str]) -> dict[str, Any]:
    return detail_payload(sim.target(params).current())


def _view_status(sim: Simulator, params: dict[str, str]) -> dict[str, int]:
    return {"status": int(sim.target(params).status)}


def _known_store(sim: Simulator, params: dict[str, str]) -> str:
    code = params["app_poi_code"]
    if code not in {store.code for store in sim.business.stores}:
        raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, f"app_poi_code {code} 不存在")
    return code


def _get_order_day_seq(sim: Simulator, params: dict[str, str]) -> dict[str, int]:
    # R2.1.2: the patrol reads the latest sequence number, then walks back to what it saw.
    code = _known_store(sim, params)
    return {"day_seq": sim.latest_day_seq(code, platform_date(time.time()))}


def _get_order_id_by_day_seq(sim: Simulator, params: dict[str, str]) -> dict[str, int]:
    code = _known_store(sim, params)
    day = params["date_time"]
    if len(day) != 8 or not day.isdigit():
        raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, "date_time 格式为 yyyyMMdd")
    seq = int_param(params, "day_seq")
    order_id = sim.order_at(code, day, seq)
    if order_id is None:
        raise ApiFailure(ErrorCode.ORDER_NOT_FOUND, "订单不存在")
    return {"order_id": order_id}


def _remind_reply(sim: Simulator, params: dict[str, str]) -> str:
    order = sim.target(params)
    remind_id = int_param(params, "remind_id")
    entry = next((r for r in order.reminds if r["remind_id"] == remind_id), None)
    if entry is None:
        raise _status_changed()
    entry["reply"] = params["reply_content"]
    return "ok"


API: dict[str, ApiSpec] = {
    "order/poi_received": ApiSpec("GET", ("order_id",), _poi_received),
    "order/confirm": ApiSpec("GET", ("order_id",), _confirm),
    "order/cancel": ApiSpec("GET", ("order_id", "reason", "reason_code"), _cancel),
    "order/delivering": ApiSpec("GET", ("order_id",), _delivering),
    "order/arrived": ApiSpec("GET", ("order_id",), _arrived),
    "order/preparationMealComplete": ApiSpec("GET", ("order_id",), _preparation_complete),
    "order/refund/agree": ApiSpec("GET", ("order_id", "reason"), _refund_agree),
    "order/refund/reject": ApiSpec("GET", ("order_id", "reason"), _refund_reject),
    "order/applyPartRefund": ApiSpec(
        "POST", ("order_id", "reason", "food_data"), _apply_part_refund
    ),
    "order/getOrderDetail": ApiSpec("GET", ("order_id",), _get_order_detail),
    "order/viewstatus": ApiSpec("GET", ("order_id",), _view_status),
    "order/getOrderDaySeq": ApiSpec("GET", ("app_poi_code",), _get_order_day_seq),
    "order/getOrderIdByDaySeq": ApiSpec(
        "GET", ("app_poi_code", "date_time", "day_seq"), _get_order_id_by_day_seq
    ),
    "order/remindReply": ApiSpec(
        "POST", ("order_id", "remind_id", "reply_id", "reply_content"), _remind_reply
    ),
}
"""The merchant API as in the platform doc: path under `/api/v1/`, method, required params."""
