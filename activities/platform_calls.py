"""The merchant API calls the order makes on the platform (R6.1, R6.3.1).

Retries belong to Temporal: a transient fault (700 system error, 711 still rate limited after
the client's own back-off, no answer) is raised as is, so the activity's retry policy applies;
a refusal that no retry can change (wrong credentials, bad request, no such order, order
finished, order already in another state) becomes a non-retryable `ApplicationError` whose
`type` is the client's exception class name, for the workflow to decide on. "Already in the
wanted state" (808 after a retry of our own success) is success: the client checks it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Self

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import Notifier
from meituan.client import MeituanClient, MeituanError
from schemas.notices import Audience, Notification, Topic
from schemas.platform_calls import (
    PlatformCancelOrder,
    PlatformOrderCall,
    PlatformRefundAnswer,
    PlatformReminderReply,
    PlatformReport,
)


def _platform_id(value: str, name: str = "order_id") -> int:
    """The platform's ids are 64-bit integers; anything else is our bug, not worth a retry."""
    try:
        return int(value)
    except ValueError:
        raise ApplicationError(
            f"{name} {value!r} is not a platform id (an integer)",
            type="InvalidRequest",
            non_retryable=True,
        ) from None


async def _platform(call: str, order_id: str, request: Awaitable[bool]) -> None:
    try:
        done_now = await request
    except MeituanError as exc:
        if exc.retryable:
            raise
        raise ApplicationError(
            f"{call} for order {order_id} refused: {exc}",
            type=type(exc).__name__,
            non_retryable=True,
        ) from exc
    if not done_now:
        activity.logger.info("%s: order %s was already in that state", call, order_id)


class PlatformCalls:
    """One instance per worker, sharing the worker's `MeituanClient` (one connection pool).

    `report_to_platform` has no platform API behind it: the report is a notification to the
    platform liaison (R6.2), so it needs the database (`pool`) the notifications live in.
    """

    def __init__(
        self,
        client: MeituanClient,
        pool: asyncpg.Pool | None = None,
    ) -> None:
        self.client = client
        self._pool = pool
        self._notifier = Notifier(pool) if pool is not None else None

    @classmethod
    def from_env(cls, pool: asyncpg.Pool | None = None) -> Self:
        """MEITUAN_BASE_URL / MEITUAN_APP_ID / MEITUAN_APP_SECRET (unset: the simulator)."""
        return cls(MeituanClient.from_env(), pool)

    @activity.defn
    async def platform_receive(self, inp: PlatformOrderCall) -> None:
        """order/poi_received (R2.1.3)."""
        await _platform(
            "order/poi_received",
            inp.order_id,
            self.client.poi_received(_platform_id(inp.order_id)),
        )

    @activity.defn
    async def platform_confirm(self, inp: PlatformOrderCall) -> None:
        """order/confirm before the platform's auto-cancel (R6.1)."""
        await _platform(
            "order/confirm", inp.order_id, self.client.confirm(_platform_id(inp.order_id))
        )

    @activity.defn
    async def platform_cancel_order(self, inp: PlatformCancelOrder) -> None:
        """order/cancel with the merchant reason (R2.2.4); 1022 once the order is finished."""
        await _platform(
            "order/cancel",
            inp.order_id,
            self.client.cancel(_platform_id(inp.order_id), inp.reason, inp.reason_code),
        )

    @activity.defn
    async def platform_meal_ready(self, inp: PlatformOrderCall) -> None:
        """order/preparationMealComplete: for courier orders it releases the courier."""
        await _platform(
            "order/preparationMealComplete",
            inp.order_id,
            self.client.preparation_complete(_platform_id(inp.order_id)),
        )

    @activity.defn
    async def platform_delivering(self, inp: PlatformOrderCall) -> None:
        """order/delivering: the store's own rider left."""
        await _platform(
            "order/delivering", inp.order_id, self.client.delivering(_platform_id(inp.order_id))
        )

    @activity.defn
    async def platform_arrived(self, inp: PlatformOrderCall) -> None:
        """order/arrived: the store's own rider delivered (R3.4.1)."""
        await _platform(
            "order/arrived", inp.order_id, self.client.arrived(_platform_id(inp.order_id))
        )

    @activity.defn
    async def platform_answer_refund(self, inp: PlatformRefundAnswer) -> None:
        """order/refund/agree or /reject; the platform answers the order's open request."""
        order_id = _platform_id(inp.order_id)
        if inp.agree:
            call, request = "order/refund/agree", self.client.refund_agree(order_id, inp.reason)
        else:
            call, request = "order/refund/reject", self.client.refund_reject(order_id, inp.reason)
        activity.logger.info("%s: refund %s of order %s", call, inp.refund_id, inp.order_id)
        await _platform(call, inp.order_id, request)

    @activity.defn
    async def platform_reply_reminder(self, inp: PlatformReminderReply) -> None:
        """order/remindReply (R4.2.2)."""
        await _platform(
            "order/remindReply",
            inp.order_id,
            self.client.remind_reply(
                _platform_id(inp.order_id), _platform_id(inp.remind_id, "remind_id"), inp.text
            ),
        )

    @activity.defn
    async def report_to_platform(self, inp: PlatformReport) -> None:
        """R5.2.3 via R6.2: the platform takes fraud and fault reports from a person, not an
        API, so the report goes to the platform liaison as a notification, once per call."""
        if self._notifier is None or self._pool is None:
            raise ApplicationError(
                "report_to_platform needs the database: construct PlatformCalls with a pool",
                type="ConfigurationError",
                non_retryable=True,
            )
        store_code = await self._pool.fetchval(
            "SELECT store_code FROM orders WHERE order_id = $1", inp.order_id
        )
        info = activity.info()
        await self._notifier.notify(
            Notification(
                # Stable across retries of this activity, distinct for every report asked for.
                key=f"platform-report:{info.workflow_id}:{info.activity_id}",
                order_id=inp.order_id,
                audience=Audience.PLATFORM_LIAISON,
                store_code=store_code or "",
                topic=Topic.PLATFORM_REPORT,
                facts={"kind": inp.kind, "text": inp.text},
            )
        )
