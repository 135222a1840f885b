"""The simulator's settings and its platform-side record of orders, calls and pushes."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.settings import DEFAULT_APP_ID, DEFAULT_APP_SECRET
from localstack.simulator.generator import AnomalyKind
from meituan.codes import OrderStatus
from meituan.models import OrderPush
from meituan.pushes import PushKind

DEFAULT_PUSH_BASE = "http://127.0.0.1:8080/meituan/push"


@dataclass
class Faults:
    """Ways the real platform misbehaves, all off by default; decisions use a seeded RNG.

    A push can arrive late, twice, out of order or never (R2.1.2: the patrol exists for it);
    the API can fail (700), be slow, or rate limit (711).
    """

    push_drop: float = 0.0
    """Probability that a push is never sent."""
    order_push_drop: float = 0.0
    """Probability that a new order's push is never sent (only the patrol finds the order)."""
    push_duplicate: float = 0.0
    """Probability that a push is sent twice."""
    push_delay: float = 0.0
    """Probability that a push waits `push_delay_s` first (later pushes may overtake it)."""
    push_delay_s: float = 2.0
    push_reorder: float = 0.0
    """Probability that a push is held until the order's next push went out."""
    push_reorder_hold_s: float = 5.0
    """Longest a reordered push is held when no later push comes."""
    api_error_rate: float = 0.0
    """Probability that a merchant API call fails with 700."""
    api_latency_s: float = 0.0
    """Added to every merchant API call."""
    rate_limit_rate: float = 0.0
    """Probability that a merchant API call is refused with 711."""
    rate_limit_next: int = 0
    """The next N merchant API calls are refused with 711 (deterministic back-off tests)."""
    fail_next: dict[str, int] = field(default_factory=dict)
    """The next N calls of a merchant API (by name, e.g. `order/getOrderIdByDaySeq`) fail with
    700 (deterministic tests of one failing call)."""

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(sorted(unknown))}")
        for name, value in changes.items():
            current = getattr(self, name)
            setattr(self, name, type(current)(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SimConfig:
    """How the simulated platform behaves; every timing is in seconds so tests can be fast."""

    app_id: str = DEFAULT_APP_ID
    secret: str = DEFAULT_APP_SECRET
    push_base: str | None = DEFAULT_PUSH_BASE
    """Pushes go to `{push_base}/{kind}`; None keeps them in the log only."""
    push_urls: dict[str, str] = field(default_factory=dict)
    """Per-kind URL overriding `push_base` (key: a `PushKind` value)."""
    confirm_timeout_s: float | None = 600.0
    """Unconfirmed orders are cancelled with reason 1001 after this (R6.1); None: never."""
    courier_step_s: float | None = 3.0
    """Pause between courier statuses after the meal is ready; None: only `/deliver` moves them."""
    push_retries: int = 3
    """Extra attempts when a push is not answered `{"data":"ok"}`."""
    push_retry_delay_s: float = 1.0
    push_timeout_s: float = 5.0
    seed: int = 0
    ids_file: Path | None = None
    """Where the last ids given out are kept (`orderctl dev`: the stack's data folder): ids then
    follow the clock and this file, so a restart never gives one out again. None: they follow
    the seed, for repeatable tests."""
    anomaly_rate: float = 0.1
    order_interval_s: float | None = None
    """Generate and push an order every N seconds (a live demo feed); None: only on request."""
    empty_discount_rate: float = 0.2
    """Share of order pushes whose `extras` carry the `{}` entry real pushes sometimes have."""
    faults: Faults = field(default_factory=Faults)

    def push_url(self, kind: PushKind) -> str | None:
        if kind.value in self.push_urls:
            return self.push_urls[kind.value]
        if self.push_base is None:
            return None
        return f"{self.push_base.rstrip('/')}/{kind.value}"


@dataclass
class MerchantCall:
    """One merchant API call as the platform saw it."""

    name: str
    params: dict[str, str]
    at: float
    ok: bool
    error_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PushAttempt:
    at: float
    ok: bool
    detail: str


@dataclass
class PushRecord:
    """One push the platform decided to send, and what became of it."""

    seq: int
    kind: PushKind
    order_id: int | None
    url: str | None
    method: str
    fields: dict[str, str]
    """The raw (second-encoded, signed) form values."""
    created_at: float
    state: str = "pending"
    """pending, held, delayed, delivered, failed, dropped, unsent (no URL)."""
    copies: int = 1
    attempts: list[PushAttempt] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data


@dataclass
class Refund:
    refund_id: int
    partial: bool
    money: Decimal
    reason: str
    state: str = "applied"
    """applied, agreed, rejected, cancelled."""
    food: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["money"] = str(self.money)
        return data


@dataclass
class SimOrder:
    """The platform's side of one order."""

    order: OrderPush
    anomaly: AnomalyKind | None
    platform_delivery: bool
    status: int = OrderStatus.SUBMITTED
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    date: str = ""
    """yyyyMMdd of `ctime` in platform time: the day its `day_seq` counts in."""
    meal_ready: bool = False
    logistics_status: int | None = None
    cancel_reason_code: int | None = None
    cancel_reason: str = ""
    calls: list[MerchantCall] = field(default_factory=list)
    pushes: list[PushRecord] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    reminds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def order_id(self) -> int:
        return self.order.order_id

    def set_status(self, status: int) -> None:
        self.status = status
        self.updated_at = time.time()

    def current(self) -> OrderPush:
        """The order as `getOrderDetail` shows it now."""
        return self.order.model_copy(update={"status": self.status, "utime": int(self.updated_at)})

    def view(self) -> dict[str, Any]:
        """The admin API's view: platform status plus what the merchant did."""
        return {
            "order_id": self.order_id,
            "status": self.status,
            "status_name": OrderStatus(self.status).name.lower(),
            "anomaly": self.anomaly.value if self.anomaly else None,
            "platform_delivery": self.platform_delivery,
            "meal_ready": self.meal_ready,
            "logistics_status": self.logistics_status,
            "cancel_reason_code": self.cancel_reason_code,
            "cancel_reason": self.cancel_reason,
            "date": self.date,
            "day_seq": self.order.day_seq,
            "app_poi_code": self.order.app_poi_code,
            "order": self.current().model_dump(mode="json", exclude_none=True),
            "calls": [call.as_dict() for call in self.calls],
            "pushes": [push.as_dict() for push in self.pushes],
            "refunds": [refund.as_dict() for refund in self.refunds],
            "reminds": list(self.reminds),
        }
