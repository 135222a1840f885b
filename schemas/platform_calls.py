"""Inputs of the merchant API calls the workflows make (R6.1, R6.3.1)."""

from __future__ import annotations

from schemas.base import Model


class PlatformOrderCall(Model):
    """poi_received, confirm, delivering, arrived, preparationMealComplete."""

    order_id: str


class PlatformCancelOrder(Model):
    order_id: str
    reason_code: int  # merchant cancel reason code, 2001-2016
    reason: str


class PlatformRefundAnswer(Model):
    order_id: str
    refund_id: str
    agree: bool
    reason: str


class PlatformReminderReply(Model):
    order_id: str
    remind_id: str
    text: str


class PlatformReport(Model):
    """R5.2.3 fraud and faults are reported to the platform through its contact person."""

    order_id: str
    kind: str
    text: str
