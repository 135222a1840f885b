"""The simulated staff of the demo: the people who would use orderctl, acting through the
staff API, each with their own token.

They find work as a person does, from the system of record through the API: the open orders in
a stage that needs hands, the anomaly inbox, and what exactly is pending from the order's
detail. Each action is sent as the person who does it (the assignee, the technician, the
manager), so the API's permission table decides as it would for a real person. A small share
of the work is done slowly on purpose, just past its soft deadline, so that the deadline clocks
have something to show. An action refused because the order moved on meanwhile is normal
concurrency: it is counted, not raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from activities.policy import current_policy
from localstack.simulator.business import Business, load_business
from schemas.anomaly import Decide, Decision
from schemas.contract import Event, deadline_key
from schemas.messages import (
    PLATFORM_KINDS,
    Action,
    ConfirmWithCustomer,
    DecideRefund,
    MarkDelivered,
    MarkReady,
    ReconfirmVisit,
    RecordRating,
    ReplyReminder,
    ResolveFeedback,
    RespondFeedback,
)
from schemas.order import CustomerChanges, DeliveryMode, OrderType, PlatformOrder, Stage
from schemas.people import Role
from schemas.policy import Clause, Policy
from schemas.reads import OpenAnomaly
from schemas.review import AnomalyKind
from schemas.status import DeadlineState, FeedbackState, OrderStatus, RefundState
from starter.api import tokens
from starter.api.client import Api, body, connect
from starter.db_cli import DEMO_FILE
from starter.failures import Exit, Failure

# Merchant cancel reason codes (meituan.codes.MerchantCancelReason).
OTHER, SOLD_OUT, CUSTOMER_UNREACHABLE = 2007, 2009, 2012

HANDS_ON = (Stage.ASSIGNED, Stage.CONFIRMED, Stage.IN_PROGRESS, Stage.DELIVERING, Stage.DELIVERED)
"""Stages in which an order waits for a person; earlier ones are the system's own steps."""
LISTED = 1000
"""Open orders and anomalies looked at per round."""
STALE = (Exit.NOT_ALLOWED, Exit.NOT_FOUND)
"""The API's answers for an order that moved on, or ended, since it was looked at."""

OrderLookup = Callable[[str], PlatformOrder | None]
"""The order as the platform shows it (the merchant console): what a manager checks prices with."""


@dataclass(frozen=True)
class StaffSettings:
    seed: int = 0
    think_s: tuple[float, float] = (0.5, 2.5)
    """How long a person takes for one action."""
    slow_share: float = 0.08
    """Share of actions done just past their soft deadline."""
    slow_past_due_s: tuple[float, float] = (1.0, 3.0)
    slow_at_most_s: float = 40.0
    """A deadline further away than this is not waited for (a service slot tomorrow)."""
    poll_s: float = 1.0
    recheck_s: float = 3.0
    """An order with nothing to do is looked at again after this, or when its stage changes."""
    cancel_share: float = 0.15
    """Share of info, price and other anomalies a manager cancels instead of resuming."""
    unsatisfied_share: float = 0.3
    """Share of complaints whose first resolution does not satisfy the customer (R4.2.3)."""
    refund_agree_share: float = 0.5
    low_rating_share: float = 0.1
    visit_in_s: tuple[float, float] = (30.0, 120.0)
    """A service visit is promised this far ahead (the slot booked is the next free one)."""


@dataclass
class StaffReport:
    actions: Counter[str] = field(default_factory=Counter)
    slow: Counter[str] = field(default_factory=Counter)
    """Actions done past their soft deadline on purpose, by action."""
    refused: Counter[str] = field(default_factory=Counter)
    """Updates the workflow refused because the order had moved on, by action."""
    decisions: Counter[str] = field(default_factory=Counter)
    """Anomaly decisions, as `kind:decision`."""
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "actions": dict(sorted(self.actions.items())),
            "slow_on_purpose": dict(sorted(self.slow.items())),
            "refused_as_stale": dict(sorted(self.refused.items())),
            "errors": self.errors[:10],
        }


class Due(Protocol):
    """A deadline as `_pace` reads it: an order's `DeadlineView` or an anomaly's."""

    @property
    def key(self) -> str: ...
    @property
    def state(self) -> DeadlineState: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def hard_at(self) -> datetime: ...


@dataclass(frozen=True)
class Job:
    """One action on one order: the update with its input (whose `by` is the person who does
    it), and the deadline it answers to."""

    name: str
    deadline_key: str | None
    arg: Action


@dataclass(frozen=True)
class People:
    """Every person's own client of the staff API, and whose client finds the work."""

    clients: dict[str, Api]
    reader: Api

    def of(self, staff_id: str) -> Api:
        return self.clients[staff_id]


@contextlib.asynccontextmanager
async def signed_in(api_url: str, pool: asyncpg.Pool) -> AsyncIterator[People]:
    """A token for each active person, a day long; the admin's client reads the listings."""
    rows = await pool.fetch("SELECT staff_id, role FROM staff WHERE active ORDER BY staff_id")
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, Api] = {}
        for row in rows:
            token = await tokens.issue(pool, row["staff_id"], timedelta(days=1))
            clients[row["staff_id"]] = await stack.enter_async_context(
                connect(30.0, token=token, url=api_url)
            )
        admin = next(r["staff_id"] for r in rows if r["role"] == Role.ADMIN)
        yield People(clients, clients[admin])


def _now() -> datetime:
    return datetime.now(UTC)


class Staff:
    """Every person of the demo company at once; `run()` works until cancelled."""

    def __init__(
        self,
        people: People,
        settings: StaffSettings | None = None,
        *,
        lookup: OrderLookup | None = None,
        business: Business | None = None,
        managers: dict[str, str] | None = None,
        policy: Policy | None = None,
    ) -> None:
        """`policy` is the one the orders run under (for the anomaly hard limit, which the
        anomaly's status does not show); `managers` maps a store to its manager."""
        self.people = people
        self.settings = settings or StaffSettings()
        self.lookup = lookup
        self.business = business or load_business()
        self.managers = managers if managers is not None else managers_by_store()
        self.policy = policy or current_policy()
        self.report = StaffReport()
        self._busy: set[str] = set()
        self._idle: dict[str, tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._round()
                except Failure as failure:  # the API busy or restarting: look again next round
                    self._error(f"listing: {failure.message}")
                await asyncio.sleep(self.settings.poll_s)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _round(self) -> None:
        reader = self.people.reader
        for row in await reader.call("GET", "/anomalies", params={"limit": LISTED}):
            held = OpenAnomaly.model_validate(row)
            self._spawn(f"anomaly:{held.anomaly_id}", self._decide_anomaly, held)
        now = time.monotonic()
        listed = await reader.call("GET", "/orders", params={"running": 1, "limit": LISTED})
        for row in listed:
            order_id, stage = row["order_id"], row["stage"]
            if stage not in HANDS_ON:
                continue
            seen = self._idle.get(order_id)
            if seen and seen[0] == stage and now - seen[1] < self.settings.recheck_s:
                continue
            self._spawn(order_id, self._work, order_id, stage)

    def _spawn(self, key: str, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        """One person per order at a time: an order being handled is not picked up again."""
        if key in self._busy:
            return
        self._busy.add(key)

        async def guarded() -> None:
            try:
                await work(*args)
            finally:
                self._busy.discard(key)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _error(self, text: str) -> None:
        self.report.errors.append(text)

    def _rng(self, *key: object) -> random.Random:
        """Per order and action, so a decision does not depend on which order came first."""
        return random.Random(":".join(str(k) for k in (self.settings.seed, *key)))

    # --- orders ----------------------------------------------------------------------------------

    async def _work(self, order_id: str, stage: str) -> None:
        try:
            await self._work_on(order_id, stage)
        except Exception as exc:  # one order's trouble must not stop the others' work
            self._error(f"{order_id}: {type(exc).__name__}: {exc}")

    async def _work_on(self, order_id: str, stage: str) -> None:
        job: Job | None = None
        try:
            found = await self.people.reader.call("GET", f"/orders/{order_id}")
            status = OrderStatus.model_validate(found)
            job = self._next(status)
            if job is None:
                self._idle[order_id] = (stage, time.monotonic())
                return
            self._idle.pop(order_id, None)
            await self._pace(status.order_id, job.name, job.deadline_key, status.deadlines)
            await self.people.of(job.arg.by).update(order_id, job.name, job.arg)
            self.report.actions[job.name] += 1
        except Failure as failure:
            if failure.code not in STALE:
                raise
            self.report.refused[job.name if job else "read"] += 1

    async def _pace(
        self, order_id: str, action: str, deadline_key: str | None, deadlines: Sequence[Due]
    ) -> None:
        """A person's time for the action, or on purpose just past its soft deadline."""
        rng = self._rng(order_id, action, deadline_key)
        settings = self.settings
        if deadline_key and rng.random() < settings.slow_share:
            view = next(
                (d for d in deadlines if d.key == deadline_key and d.state is DeadlineState.OPEN),
                None,
            )
            if view is not None:
                target = view.due_at + timedelta(seconds=rng.uniform(*settings.slow_past_due_s))
                target = min(target, view.hard_at - timedelta(seconds=2))
                wait = (target - _now()).total_seconds()
                if 0 < wait <= settings.slow_at_most_s:
                    self.report.slow[action] += 1
                    await asyncio.sleep(wait)
                    return
        await asyncio.sleep(rng.uniform(*settings.think_s))

    def _next(self, s: OrderStatus) -> Job | None:
        """What a person would do next on this order, most urgent first."""
        if s.stage.terminal or s.stage is Stage.ON_HOLD:
            return None
        manager = (
            s.assignee.manager_id
            if s.assignee and s.assignee.manager_id
            else self.managers.get(s.store_code, "")
        )
        staff = s.assignee.staff_id if s.assignee else manager
        return (
            self._feedback_job(s, staff)
            or self._refund_job(s, manager)
            or self._reminder_job(s, staff)
            or self._stage_job(s, staff)
        )

    def _feedback_job(self, s: OrderStatus, staff: str) -> Job | None:
        """R4.2.2 respond, R4.2.3 resolve; a complaint is sometimes not settled the first time."""
        for case in s.feedback:
            if case.kind in PLATFORM_KINDS:
                continue  # answered on the platform: the refund and reminder jobs
            n, r = case.case, case.round
            if case.state is FeedbackState.AWAITING_RESPONSE:
                respond = RespondFeedback(
                    by=staff, case=n, response="非常抱歉，已安排专人跟进，今天内给您答复。"
                )
                return Job(
                    "respond_feedback",
                    deadline_key(Clause.FEEDBACK_RESPONSE, f"{n}.{r}"),
                    respond,
                )
            if case.state is FeedbackState.AWAITING_RESOLUTION:
                unhappy = r == 1 and (
                    self._rng(s.order_id, "unsatisfied", n).random()
                    < self.settings.unsatisfied_share
                )
                resolve = ResolveFeedback(
                    by=staff,
                    case=n,
                    resolution="已为您补发并赠送优惠券。" if r > 1 else "已核实，下次注意。",
                    satisfied=not unhappy,
                )
                return Job(
                    "resolve_feedback",
                    deadline_key(Clause.FEEDBACK_RESOLUTION, f"{n}.{r}"),
                    resolve,
                )
        return None

    def _refund_job(self, s: OrderStatus, manager: str) -> Job | None:
        for refund in s.refunds:
            if refund.state is RefundState.AWAITING_DECISION:
                agree = (
                    self._rng(s.order_id, "refund", refund.refund_id).random()
                    < self.settings.refund_agree_share
                )
                decide = DecideRefund(
                    by=manager,
                    refund_id=refund.refund_id,
                    agree=agree,
                    reason="核实属实，同意退款" if agree else "商品已按订单送达，不支持退款",
                )
                return Job(
                    "decide_refund",
                    deadline_key(Clause.REFUND_DECISION, refund.refund_id),
                    decide,
                )
        return None

    def _reminder_job(self, s: OrderStatus, staff: str) -> Job | None:
        """The order's reminders as the record shows them; not its timeline, which misses one
        pushed before the order was recorded (it started the order, signal-with-start)."""
        for reminder in s.reminders:
            if reminder.reply is None:
                reply = ReplyReminder(
                    by=staff, remind_id=reminder.remind_id, text="您的订单正在加急处理，请稍候。"
                )
                return Job(
                    "reply_reminder",
                    deadline_key(Clause.REMINDER_REPLY, reminder.remind_id),
                    reply,
                )
        return None

    def _stage_job(self, s: OrderStatus, staff: str) -> Job | None:
        events = {e.event for e in s.timeline}
        delivered = Event.DELIVERED_WITH_PROOF in events
        service = s.order_type is OrderType.SERVICE
        if s.awaiting_reconfirmation or (
            service and s.stage is Stage.ASSIGNED and s.promise is None
        ):
            return self._confirm_job(s, staff)
        if s.stage is Stage.IN_PROGRESS and s.order_type is OrderType.GOODS:
            if Event.READY not in events:
                ready = MarkReady(by=staff, note="已出餐，打包贴签")
                return Job(
                    "mark_ready",
                    "prepare",
                    ready,
                )
            if s.delivery_mode is DeliveryMode.PICKUP and not delivered:
                return self._delivered_job(s, staff, "deliver", f"pickup-code:{s.order_id[-4:]}")
        if (
            s.stage is Stage.DELIVERING
            and s.delivery_mode is DeliveryMode.SELF_DELIVERY
            and not delivered
        ):
            return self._delivered_job(s, staff, "deliver", f"photo:door-{s.order_id[-6:]}.jpg")
        if service and s.stage is Stage.IN_PROGRESS and s.booking is not None:
            technician = s.booking.staff_id
            if Event.VISIT_RECONFIRMED not in events:
                again = ReconfirmVisit(by=technician, note="已电话确认上门时间和地址")
                return Job(
                    "reconfirm_visit",
                    "reconfirm_visit",
                    again,
                )
            if not delivered:
                return self._delivered_job(s, technician, "execute", "signature:customer")
        if service and s.stage is Stage.DELIVERED and s.rating is None:
            rng = self._rng(s.order_id, "rating")
            low = rng.random() < self.settings.low_rating_share
            rating = RecordRating(
                by=staff,
                score=2 if low else rng.choice((4, 5, 5)),
                comment="师傅迟到了，清洁不到位" if low else "",
            )
            return Job(
                "record_rating",
                None,
                rating,
            )
        return None

    def _confirm_job(self, s: OrderStatus, staff: str) -> Job:
        """R2.4.1 / R2.4.3 the customer is called and told when to expect the order."""
        rng = self._rng(s.order_id, "confirm", len(s.timeline))
        at = _now() + timedelta(seconds=rng.uniform(*self.settings.visit_in_s))
        confirm = ConfirmWithCustomer(
            by=staff,
            channel="phone",
            promised_delivery_at=at,
            promises="师傅自带工具和鞋套，完工后现场验收",
        )
        key = "confirm" if not s.awaiting_reconfirmation else None
        return Job(
            "confirm_with_customer",
            key,
            confirm,
        )

    def _delivered_job(self, s: OrderStatus, by: str, clause: str, proof: str) -> Job:
        """R3.4.1 delivered with proof."""
        done = MarkDelivered(by=by, proof=proof)
        return Job(
            "mark_delivered",
            clause,
            done,
        )

    # --- anomalies -------------------------------------------------------------------------------

    async def _decide_anomaly(self, held: OpenAnomaly) -> None:
        try:
            await self._decide(held)
        except Failure as failure:
            if failure.code in STALE:  # decided or ended meanwhile
                self.report.refused["decide_anomaly"] += 1
            else:
                self._error(f"{held.anomaly_id}: {failure.message}")
        except Exception as exc:
            self._error(f"{held.anomaly_id}: {type(exc).__name__}: {exc}")

    async def _decide(self, held: OpenAnomaly) -> None:
        """R5.2.2 the manager looks into the paused order and decides (R5.2.3)."""
        found = await self.people.reader.call("GET", f"/orders/{held.order_id}")
        status = OrderStatus.model_validate(found)
        decide = self._decision(status, held)
        policy = self.policy.for_type(status.order_type or OrderType.GOODS)
        limit = policy.deadlines.anomaly_decision
        view = _AnomalyDeadline(held, held.opened_at + limit.hard)
        await self._pace(held.anomaly_id, "decide", view.key, [view])
        number = held.anomaly_id.rsplit("-", 1)[1]
        await self.people.of(decide.by).call(
            "POST",
            f"/orders/{held.order_id}/anomaly/decide",
            json=body(decide),
            params={"number": number},
        )
        self.report.actions["decide_anomaly"] += 1
        self.report.decisions[f"{held.kind}:{decide.decision.value}"] += 1

    def _decision(self, s: OrderStatus, a: OpenAnomaly) -> Decide:
        rng = self._rng(a.anomaly_id, "decision")
        manager = (
            s.assignee.manager_id
            if s.assignee and s.assignee.manager_id
            else self.managers.get(s.store_code, "manager")
        )
        give_up = rng.random() < self.settings.cancel_share
        kind = AnomalyKind(a.kind)
        if kind is AnomalyKind.FRAUD:
            return Decide(
                by=manager,
                decision=Decision.CONFIRM_FRAUD,
                cause=f"credit check: {a.detail}",
                responsibility="customer",
                note="reported to the platform",
            )
        if kind is AnomalyKind.PROHIBITED:  # R5.2.3 prohibited content is cancelled
            return _cancel(manager, OTHER, f"prohibited item: {a.detail}", "platform")
        if kind is AnomalyKind.INFO:
            if give_up:
                return _cancel(manager, CUSTOMER_UNREACHABLE, "customer unreachable", "customer")
            return Decide(
                by=manager,
                decision=Decision.CORRECT_INFO,
                cause=a.detail,
                responsibility="customer",
                note="corrected with the customer by phone",
                corrections=self._corrections(s, a, rng),
            )
        if kind is AnomalyKind.PRICE:
            total = self._fair_total(s.order_id)
            if give_up or total is None:
                return _cancel(manager, OTHER, f"price not agreed: {a.detail}", "platform")
            return Decide(
                by=manager,
                decision=Decision.ADJUST_PRICE,
                cause=a.detail,
                responsibility="platform",
                note=f"total set to {total} from our price list",
                new_total=total,
            )
        if "shortage" in a.detail:
            return _cancel(manager, SOLD_OUT, a.detail, "store")
        if give_up:
            return _cancel(manager, OTHER, a.detail, "system")
        if "courier" in a.detail or "system fault" in a.detail:
            return Decide(
                by=manager,
                decision=Decision.AGREED_WITH_PLATFORM,
                cause=a.detail,
                responsibility="platform",
                note="agreed with the platform to carry on",
                resume=True,
            )
        return Decide(
            by=manager,
            decision=Decision.DISMISS,
            cause=a.detail,
            responsibility="none",
            note="investigated: nothing wrong",
        )

    def _corrections(self, s: OrderStatus, a: OpenAnomaly, rng: random.Random) -> CustomerChanges:
        """What the customer told the manager on the phone, field by field of the failed rules."""
        fields: dict[str, Any] = {}
        if "phone_valid" in a.detail:
            fields["phone"] = "139" + "".join(rng.choices("0123456789", k=8))
        if "name_present" in a.detail:
            fields["name"] = "陈(女士)"
        if "address_present" in a.detail or "address_located" in a.detail:
            store = self.business.store(s.store_code)
            street = store.address.split("路")[0]
            fields["address"] = f"{street}路{rng.randint(1, 600)}弄{rng.randint(1, 30)}号"
            fields["latitude"] = round(store.latitude + rng.uniform(-0.01, 0.01), 6)
            fields["longitude"] = round(store.longitude + rng.uniform(-0.01, 0.01), 6)
        if not fields:
            fields["remarks"] = "数量与内容已与顾客电话确认"
        return CustomerChanges(**fields)

    def _fair_total(self, order_id: str) -> Decimal | None:
        """The order priced from our list, with discounts held to a reasonable share (R2.2.3)."""
        order = self.lookup(order_id) if self.lookup else None
        if order is None:
            return None
        items = Decimal(0)
        boxes = Decimal(0)
        for line in order.items:
            listed = self.business.sku(line.sku)
            items += (listed.price if listed else line.unit_price) * line.quantity
            boxes += (listed.box_price if listed else line.box_price) * line.box_num
        discounts = min(
            sum((d.amount for d in order.discounts), Decimal(0)), items * Decimal("0.3")
        )
        total = items + boxes + order.shipping_fee + order.package_fee - discounts
        return total.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class _AnomalyDeadline:
    """The anomaly's decision deadline in the shape `_pace` reads (key, state, due, hard)."""

    anomaly: OpenAnomaly
    hard_at: datetime
    key: str = "anomaly_decision"

    @property
    def state(self) -> DeadlineState:
        return DeadlineState.OPEN if _now() < self.due_at else DeadlineState.BREACHED

    @property
    def due_at(self) -> datetime:
        return self.anomaly.due_at


def _cancel(by: str, code: int, cause: str, responsibility: str) -> Decide:
    return Decide(
        by=by,
        decision=Decision.CANCEL,
        cause=cause,
        responsibility=responsibility,
        cancel_code=code,
    )


def managers_by_store(path: Path = DEMO_FILE) -> dict[str, str]:
    """Each store's manager: the manager of the department of its region and order type."""
    data = json.loads(path.read_text(encoding="utf-8"))
    by_department = {(d["region"], d["order_type"]): d.get("manager") for d in data["departments"]}
    return {
        store["code"]: manager
        for store in data["stores"]
        if (manager := by_department.get((store["region"], store["order_type"])))
    }
