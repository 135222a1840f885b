"""Numeric codes of the Meituan open platform, named so code and logs read as the platform means."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(IntEnum):
    """`error.code` of a failed call (`{"data":"ng","error":{...}}`)."""

    SYSTEM_ERROR = 700
    """Platform-side fault: transient, worth retrying."""
    MISSING_PARAMETER = 701
    """A required parameter is absent: a bug on our side."""
    UNKNOWN_APP_ID = 702
    """The app_id is not registered: configuration, not worth retrying."""
    BAD_SIGNATURE = 703
    """Signature mismatch, usually a wrong secret: configuration, not worth retrying."""
    BAD_PARAMETER_FORMAT = 705
    """A parameter has the wrong format: a bug on our side."""
    RATE_LIMITED = 711
    """Too many calls: back off and try again."""
    ORDER_NOT_FOUND = 806
    """No order with that id (wrong id, or another app's order)."""
    STATUS_CHANGED = 808
    """Operation failed because the order's status already changed; check `viewstatus`."""
    ORDER_FINISHED = 1022
    """The order is finished and can no longer be cancelled."""


class OrderStatus(IntEnum):
    """`status` of an order on the platform."""

    SUBMITTED = 1
    """Paid by the customer, not yet pushed to the store."""
    PUSHED = 2
    """Pushed to the store."""
    RECEIVED = 3
    """The store acknowledged it (`order/poi_received`)."""
    CONFIRMED = 4
    """The store accepted it (`order/confirm`); the confirmation deadline is met (R6.1)."""
    DELIVERING = 6
    """On its way to the customer."""
    COMPLETED = 8
    """Delivered / done."""
    CANCELLED = 9
    """Cancelled by anyone, or fully refunded."""


class LogisticsStatus(IntEnum):
    """`logistics_status` of a platform courier (delivery status push)."""

    SENT_TO_DISPATCH = 0
    """Handed to the dispatch system."""
    QUEUED = 5
    """Waiting for a courier."""
    COURIER_ACCEPTED = 10
    """A courier took the job."""
    AT_STORE = 15
    """The courier arrived at the store."""
    PICKED_UP = 20
    """The courier has the goods."""
    DELIVERED = 40
    """The courier handed the goods to the customer."""
    CANCELLED = 100
    """Delivery cancelled."""


class PlatformCancelReason(IntEnum):
    """`reason_code` of a cancellation pushed by the platform.

    The platform documents only the groups of 1101–1103, 1201–1204 and 1301; the members
    carry their number so logs keep the exact code.
    """

    NOT_CONFIRMED_IN_TIME = 1001
    """The store did not confirm before the platform's deadline (R6.1): auto-cancelled."""
    UNPAID = 1002
    """The customer never paid."""
    USER_1101 = 1101
    """Cancelled by the customer."""
    USER_1102 = 1102
    """Cancelled by the customer."""
    USER_1103 = 1103
    """Cancelled by the customer."""
    SUPPORT_1201 = 1201
    """Cancelled by platform customer support."""
    SUPPORT_1202 = 1202
    """Cancelled by platform customer support."""
    SUPPORT_1203 = 1203
    """Cancelled by platform customer support."""
    SUPPORT_1204 = 1204
    """Cancelled by platform customer support."""
    OTHER = 1301
    """Any other platform-side reason."""


class MerchantCancelReason(IntEnum):
    """`reason_code` the store sends with `order/cancel` (R2.2.4: a rejection has a reason)."""

    ACCEPTED_TOO_LATE = 2001
    """The store accepted the order too late."""
    ORDER_CHANGED = 2002
    """The order changed; not the customer's fault."""
    CANCELLED_NOT_CUSTOMER_FAULT = 2003
    """Cancelled; not the customer's fault."""
    DELIVERY_DELAY = 2004
    """Delivery is delayed."""
    AFTER_SALES_COMPLAINT = 2005
    """After-sales complaint."""
    CUSTOMER_ASKED = 2006
    """The customer asked to cancel."""
    OTHER = 2007
    """Any other reason; say which in `reason`."""
    STORE_TOO_BUSY = 2008
    """The store is too busy."""
    SOLD_OUT = 2009
    """Sold out."""
    ADDRESS_NOT_DELIVERABLE = 2010
    """The address is outside the delivery area or unclear."""
    STORE_CLOSED = 2011
    """The store is closed."""
    CUSTOMER_UNREACHABLE = 2012
    """The customer cannot be reached."""
    DUPLICATE_ORDER = 2013
    """The same order was placed twice."""
    COURIER_SLOW_TO_PICK_UP = 2014
    """The courier is slow to pick up."""
    COURIER_SLOW_TO_DELIVER = 2015
    """The courier is slow to deliver."""
    COURIER_LOST_FOOD = 2016
    """The courier lost or spilled the food."""


class DealOpType(IntEnum):
    """`deal_op_type` of a cancellation push: who cancelled."""

    USER = 1
    MERCHANT = 2
    SUPPORT = 3
    BD = 4
    SYSTEM = 5
    OPEN_PLATFORM = 6


class DiscountType(IntEnum):
    """`type` of an `extras` entry (discount)."""

    FIRST_ORDER = 1
    SPEND_X_SAVE_Y = 2
    VOUCHER = 3
    SET_GIFT = 4
    SPEND_GIFT = 5
    LATE_COMPENSATION = 6
    SPECIAL_PRICE = 7
    FIRST_ORDER_REBATE = 8
    COUPON = 9


class RefundNotifyType(StrEnum):
    """`notify_type` of a refund push: where the customer's refund request stands."""

    APPLY = "apply"
    PART = "part"
    """A partial refund's request (the full refund's `apply`)."""
    AGREE = "agree"
    REJECT = "reject"
    CANCEL_REFUND = "cancelRefund"
    CANCEL_REFUND_COMPLAINT = "cancelRefundComplaint"


class RefundStatus(IntEnum):
    """`refund_status` of a refund status push."""

    FULL_SUCCEEDED = 3
    FULL_FAILED = 4
    PARTIAL_SUCCEEDED = 13
    PARTIAL_FAILED = 14
