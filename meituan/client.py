"""Async client of the merchant API (R6.3.1), safe to call from retried activities.

Every state-changing call tolerates "already in that state" (808): the client asks the
platform for the order's status and returns normally when the wanted state is already there,
so a retried activity does not fail on its own earlier success.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, Self

import httpx

from infra.settings import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_BASE_URL,
    settings_for,
)
from meituan.codes import ErrorCode, OrderStatus
from meituan.models import (
    ApiResponse,
    DaySeqView,
    OrderDetail,
    OrderIdView,
    OrderStatusView,
    RefundFood,
)
from meituan.pushes import dumps_json
from meituan.signing import SIG, sign

FREE_TEXT_REPLY: Final = 0
"""`reply_id` of a reminder reply written by a person rather than picked from the platform's
preset replies. The official SDK requires `reply_id` without saying what it holds (unverified)."""

PLATFORM_TZ: Final = timezone(timedelta(hours=8))
"""Day boundaries (`day_seq`, `date_time`) are the platform's: China Standard Time."""


class MeituanError(Exception):
    """Anything that went wrong talking to the platform."""

    retryable: bool = True
    """Whether calling again later may succeed; activities map False to non-retryable."""


class PlatformUnavailable(MeituanError):
    """No usable answer (network error, timeout, non-JSON or HTTP error): transient."""


class PlatformError(MeituanError):
    """The platform answered `{"data":"ng","error":{code,msg}}`."""

    def __init__(self, code: int, msg: str, *, call: str | None = None) -> None:
        where = f"{call}: " if call else ""
        super().__init__(f"{where}platform error {code}: {msg}")
        self.code = code
        self.msg = msg
        self.call = call


class ConfigurationError(PlatformError):
    """702 unknown app_id / 703 bad signature: wrong credentials or URL, retrying won't help."""

    retryable = False


class InvalidRequest(PlatformError):
    """701 missing parameter / 705 bad format: a bug on our side, retrying won't help."""

    retryable = False


class RateLimited(PlatformError):
    """711, still rate limited after the client's own back-off."""


class OrderNotFound(PlatformError):
    """806: the platform has no such order (for this app)."""

    retryable = False


class AlreadyInState(PlatformError):
    """808: the order's status already changed, and not to the state the call wanted.

    Raised only after the client checked `viewstatus`; `current_status` is what it showed.
    """

    retryable = False

    def __init__(
        self, code: int, msg: str, *, call: str | None = None, current_status: int | None = None
    ) -> None:
        super().__init__(code, msg, call=call)
        self.current_status = current_status


class OrderFinished(PlatformError):
    """1022: the order is finished and can no longer be cancelled."""

    retryable = False


_ERRORS: Final[Mapping[int, type[PlatformError]]] = {
    ErrorCode.MISSING_PARAMETER: InvalidRequest,
    ErrorCode.UNKNOWN_APP_ID: ConfigurationError,
    ErrorCode.BAD_SIGNATURE: ConfigurationError,
    ErrorCode.BAD_PARAMETER_FORMAT: InvalidRequest,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.ORDER_NOT_FOUND: OrderNotFound,
    ErrorCode.STATUS_CHANGED: AlreadyInState,
    ErrorCode.ORDER_FINISHED: OrderFinished,
}

_PROGRESSED: Final = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.DELIVERING, OrderStatus.COMPLETED}
)

SYSTEM_PARAMS: Final = ("app_id", "timestamp", SIG)
"""Parameters of every call, signed with the others; a POST sends them in the query."""

Params = Mapping[str, str | int | None]
StatusCheck = Callable[[int], bool]


def _status_in(*statuses: int) -> StatusCheck:
    wanted = frozenset(statuses)
    return lambda status: status in wanted


def _day(value: date | str | None) -> str:
    if value is None:
        value = datetime.now(PLATFORM_TZ).date()
    return value.strftime("%Y%m%d") if isinstance(value, date) else value


class MeituanClient:
    """One instance per process: it keeps one `httpx.AsyncClient` (connection pool)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        app_id: str = DEFAULT_APP_ID,
        secret: str = DEFAULT_APP_SECRET,
        *,
        timeout: float | httpx.Timeout = 10.0,
        rate_limit_retries: int = 3,
        rate_limit_backoff: float = 0.5,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.app_id = app_id
        self.secret = secret
        self.rate_limit_retries = rate_limit_retries
        self.rate_limit_backoff = rate_limit_backoff
        self._clock = clock
        self._sleep = sleep
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> MeituanClient:
        """MEITUAN_BASE_URL / MEITUAN_APP_ID / MEITUAN_APP_SECRET (`settings().meituan`, or
        `env`'s when given), unset meaning the simulator."""
        platform = settings_for(env).meituan
        return cls(platform.base_url, platform.app_id, platform.app_secret, **kwargs)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- transport ---------------------------------------------------------------------------

    def signed_params(self, path: str, params: Params) -> dict[str, str]:
        """`params` plus `app_id`, `timestamp` and `sig` for a call to `path`."""
        out = {k: str(v) for k, v in params.items() if v is not None}
        out["app_id"] = self.app_id
        out["timestamp"] = str(int(self._clock()))
        out[SIG] = sign(self.base_url + path, out, self.secret)
        return out

    async def call(self, path: str, params: Params, *, method: str = "GET") -> Any:
        """Call `path` (relative to the base URL) and return `data`; maps errors to exceptions.

        711 is retried here with a growing pause (R6.1: respect the platform's rate limits);
        every other failure is left to the caller's retry policy.
        """
        attempt = 0
        while True:
            try:
                return await self._call_once(path, params, method)
            except RateLimited:
                if attempt >= self.rate_limit_retries:
                    raise
                await self._sleep(self.rate_limit_backoff * 2**attempt)
                attempt += 1

    async def _call_once(self, path: str, params: Params, method: str) -> Any:
        url = self.base_url + path
        signed = self.signed_params(path, params)
        try:
            if method == "GET":
                response = await self._http.get(url, params=signed)
            else:
                # As the official SDK sends a POST: the system parameters and `sig` in the
                # query, the application parameters as the form body.
                system = {k: signed.pop(k) for k in SYSTEM_PARAMS}
                response = await self._http.post(url, params=system, data=signed)
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc
        try:
            body = ApiResponse.model_validate(json.loads(response.text, parse_float=Decimal))
        except ValueError as exc:
            raise PlatformUnavailable(
                f"{path}: HTTP {response.status_code}, not a platform answer: "
                f"{response.text[:200]!r}"
            ) from exc
        if body.error is not None:
            error_type = _ERRORS.get(body.error.code, PlatformError)
            raise error_type(body.error.code, body.error.msg, call=path)
        if body.data == "ng":
            raise PlatformError(int(ErrorCode.SYSTEM_ERROR), "ng without error", call=path)
        if response.status_code >= 400:
            raise PlatformUnavailable(f"{path}: HTTP {response.status_code}")
        return body.data

    async def _change(
        self,
        path: str,
        order_id: int,
        params: Params,
        done_when: StatusCheck | None,
        *,
        method: str = "GET",
    ) -> bool:
        """A state-changing call. True: done now; False: the platform already had that state."""
        try:
            await self.call(path, {"order_id": order_id, **params}, method=method)
            return True
        except AlreadyInState as exc:
            exc.current_status = await self.view_status(order_id)
            if done_when is not None and done_when(exc.current_status):
                return False
            raise

    # -- merchant API (one method per call of the platform's table) -----------------------

    async def poi_received(self, order_id: int) -> bool:
        """Tell the platform the store has the order (R2.1.3)."""
        return await self._change(
            "order/poi_received",
            order_id,
            {},
            lambda s: s >= OrderStatus.RECEIVED and s != OrderStatus.CANCELLED,
        )

    async def confirm(self, order_id: int) -> bool:
        """Accept the order, within the platform's deadline (R6.1)."""
        return await self._change("order/confirm", order_id, {}, _status_in(*_PROGRESSED))

    async def cancel(self, order_id: int, reason: str, reason_code: int) -> bool:
        """Reject/cancel with a merchant reason code (R2.2.4); 1022 once finished."""
        return await self._change(
            "order/cancel",
            order_id,
            {"reason": reason, "reason_code": int(reason_code)},
            _status_in(OrderStatus.CANCELLED),
        )

    async def delivering(self, order_id: int) -> bool:
        """Self-delivery has started."""
        return await self._change(
            "order/delivering",
            order_id,
            {},
            _status_in(OrderStatus.DELIVERING, OrderStatus.COMPLETED),
        )

    async def arrived(self, order_id: int) -> bool:
        """Self-delivery arrived (R3.4.1)."""
        return await self._change("order/arrived", order_id, {}, _status_in(OrderStatus.COMPLETED))

    async def preparation_complete(self, order_id: int) -> bool:
        """The goods are ready; for platform delivery this releases the courier.

        `viewstatus` cannot show "ready", so an 808 on a confirmed or later order counts as done.
        """
        return await self._change(
            "order/preparationMealComplete", order_id, {}, _status_in(*_PROGRESSED)
        )

    async def refund_agree(self, order_id: int, reason: str) -> bool:
        """Agree to the customer's refund request."""
        return await self._change(
            "order/refund/agree", order_id, {"reason": reason}, _status_in(OrderStatus.CANCELLED)
        )

    async def refund_reject(self, order_id: int, reason: str) -> bool:
        """Reject the customer's refund request; an 808 cannot be confirmed as done."""
        return await self._change("order/refund/reject", order_id, {"reason": reason}, None)

    async def apply_part_refund(
        self,
        order_id: int,
        reason: str,
        food_data: Sequence[RefundFood | Mapping[str, Any]] | str,
    ) -> bool:
        """Refund some lines (`food_data`: `app_food_code`/`sku_id`/`count` per line)."""
        text = food_data if isinstance(food_data, str) else dumps_json(list(food_data))
        return await self._change(
            "order/applyPartRefund",
            order_id,
            {"reason": reason, "food_data": text},
            None,
            method="POST",
        )

    async def get_order_detail(
        self, order_id: int, *, is_mt_logistics: bool = False
    ) -> OrderDetail:
        """The full order, as in the push; the patrol's source (R2.1.2)."""
        data = await self.call(
            "order/getOrderDetail",
            {"order_id": order_id, "is_mt_logistics": int(is_mt_logistics)},
        )
        return OrderDetail.model_validate(data)

    async def view_status(self, order_id: int) -> int:
        """The order's platform status (an `OrderStatus` value)."""
        data = await self.call("order/viewstatus", {"order_id": order_id})
        return OrderStatusView.model_validate(data).status

    async def get_order_day_seq(self, app_poi_code: str) -> int:
        """Today's latest `day_seq` of a store (R2.1.2: the patrol walks up to it)."""
        data = await self.call("order/getOrderDaySeq", {"app_poi_code": app_poi_code})
        return DaySeqView.model_validate(data).day_seq

    async def get_order_id_by_day_seq(
        self, app_poi_code: str, day_seq: int, date_time: date | str | None = None
    ) -> int:
        """Order id of a store's `day_seq` on a day (default today, platform time)."""
        data = await self.call(
            "order/getOrderIdByDaySeq",
            {"app_poi_code": app_poi_code, "date_time": _day(date_time), "day_seq": day_seq},
        )
        return OrderIdView.model_validate(data).order_id

    async def remind_reply(
        self, order_id: int, remind_id: int, reply_content: str, reply_id: int = FREE_TEXT_REPLY
    ) -> bool:
        """Answer a customer's reminder (R4.2.2); `reply_id` is required by the official SDK."""
        return await self._change(
            "order/remindReply",
            order_id,
            {"remind_id": remind_id, "reply_id": reply_id, "reply_content": reply_content},
            None,
            method="POST",
        )
