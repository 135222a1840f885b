"""The simulated platform: order state machine, pushes, timers and faults; the merchant API's
calls are answered here and carried out in `merchant_api.py`.

It stands in for the real platform on our machines (R6.3.1), so it reproduces what the
integration must survive: the confirmation deadline with auto-cancel (R6.1), pushes that
arrive late, twice, out of order or never (R2.1.1, R2.1.2), and API errors and rate limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Coroutine, Mapping
from decimal import Decimal
from typing import Any

import httpx
from pydantic import ValidationError

from localstack.simulator.business import Business, load_business
from localstack.simulator.generator import NO_ANOMALY, SURNAMES, AnomalyKind, OrderGenerator
from localstack.simulator.ids import KeptIds, view_id
from localstack.simulator.merchant_api import (
    ACCEPTED,
    API,
    OPEN,
    ApiFailure,
    int_param,
    platform_date,
)
from localstack.simulator.state import (
    MerchantCall,
    PushAttempt,
    PushRecord,
    Refund,
    SimConfig,
    SimOrder,
)
from meituan.codes import (
    DealOpType,
    ErrorCode,
    LogisticsStatus,
    OrderStatus,
    PlatformCancelReason,
    RefundNotifyType,
    RefundStatus,
)
from meituan.intake import platform_delivery
from meituan.models import (
    ZERO,
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
from meituan.pushes import OK_RESPONSE, PUSH_METHODS, PushKind, encode_push
from meituan.signing import SIG, verify

COURIER_STEPS = (
    LogisticsStatus.SENT_TO_DISPATCH,
    LogisticsStatus.COURIER_ACCEPTED,
    LogisticsStatus.PICKED_UP,
    LogisticsStatus.DELIVERED,
)
AUTO_CANCEL_REASON = "商家超时未接单，系统自动取消"


class AdminError(Exception):
    """An admin request that cannot be carried out; `status` is the HTTP status to answer."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


class Simulator:
    """The platform in one object: usable directly in tests, or served by `create_app`.

    Methods that send pushes or start timers need a running event loop.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        business: Business | None = None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or SimConfig()
        self.business = business or load_business()
        self.generator = OrderGenerator(
            self.business, seed=self.config.seed, anomaly_rate=self.config.anomaly_rate
        )
        self.orders: dict[int, SimOrder] = {}
        self.pushes: list[PushRecord] = []
        self.api_log: list[MerchantCall] = []
        # Separate streams so that fault decisions never shift the generated orders.
        self._fault_rng = random.Random(self.config.seed + 1)
        self._rng = random.Random(self.config.seed + 2)
        self._day_seqs: dict[tuple[str, str], int] = {}
        self._by_day_seq: dict[tuple[str, str, int], int] = {}
        self._next_id = 60_000_000_000
        self._kept = KeptIds.load(self.config.ids_file) if self.config.ids_file else None
        self._http = http
        self._owns_http = http is None
        self._push_tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._held: dict[int, list[asyncio.Event]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.config.push_timeout_s)
        if self.config.order_interval_s:
            self._spawn_timer(self._feed(self.config.order_interval_s))

    async def aclose(self) -> None:
        tasks = [*self._timers, *self._push_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    async def drain(self) -> None:
        """Wait until every push in flight was delivered or failed (bound it with a timeout)."""
        while self._push_tasks:
            await asyncio.gather(*list(self._push_tasks), return_exceptions=True)

    def _spawn(self, bucket: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        bucket.add(task)
        task.add_done_callback(bucket.discard)

    def _spawn_timer(self, coro: Coroutine[Any, Any, None]) -> None:
        self._spawn(self._timers, coro)

    async def _feed(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.create_order()

    def new_id(self) -> int:
        """A refund's or a reminder's id."""
        self._next_id += self._rng.randint(1, 97)  # drawn either way: the seed's stream stays
        if self._kept is not None:
            return self._kept.next_other_id()
        return self._next_id

    def _order_id(self, drawn: int) -> int:
        """The generator's id (drawn from the seed), or the next kept one (`ids_file`)."""
        order_id = drawn if self._kept is None else self._kept.next_order_id()
        while order_id in self.orders:
            order_id = self._rng.randrange(27 * 10**15, 28 * 10**15)
        return order_id

    # -- orders ------------------------------------------------------------------------------

    def order(self, order_id: int) -> SimOrder:
        try:
            return self.orders[order_id]
        except KeyError:
            raise AdminError(404, f"no order {order_id}") from None

    def create_order(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        push: bool = True,
        anomaly: AnomalyKind | str | None = None,
    ) -> SimOrder:
        """A paid order: generated, with `overrides` applied, then pushed unless `push=False`.

        Without overrides the anomaly is drawn by the configured rate; with overrides the order
        is clean unless `anomaly` names a kind, so the caller gets exactly what it asked for.
        """
        overrides = dict(overrides or {})
        if anomaly is None and overrides:
            anomaly = NO_ANOMALY
        store_code = overrides.get("app_poi_code")
        if store_code is not None and store_code not in {s.code for s in self.business.stores}:
            raise AdminError(400, f"unknown store {store_code!r}")
        if "order_id" in overrides:
            try:
                fixed_id = int(overrides["order_id"])
            except (TypeError, ValueError):
                raise AdminError(400, "order_id must be an integer") from None
            if fixed_id in self.orders:
                raise AdminError(409, f"order {fixed_id} exists")
        now = time.time()
        try:
            generated = self.generator.generate(now=now, store_code=store_code, anomaly=anomaly)
        except ValueError as exc:
            raise AdminError(400, str(exc)) from exc
        data = generated.order.model_dump(exclude_none=True)
        data.update(overrides)
        try:
            money_changed = {"detail", "extras", "shipping_fee", "package_bag_money"} & set(
                overrides
            )
            if money_changed and not {"total", "original_price"} & set(overrides):
                draft = OrderPush.model_validate(data)
                data["original_price"] = draft.expected_original_price
                data["total"] = draft.expected_total
            if "order_id" not in overrides:
                data["order_id"] = self._order_id(int(data["order_id"]))
                if self._kept is not None and "wm_order_id_view" not in overrides:
                    data["wm_order_id_view"] = view_id(data["order_id"])
            date = platform_date(float(data.get("ctime") or now))
            code = str(data["app_poi_code"])
            if "day_seq" in overrides:
                seq = int(overrides["day_seq"])
                self._day_seqs[code, date] = max(self._day_seqs.get((code, date), 0), seq)
            else:
                seq = self._day_seqs.get((code, date), 0) + 1
                self._day_seqs[code, date] = seq
            data["day_seq"] = seq
            data["status"] = int(OrderStatus.SUBMITTED)
            order = OrderPush.model_validate(data)
        except (ValidationError, ValueError, TypeError) as exc:
            raise AdminError(400, f"bad order fields: {exc}") from exc

        sim_order = SimOrder(
            order=order,
            anomaly=generated.anomaly if anomaly != NO_ANOMALY else None,
            platform_delivery=platform_delivery(order),
            date=date,
        )
        self.orders[order.order_id] = sim_order
        self._by_day_seq[code, date, seq] = order.order_id
        if push:
            self.push_order(sim_order)
        if self.config.confirm_timeout_s is not None:
            self._spawn_timer(self._auto_cancel(sim_order, self.config.confirm_timeout_s))
        return sim_order

    def push_order(self, sim_order: SimOrder) -> PushRecord:
        """(Re-)send the paid-order push; the status becomes "pushed to store"."""
        if sim_order.status == OrderStatus.SUBMITTED:
            sim_order.set_status(OrderStatus.PUSHED)
        empty = self._rng.random() < self.config.empty_discount_rate
        return self.send_push(PushKind.ORDER, sim_order.current(), sim_order, empty_discount=empty)

    async def _auto_cancel(self, sim_order: SimOrder, after: float) -> None:
        # R6.1: the platform cancels what the store did not confirm in time.
        await asyncio.sleep(after)
        if sim_order.status in OPEN:
            self._cancel(
                sim_order,
                PlatformCancelReason.NOT_CONFIRMED_IN_TIME,
                AUTO_CANCEL_REASON,
                DealOpType.SYSTEM,
            )

    def _cancel(self, sim_order: SimOrder, code: int, reason: str, op: int) -> None:
        sim_order.set_status(OrderStatus.CANCELLED)
        sim_order.cancel_reason_code = code
        sim_order.cancel_reason = reason
        push = CancelPush(
            order_id=sim_order.order_id, reason_code=code, reason=reason, deal_op_type=op
        )
        self.send_push(PushKind.CANCEL, push, sim_order)

    # -- platform-side events (admin API) --------------------------------------------------

    def user_cancel(
        self,
        order_id: int,
        *,
        reason_code: int = PlatformCancelReason.USER_1101,
        reason: str = "用户取消订单",
        deal_op_type: int | None = None,
    ) -> SimOrder:
        """The customer (11xx) or support (12xx) cancels; the store gets a cancel push."""
        sim_order = self.order(order_id)
        if sim_order.status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
            raise AdminError(409, f"order {order_id} is {OrderStatus(sim_order.status).name}")
        if deal_op_type is None:
            deal_op_type = DealOpType.SUPPORT if 1200 <= reason_code < 1300 else DealOpType.USER
        self._cancel(sim_order, reason_code, reason, deal_op_type)
        return sim_order

    def apply_refund(
        self,
        order_id: int,
        *,
        reason: str = "商品有问题",
        partial: bool = False,
        food: list[dict[str, Any]] | None = None,
        notify_type: str = RefundNotifyType.APPLY,
    ) -> Refund:
        """The customer asks for (or withdraws) a refund; the store gets a refund push."""
        sim_order = self.order(order_id)
        if notify_type != RefundNotifyType.APPLY:
            refund = self.open_refund(sim_order)
            if refund is None:
                raise AdminError(409, f"order {order_id} has no open refund")
            if notify_type in (
                RefundNotifyType.CANCEL_REFUND,
                RefundNotifyType.CANCEL_REFUND_COMPLAINT,
            ):
                refund.state = "cancelled"
        else:
            if sim_order.status == OrderStatus.CANCELLED:
                raise AdminError(409, f"order {order_id} is cancelled")
            if partial:
                lines = food or [
                    {"app_food_code": sim_order.order.detail[0].app_food_code, "count": 1}
                ]
                try:
                    refund_food, money = self.refund_lines(sim_order, lines)
                except ApiFailure as exc:
                    raise AdminError(400, exc.msg) from exc
            else:
                refund_food, money = [], sim_order.order.total
            refund = Refund(self.new_id(), partial, money, reason, food=refund_food)
            sim_order.refunds.append(refund)
        if refund.partial and notify_type == RefundNotifyType.APPLY:
            notify_type = RefundNotifyType.PART  # as the platform names a partial request
        common: dict[str, Any] = {
            "order_id": order_id,
            "refund_id": refund.refund_id,
            "notify_type": notify_type,
            "res_type": 0,
            "is_appeal": 0,
            "reason": refund.reason,
            "ctime": int(time.time()),
        }
        if refund.partial:
            push: PlatformModel = PartialRefundPush(**common, food=refund.food, money=refund.money)
            self.send_push(PushKind.PARTIAL_REFUND, push, sim_order)
        else:
            self.send_push(PushKind.REFUND, RefundPush(**common), sim_order)
        return refund

    def remind(self, order_id: int) -> dict[str, Any]:
        """The customer chases the order (催单)."""
        sim_order = self.order(order_id)
        entry: dict[str, Any] = {"remind_id": self.new_id(), "at": time.time(), "reply": None}
        sim_order.reminds.append(entry)
        push = RemindPush(
            order_id=order_id, remind_id=entry["remind_id"], remind_time=int(entry["at"])
        )
        self.send_push(PushKind.REMIND, push, sim_order)
        return entry

    def courier_step(self, order_id: int, logistics_status: int | None = None) -> SimOrder:
        """Move the platform courier to `logistics_status` (default: the next step) and push it."""
        sim_order = self.order(order_id)
        if sim_order.status == OrderStatus.CANCELLED:
            raise AdminError(409, f"order {order_id} is cancelled")
        if logistics_status is None:
            current = sim_order.logistics_status
            upcoming = [s for s in COURIER_STEPS if current is None or s > current]
            if not upcoming:
                raise AdminError(409, f"order {order_id} is already delivered")
            logistics_status = upcoming[0]
        status = LogisticsStatus(logistics_status)
        sim_order.logistics_status = status
        if status == LogisticsStatus.PICKED_UP and sim_order.status == OrderStatus.CONFIRMED:
            sim_order.set_status(OrderStatus.DELIVERING)
        elif status == LogisticsStatus.DELIVERED and sim_order.status in ACCEPTED:
            sim_order.set_status(OrderStatus.COMPLETED)
        courier = status >= LogisticsStatus.COURIER_ACCEPTED and status != LogisticsStatus.CANCELLED
        name = f"{SURNAMES[order_id % len(SURNAMES)]}师傅" if courier else ""
        mobile = f"1{(order_id % 10**10):010d}" if courier else ""
        push = LogisticsPush(
            order_id=order_id,
            logistics_status=status,
            time=int(time.time()),
            dispatcher_name=name,
            dispatcher_mobile=mobile,
        )
        self.send_push(PushKind.LOGISTICS, push, sim_order)
        return sim_order

    def start_courier(self, sim_order: SimOrder, step: float) -> None:
        """The platform's courier walks the order through its steps, one every `step` s."""
        self._spawn_timer(self._courier(sim_order, step))

    async def _courier(self, sim_order: SimOrder, step: float) -> None:
        while True:
            await asyncio.sleep(step)
            current = sim_order.logistics_status
            if sim_order.status == OrderStatus.CANCELLED or (
                current is not None and current >= LogisticsStatus.DELIVERED
            ):
                return
            self.courier_step(sim_order.order_id)

    # -- pushes ------------------------------------------------------------------------------

    def send_push(
        self,
        kind: PushKind,
        push: PlatformModel,
        sim_order: SimOrder | None = None,
        *,
        empty_discount: bool = False,
    ) -> PushRecord:
        """Sign and encode `push` and send it in the background, through the fault knobs."""
        url = self.config.push_url(kind)
        fields = encode_push(
            kind,
            push,
            url=url or "",
            app_id=self.config.app_id,
            secret=self.config.secret,
            empty_discount=empty_discount,
        )
        record = PushRecord(
            seq=len(self.pushes) + 1,
            kind=kind,
            order_id=sim_order.order_id if sim_order else None,
            url=url,
            method=PUSH_METHODS[kind],
            fields=fields,
            created_at=time.time(),
        )
        self.pushes.append(record)
        if sim_order is not None:
            sim_order.pushes.append(record)
        if url is None:
            record.state = "unsent"
            return record
        # Decided by the push itself (its order, its kind and how many of its kind the order has
        # had), so a seed gives the same faults whatever the timing or the other calls.
        faults = self.config.faults
        rng = self._push_rng(kind, sim_order)
        drop_rate = faults.push_drop
        if kind is PushKind.ORDER:
            drop_rate = max(drop_rate, faults.order_push_drop)
        drop = rng.random() < drop_rate
        duplicate = rng.random() < faults.push_duplicate
        delay = rng.random() < faults.push_delay
        reorder = rng.random() < faults.push_reorder
        if drop:
            record.state = "dropped"
            return record
        record.copies = 2 if duplicate else 1
        self._spawn(self._push_tasks, self._deliver(record, delay=delay, reorder=reorder))
        return record

    def _push_rng(self, kind: PushKind, sim_order: SimOrder | None) -> random.Random:
        if sim_order is None:
            return self._fault_rng
        same = sum(1 for p in sim_order.pushes if p.kind is kind)
        order = sim_order.order  # its store and number of the day: the same in every run
        key = f"{self.config.seed}:{order.app_poi_code}:{order.day_seq}"
        return random.Random(f"{key}:{kind.value}:{same}")

    async def _deliver(self, record: PushRecord, *, delay: bool, reorder: bool) -> None:
        faults = self.config.faults
        key = record.order_id or 0
        if reorder:
            record.state = "held"
            released = asyncio.Event()
            self._held.setdefault(key, []).append(released)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(faults.push_reorder_hold_s):
                    await released.wait()
        if delay:
            record.state = "delayed"
            await asyncio.sleep(faults.push_delay_s)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            record.state = "pending"
            delivered = False
            for _ in range(record.copies):
                delivered = await self._send(record) or delivered
            record.state = "delivered" if delivered else "failed"
        if not reorder:
            for event in self._held.pop(key, []):
                event.set()

    async def _send(self, record: PushRecord) -> bool:
        assert record.url is not None and self._http is not None
        for attempt in range(1 + self.config.push_retries):
            if attempt:
                await asyncio.sleep(self.config.push_retry_delay_s)
            try:
                if record.method == "GET":
                    response = await self._http.get(record.url, params=record.fields)
                else:
                    response = await self._http.post(record.url, data=record.fields)
                ok = response.status_code == 200 and response.json() == OK_RESPONSE
                detail = f"HTTP {response.status_code} {response.text[:200]}"
            except (httpx.HTTPError, ValueError) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            record.attempts.append(PushAttempt(at=time.time(), ok=ok, detail=detail))
            if ok:
                return True
        return False

    async def probe(self) -> dict[str, dict[str, bool]]:
        """What the console does when a push URL is saved: one empty GET and one empty POST."""
        assert self._http is not None
        result: dict[str, dict[str, bool]] = {}
        for kind in PushKind:
            url = self.config.push_url(kind)
            if url is None:
                continue
            answers: dict[str, bool] = {}
            for method in ("GET", "POST"):
                try:
                    response = await self._http.request(method, url, content=b"")
                    answers[method] = response.json() == OK_RESPONSE
                except (httpx.HTTPError, ValueError):
                    answers[method] = False
            result[kind.value] = answers
        return result

    # -- merchant API ------------------------------------------------------------------------

    async def handle(self, name: str, url: str, params: Mapping[str, str]) -> Any:
        """Run merchant API call `name`; the result is `data`, a failure raises `ApiFailure`."""
        spec = API[name]
        params = dict(params)
        faults = self.config.faults
        if faults.api_latency_s:
            await asyncio.sleep(faults.api_latency_s)
        call = MerchantCall(
            name=name,
            params={k: v for k, v in params.items() if k != SIG},
            at=time.time(),
            ok=False,
        )
        self.api_log.append(call)
        sim_order: SimOrder | None = None
        try:
            self._authenticate(url, params)
            if faults.fail_next.get(name, 0) > 0:
                faults.fail_next[name] -= 1
                raise ApiFailure(ErrorCode.SYSTEM_ERROR, "系统错误")
            if faults.rate_limit_next > 0:
                faults.rate_limit_next -= 1
                raise ApiFailure(ErrorCode.RATE_LIMITED, "调用过于频繁")
            if faults.rate_limit_rate and self._fault_rng.random() < faults.rate_limit_rate:
                raise ApiFailure(ErrorCode.RATE_LIMITED, "调用过于频繁")
            if faults.api_error_rate and self._fault_rng.random() < faults.api_error_rate:
                raise ApiFailure(ErrorCode.SYSTEM_ERROR, "系统错误")
            missing = [p for p in spec.required if not params.get(p)]
            if missing:
                raise ApiFailure(ErrorCode.MISSING_PARAMETER, f"缺少参数: {', '.join(missing)}")
            if "order_id" in spec.required:
                order_id = int_param(params, "order_id")
                sim_order = self.orders.get(order_id)
                if sim_order is None:
                    raise ApiFailure(ErrorCode.ORDER_NOT_FOUND, "订单不存在")
                sim_order.calls.append(call)
            result = spec.handler(self, params)
        except ApiFailure as exc:
            call.error_code = exc.code
            raise
        call.ok = True
        return result

    def _authenticate(self, url: str, params: Mapping[str, str]) -> None:
        missing = [p for p in ("app_id", "timestamp", SIG) if not params.get(p)]
        if missing:
            raise ApiFailure(ErrorCode.MISSING_PARAMETER, f"缺少系统参数: {', '.join(missing)}")
        if params["app_id"] != self.config.app_id:
            raise ApiFailure(ErrorCode.UNKNOWN_APP_ID, "app_id 不存在")
        if not verify(url, params, self.config.secret):
            raise ApiFailure(ErrorCode.BAD_SIGNATURE, "签名验证错误")

    def latest_day_seq(self, store_code: str, date: str) -> int:
        """The store's last sequence number on the platform date `yyyyMMdd` (0: none yet)."""
        return self._day_seqs.get((store_code, date), 0)

    def order_at(self, store_code: str, date: str, day_seq: int) -> int | None:
        """The order_id of the store's `day_seq`-th order on the platform date `yyyyMMdd`."""
        return self._by_day_seq.get((store_code, date, day_seq))

    def target(self, params: Mapping[str, str]) -> SimOrder:
        """The order a merchant API call names; `handle` made sure it exists."""
        return self.orders[int(params["order_id"])]

    def open_refund(self, sim_order: SimOrder) -> Refund | None:
        return next((r for r in reversed(sim_order.refunds) if r.state == "applied"), None)

    def refund_lines(
        self, sim_order: SimOrder, lines: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], Decimal]:
        refund_food: list[dict[str, Any]] = []
        money = ZERO
        for raw in lines:
            try:
                wanted = RefundFood.model_validate(raw)
            except ValidationError as exc:
                raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, f"food_data: {exc}") from exc
            item = next(
                (
                    i
                    for i in sim_order.order.detail
                    if (wanted.app_food_code and i.app_food_code == wanted.app_food_code)
                    or (wanted.sku_id and i.sku_id == wanted.sku_id)
                ),
                None,
            )
            if item is None or wanted.count < 1 or wanted.count > item.quantity:
                raise ApiFailure(ErrorCode.BAD_PARAMETER_FORMAT, f"food_data: no such line {raw}")
            price = item.price + item.box_price
            money += price * wanted.count
            refund_food.append(
                RefundFood(
                    app_food_code=item.app_food_code,
                    food_name=item.food_name,
                    sku_id=item.sku_id,
                    count=wanted.count,
                    refund_price=price,
                    box_num=Decimal(wanted.count),
                    box_price=item.box_price,
                    origin_food_price=item.price,
                ).model_dump(exclude_none=True)
            )
        return refund_food, money

    def push_refund_status(self, sim_order: SimOrder, refund: Refund) -> None:
        status = RefundStatus.PARTIAL_SUCCEEDED if refund.partial else RefundStatus.FULL_SUCCEEDED
        push = RefundStatusPush(
            refund_id=refund.refund_id,
            refund_status=status,
            money=refund.money,
            order_id=sim_order.order_id,
        )
        self.send_push(PushKind.REFUND_STATUS, push, sim_order)
