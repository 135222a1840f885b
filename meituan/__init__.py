"""The Meituan open platform protocol: signing, push decoding, the merchant API client.

Shared by the push gateway and the activities (R6.3.1); no Temporal or database code here.
"""

from meituan.client import (
    AlreadyInState,
    ConfigurationError,
    InvalidRequest,
    MeituanClient,
    MeituanError,
    OrderFinished,
    OrderNotFound,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)
from meituan.models import (
    CancelPush,
    Discount,
    LogisticsPush,
    OrderDetail,
    OrderItem,
    OrderPush,
    PartialRefundPush,
    RefundFood,
    RefundPush,
    RefundStatusPush,
    RemindPush,
)
from meituan.pushes import (
    PushDecodeError,
    PushKind,
    PushSignatureError,
    decode_order_push,
    decode_push,
    encode_order_push,
    encode_push,
    is_probe,
)
from meituan.signing import sign, verify

__all__ = [
    "AlreadyInState",
    "CancelPush",
    "ConfigurationError",
    "Discount",
    "InvalidRequest",
    "LogisticsPush",
    "MeituanClient",
    "MeituanError",
    "OrderDetail",
    "OrderFinished",
    "OrderItem",
    "OrderNotFound",
    "OrderPush",
    "PartialRefundPush",
    "PlatformError",
    "PlatformUnavailable",
    "PushDecodeError",
    "PushKind",
    "PushSignatureError",
    "RateLimited",
    "RefundFood",
    "RefundPush",
    "RefundStatusPush",
    "RemindPush",
    "decode_order_push",
    "decode_push",
    "encode_order_push",
    "encode_push",
    "is_probe",
    "sign",
    "verify",
]
