"""The merchant API calls the order makes on the platform (R6.1, R6.3.1)."""

from __future__ import annotations

from temporalio import activity

from schemas.platform_calls import (
    PlatformCancelOrder,
    PlatformOrderCall,
    PlatformRefundAnswer,
    PlatformReminderReply,
    PlatformReport,
)


class PlatformCalls:
    @activity.defn
    async def platform_receive(self, inp: PlatformOrderCall) -> None:
        """order/poi_received (R2.1.3)."""
        raise NotImplementedError

    @activity.defn
    async def platform_confirm(self, inp: PlatformOrderCall) -> None:
        """order/confirm before the platform's auto-cancel (R6.1)."""
        raise NotImplementedError

    @activity.defn
    async def platform_cancel_order(self, inp: PlatformCancelOrder) -> None:
        raise NotImplementedError

    @activity.defn
    async def platform_meal_ready(self, inp: PlatformOrderCall) -> None:
        """order/preparationMealComplete."""
        raise NotImplementedError

    @activity.defn
    async def platform_delivering(self, inp: PlatformOrderCall) -> None:
        raise NotImplementedError

    @activity.defn
    async def platform_arrived(self, inp: PlatformOrderCall) -> None:
        raise NotImplementedError

    @activity.defn
    async def platform_answer_refund(self, inp: PlatformRefundAnswer) -> None:
        raise NotImplementedError

    @activity.defn
    async def platform_reply_reminder(self, inp: PlatformReminderReply) -> None:
        raise NotImplementedError

    @activity.defn
    async def report_to_platform(self, inp: PlatformReport) -> None:
        raise NotImplementedError
