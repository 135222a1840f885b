"""The business day as the demo plays it: when each customer orders and what they do after, and
the loop that places the orders and watches them until every one has ended."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from localstack.demo.options import ORDERS_QUERY, SHOWN_STAGES, TERMINAL, DemoOptions
from localstack.devstack import Say
from localstack.simulator import AdminError, SimOrder, Simulator
from localstack.staff import Staff
from meituan.codes import PlatformCancelReason
from schemas.contract import order_id_in, order_workflow_id
from schemas.messages import CustomerFeedback, FeedbackKind
from schemas.order import Stage
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow


@dataclass
class Customer:
    """What one order's customer will do; seeded per order so timing does not change it."""

    index: int
    created_after_s: float
    cancel_after_s: float | None = None
    remind_after_s: float | None = None
    complain: bool = False
    refund: str | None = None  # "full" or "partial"


def plan_customers(orders: int, seed: int, window_s: float) -> list[Customer]:
    """When each order is placed, and which customers cancel, remind, complain or want money
    back; each kind of event happens at least once when there are orders enough."""
    step = window_s / max(orders, 1)
    plan: list[Customer] = []
    for i in range(orders):
        rng = random.Random(f"{seed}:customer:{i}")
        customer = Customer(i, i * step + rng.uniform(0, step * 0.8))
        if rng.random() < 0.1:
            # Early: takeout can be ready and delivered within seconds, then it is too late.
            customer.cancel_after_s = rng.uniform(0.5, 2.0)
        elif rng.random() < 0.05:
            customer.remind_after_s = rng.uniform(4, 9)
        elif rng.random() < 0.07:
            customer.complain = True
        elif rng.random() < 0.04:
            customer.refund = "full" if rng.random() < 0.6 else "partial"
        plan.append(customer)
    free = random.Random(f"{seed}:forced")
    untouched = [
        c for c in plan if not (c.cancel_after_s or c.remind_after_s or c.complain or c.refund)
    ]
    free.shuffle(untouched)

    def ensure(has: Callable[[Customer], bool], give: Callable[[Customer], None]) -> None:
        if untouched and not any(has(c) for c in plan):
            give(untouched.pop())

    ensure(lambda c: c.cancel_after_s is not None, lambda c: setattr(c, "cancel_after_s", 0.8))
    if orders >= 4:
        ensure(lambda c: c.complain, lambda c: setattr(c, "complain", True))
        ensure(lambda c: c.refund is not None, lambda c: setattr(c, "refund", "full"))
    if orders >= 10:
        ensure(lambda c: c.remind_after_s is not None, lambda c: setattr(c, "remind_after_s", 6))
    return plan


Intent = tuple[str, bool, Callable[[], Awaitable[bool]]]
"""A customer's event: its name, whether it is due now, and doing it (False: too late)."""
REFUNDABLE = (Stage.IN_PROGRESS.value, Stage.DELIVERING.value, Stage.DELIVERED.value)
ENDED = {s.value for s in TERMINAL}


@dataclass
class Day:
    """The business day as the demo watches it: orders placed, their stages, customer events."""

    sim: Simulator
    client: Client
    plan: list[Customer]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    placed: dict[int, str] = field(default_factory=dict)
    """Plan index -> workflow id."""
    placed_at: dict[int, float] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    done: set[tuple[int, str]] = field(default_factory=set)
    events: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def place(self, customer: Customer, anomaly: str | None = None) -> SimOrder:
        """The platform creates the order and pushes it, signed, to the gateway; the
        generator decides by its anomaly rate unless `anomaly` names a kind."""
        order = self.sim.create_order(None, anomaly=anomaly)
        self.placed[customer.index] = order_workflow_id(order.order_id)
        self.placed_at[customer.index] = time.monotonic()
        return order

    async def customers_act(self) -> None:
        """Each planned event happens once, when the order is at the point it is about; an
        order that ended first makes it moot."""
        now = time.monotonic()
        for customer in self.plan:
            workflow_id = self.placed.get(customer.index)
            if workflow_id is None:
                continue
            stage = self.stages.get(workflow_id, "")
            age = now - self.placed_at[customer.index]
            for name, due, act in self._intents(customer, workflow_id, stage, age):
                key = (customer.index, name)
                if key in self.done or not (due or stage in ENDED):
                    continue
                self.done.add(key)
                try:
                    acted = stage not in ENDED and await act()
                except RPCError:
                    self.done.discard(key)  # Temporal unreachable: the customer tries again
                    raise
                if acted:
                    self.events[name] += 1
                else:
                    self.missed[name] += 1

    def _intents(self, c: Customer, workflow_id: str, stage: str, age: float) -> list[Intent]:
        order_id = int(order_id_in(workflow_id))
        intents: list[Intent] = []
        if c.cancel_after_s is not None:
            intents.append(("user_cancel", age >= c.cancel_after_s, lambda: self._cancel(order_id)))
        if c.remind_after_s is not None:
            intents.append(("reminder", age >= c.remind_after_s, lambda: self._remind(order_id)))
        if c.complain:
            due = stage == Stage.DELIVERED.value
            intents.append(("complaint", due, lambda: self._complain(workflow_id)))
        if c.refund is not None:
            partial = c.refund == "partial"
            intents.append(
                (
                    f"refund_{c.refund}",
                    stage in REFUNDABLE,
                    lambda: self._refund(order_id, partial),
                )
            )
        return intents

    async def _cancel(self, order_id: int) -> bool:
        """The customer cancels in the app: the platform pushes the cancellation."""
        try:
            self.sim.user_cancel(order_id, reason_code=PlatformCancelReason.USER_1101)
        except AdminError:
            return False  # already completed or cancelled on the platform
        return True

    async def _remind(self, order_id: int) -> bool:
        self.sim.remind(order_id)
        return True

    async def _refund(self, order_id: int, partial: bool) -> bool:
        try:
            self.sim.apply_refund(order_id, reason="餐品有问题", partial=partial)
        except AdminError:
            return False
        return True

    async def _complain(self, workflow_id: str) -> bool:
        """R4.2.1 a complaint by phone, sent as orderctl sends it: the customer_feedback signal."""
        feedback = CustomerFeedback(
            kind=FeedbackKind.COMPLAINT, text="送来的菜凉了，汤也洒了", channel="phone"
        )
        await self.client.get_workflow_handle(workflow_id).signal(
            OrderWorkflow.customer_feedback, feedback
        )
        return True

    async def watch(self) -> None:
        """One visibility listing: every order's stage and whether it still runs."""
        stages: dict[str, str] = {}
        running: set[str] = set()
        async for wf in self.client.list_workflows(ORDERS_QUERY):
            stages[wf.id] = wf.typed_search_attributes.get(sa.ORDER_STAGE) or Stage.RECEIVED.value
            if wf.status is WorkflowExecutionStatus.RUNNING:
                running.add(wf.id)
        self.stages, self.running = stages, running

    def all_finished(self) -> bool:
        ids = set(self.placed.values())
        return (
            len(self.placed) == len(self.plan)
            and ids <= set(self.stages)
            and not (ids & self.running)
        )

    def progress(self) -> str:
        counts = Counter(self.stages[w] for w in self.placed.values() if w in self.stages)
        line = " · ".join(f"{stage.value} {counts.get(stage.value, 0)}" for stage in SHOWN_STAGES)
        waiting = len(self.plan) - len(self.placed)
        unseen = sum(1 for w in self.placed.values() if w not in self.stages)
        extra = (f" · to come {waiting}" if waiting else "") + (
            f" · in flight {unseen}" if unseen else ""
        )
        return f"t+{self.elapsed():.0f}s  {line}{extra}"


async def business_day(
    sim: Simulator, client: Client, options: DemoOptions, staff: Staff, say: Say, status: Say
) -> tuple[Day, bool]:
    """Orders arrive, customers act, staff work, until every order ended or the time limit;
    `status` is told where the day stands every second."""
    plan = plan_customers(options.orders, options.seed, options.arrival_window_s)
    day = Day(sim, client, plan)
    anomalies_seen = False
    staff_task = asyncio.create_task(staff.run())
    try:
        next_line = 0.0
        while day.elapsed() < options.limit_s:
            for customer in plan:
                if customer.index not in day.placed and day.elapsed() >= customer.created_after_s:
                    # A day without any anomaly would not show R5: the last order makes sure.
                    last = customer.index == len(plan) - 1
                    forced = "wrong_price" if last and not anomalies_seen else None
                    placed = day.place(customer, forced)
                    anomalies_seen = anomalies_seen or placed.anomaly is not None
            try:
                await day.watch()
                await day.customers_act()
            except RPCError as exc:  # Temporal restarting: the day goes on, look again soon
                say(f"t+{day.elapsed():.0f}s  Temporal unreachable ({exc.status.name}), retrying")
            if day.elapsed() >= next_line:
                status(day.progress())
                next_line = day.elapsed() + 1.0
            if day.all_finished():
                day.ended = time.monotonic()
                return day, True
            await asyncio.sleep(0.5)
        day.ended = time.monotonic()
        return day, False
    finally:
        staff_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await staff_task
