"""The push gateway: the platform's pushes become OrderWorkflow starts and signals (R2.1.1).

A push is answered `{"data":"ok"}` only once Temporal holds it (the workflow started, or the
signal accepted); otherwise the platform is told to retry (R6.3.1). A push that cannot be read
or verified, or that cannot be handed to Temporal, is kept in `rejected_pushes` with the
reason, so nothing the platform sent is lost (R6.3.2).

Intake is hardened because the push URLs are public: a push signed correctly but whose
`timestamp` is more than ORDERFLOW_PUSH_MAX_AGE_SECONDS old (default 600; 0 turns the check
off) or more than 60 s ahead is refused as a possible replay (705), and a body or query over
ORDERFLOW_PUSH_MAX_BYTES (default 65536) is refused with HTTP 413 unread past the limit; both
are kept in `rejected_pushes` (an oversized one truncated). A late retry of a genuine push
is refused the same way and stays in `rejected_pushes`; the patrol finds its order. The app
secret is never logged nor stored, not even inside a header.

Run: `python -m starter.gateway --host 127.0.0.1 --port 8080`. Environment: TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE (and TEMPORAL_API_KEY for a TLS cloud namespace), DATABASE_URL,
MEITUAN_BASE_URL, MEITUAN_APP_ID, MEITUAN_APP_SECRET, ORDERFLOW_PUSH_BASE_URL (and
ORDERFLOW_PUSH_URL_<KIND> for a kind configured elsewhere in the platform's console),
ORDERFLOW_GATEWAY_TEMPORAL_TIMEOUT (seconds a push may wait for Temporal, default 5),
ORDERFLOW_PUSH_MAX_AGE_SECONDS and ORDERFLOW_PUSH_MAX_BYTES. `GET /metrics` counts the pushes
accepted and refused, for Prometheus (`starter.gateway_metrics`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.ended_orders import refund_case_after_close, stage_on_record
from infra import database as db
from infra import fail_closed, tracing
from infra.forwarded import client_address
from infra.logging import configure_logging
from infra.settings import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_BASE_URL,
    DEFAULT_PUSH_BASE_URL,
    Network,
    PushGatewaySettings,
    SettingsError,
    settings_for,
)
from infra.temporal import connect_client
from meituan.client import (
    MeituanClient,
    MeituanError,
)
from meituan.codes import ErrorCode, RefundNotifyType
from meituan.intake import order_input
from meituan.models import (
    CancelPush,
    LogisticsPush,
    OrderPush,
    OrderRefPush,
    PartialRefundPush,
    PrivacyDowngradePush,
    RefundPush,
    RefundStatusPush,
    RemindPush,
)
from meituan.pushes import (
    OK_RESPONSE,
    PushDecodeError,
    PushKind,
    PushSignatureError,
    decode_push,
    is_probe,
    parse_form,
    signature_verifies,
)
from schemas.contract import TASK_QUEUE, order_workflow_id
from schemas.messages import (
    CustomerReminder,
    DeliveryStatus,
    PlatformCancel,
    PlatformRefund,
    RefundNotice,
)
from schemas.order import PlatformOrder
from starter.gateway_metrics import PushCounters, serve_metrics
from starter.push_keeper import STORED_BODY_BYTES, Bounds, Push, PushKeeper
from starter.serving import serve_until_stopped
from workflows import search_attributes as sa
from workflows import story

log = logging.getLogger("orderflow.gateway")
# The record not read, for any reason the database gives: the push goes on to Temporal.
_UNREADABLE: tuple[type[Exception], ...] = (*db.UNAVAILABLE, asyncpg.PostgresError)
_TROUBLE_S = 30.0  # after the record could not be read, no store look-up for this long

WORKFLOW_TYPE: Final = "OrderWorkflow"

PUSH_PREFIX: Final = "/meituan/push"
# One order, one workflow run, ever: a late or repeated push for a closed order must not
# start the order again. Recovering a failed run is an operator's reset, not a push's.
ID_REUSE: Final = WorkflowIDReusePolicy.REJECT_DUPLICATE
_CONFIGURABLE: Final = PushGatewaySettings()
"""The defaults of what the environment sets (`infra.settings`), for a gateway built in code."""
_DEFAULT_BOUNDS: Final = Bounds.of(_CONFIGURABLE)


@dataclass(frozen=True)
class GatewaySettings:
    app_id: str = DEFAULT_APP_ID
    app_secret: str = field(default=DEFAULT_APP_SECRET, repr=False)
    push_base_url: str = DEFAULT_PUSH_BASE_URL
    """The public URL the platform pushes to (before `/{kind}`): it is part of the signature."""
    push_urls: Mapping[PushKind, str] = field(default_factory=dict)
    """A kind's URL as configured in the platform's console, where it is not `base/{kind}`
    (`ORDERFLOW_PUSH_URL_<KIND>`, e.g. ORDERFLOW_PUSH_URL_ORDER_CONFIRMED)."""
    meituan_base_url: str = DEFAULT_BASE_URL
    temporal_timeout_s: float = _CONFIGURABLE.temporal_timeout_s
    """Longest a push waits for Temporal; the platform's own push timeout is unverified."""
    push_max_age_s: float = _CONFIGURABLE.push_max_age_s
    """Oldest `timestamp` a push may carry (replay protection); 0 or less: not checked."""
    push_max_future_s: float = 60.0
    """How far ahead of our clock a push's `timestamp` may be (clock skew)."""
    max_body_bytes: int = _CONFIGURABLE.max_body_bytes
    """Largest push body (or query) read; the biggest order pushes are a few KiB."""
    refused: Bounds = _DEFAULT_BOUNDS
    """How much refused traffic is kept (starter.push_keeper)."""
    trusted_proxies: tuple[Network, ...] = ()
    """The reverse proxies whose X-Forwarded-For names a push's source (`infra.forwarded`):
    refused pushes are kept per source address, which must be the sender's, not the proxy's."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """From `settings()` (or `env`'s when given): `settings().gateway` and the merchant
        API's `settings().meituan`."""
        configured = settings_for(env)
        gateway, platform = configured.gateway, configured.meituan
        return cls(
            app_id=platform.app_id,
            app_secret=platform.app_secret,
            push_base_url=gateway.push_base_url,
            push_urls={kind: url for kind in PushKind if (url := gateway.push_urls.get(kind.name))},
            meituan_base_url=platform.base_url,
            temporal_timeout_s=gateway.temporal_timeout_s,
            push_max_age_s=gateway.push_max_age_s,
            max_body_bytes=gateway.max_body_bytes,
            refused=Bounds.of(gateway),
            trusted_proxies=configured.deployment.trusted_proxies,
        )

    def push_url(self, kind: PushKind) -> str:
        """The URL the platform signed this kind of push for."""
        return self.push_urls.get(kind) or f"{self.push_base_url.rstrip('/')}/{kind.value}"


class Refusal(Exception):
    """A push answered `ng`: stored in `rejected_pushes`, and the platform retries it."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Kept(Exception):
    """A push accepted that no workflow takes: answered ok once `rejected_pushes` holds it with
    this reason, for a person (`orderctl pushes`); the platform retries it otherwise."""


class Held(StrEnum):
    """What became of an accepted push: answered ok (a RECORDED one only once stored)."""

    STARTED = "started"
    DUPLICATE = "duplicate"
    SIGNALLED = "signalled"
    SIGNAL_STARTED = "signal_started"
    KNOWN = "known"  # a confirmed or completed order we already have
    REFUND_CASE = "refund_case"  # a refund for an ended order: a case for its manager
    CLOSED = "closed"  # the order's workflow already finished: kept for a person to see
    RECORDED = "recorded"  # no workflow consumes it: kept in the database


_KEPT: Final[Mapping[Held, str]] = {
    Held.CLOSED: "accepted, but the order has ended: not forwarded",
    Held.RECORDED: "accepted and recorded: no workflow consumes this kind of push",
}
"""Accepted pushes that reach no running workflow; `rejected_pushes` keeps them for a person."""

_RETURN_FLOW: Final[Mapping[int, RefundNotice]] = {
    1: RefundNotice.APPLY,  # 已申请
    21: RefundNotice.AGREE,  # 终审已同意
    27: RefundNotice.AGREE,  # 终审申诉已同意
    22: RefundNotice.REJECT,  # 终审已驳回
    28: RefundNotice.REJECT,  # 终审申诉已驳回
    30: RefundNotice.CANCEL_REFUND,  # 已取消
}
"""`status` of a return-and-refund store's refund push, where it decides the request; the
review steps between (10, 11, 16-18, 20, 26) are kept for a person."""


def _ng(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"data": "ng", "error": {"code": code, "msg": message}}, status)


def _utf8(raw: bytes) -> str:
    # Decoded here: `parse_form` lets a UnicodeDecodeError of raw bytes escape.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PushDecodeError(f"push body is not UTF-8: {exc}") from exc


def _moment(unix_seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix_seconds, UTC) if unix_seconds else None


def _decode_code(exc: PushDecodeError) -> ErrorCode:
    if isinstance(exc, PushSignatureError):
        return ErrorCode.BAD_SIGNATURE
    if exc.field == "app_id":
        return ErrorCode.UNKNOWN_APP_ID
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors()[0]["type"] == "missing":
        return ErrorCode.MISSING_PARAMETER
    return ErrorCode.BAD_PARAMETER_FORMAT


class Gateway:
    """The push handlers, holding the Temporal client, the database and the platform client."""

    def __init__(
        self,
        client: Client,
        pool: asyncpg.Pool | None,
        settings: GatewaySettings,
        meituan: MeituanClient,
    ) -> None:
        self.client = client
        self.pool = pool
        self.settings = settings
        self.meituan = meituan
        self._timeout = timedelta(seconds=settings.temporal_timeout_s)
        self._stores: dict[str, tuple[str, str]] = {}  # code: (order type, region), read once
        self._database_troubled_until = 0.0  # monotonic: the record was unreadable just now
        self.keeper = PushKeeper(
            pool,
            settings.refused,
            secret=settings.app_secret,
            zone=settings_for(None).business.timezone,
            timeout_s=settings.temporal_timeout_s,
        )
        self.counts = PushCounters()  # GET /metrics

    # -- HTTP ----------------------------------------------------------------------------------

    def endpoint(self, kind: PushKind) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            return await self.receive(kind, request)

        return receive

    async def receive(self, kind: PushKind, request: Request) -> Response:
        received_at = datetime.now(UTC)
        body, complete = await self._read_body(request)
        query = request.url.query
        limit = self.settings.max_body_bytes
        if not complete or len(query.encode()) > limit:
            where = "body" if not complete else "query"
            too_large = Refusal(
                413, ErrorCode.BAD_PARAMETER_FORMAT, f"push {where} over the {limit}-byte limit"
            )
            return await self._refuse(request, kind, too_large, body, received_at, signed=False)
        try:
            # The platform uses GET (query) for some kinds and POST (form body) for others;
            # both are accepted for every kind.
            form = parse_form(_utf8(body) if request.method == "POST" and body.strip() else query)
        except PushDecodeError as exc:  # a form that is not even UTF-8
            unreadable = Refusal(400, _decode_code(exc), str(exc))
            return await self._refuse(request, kind, unreadable, body, received_at, signed=False)
        if is_probe(form):
            return JSONResponse(OK_RESPONSE)  # the console's URL check
        try:
            held = await self.hold(kind, form, received_at)
        except Kept as kept:
            held, reason = Held.RECORDED, str(kept)
        except Refusal as refusal:
            signed = signature_verifies(
                kind, form, url=self.settings.push_url(kind), secret=self.settings.app_secret
            )
            return await self._refuse(request, kind, refusal, body, received_at, signed=signed)
        else:
            reason = _KEPT.get(held, "")
        if reason:
            stored = await self.keeper.keep(
                self._push(request, kind, body, received_at, reason, None, signed=True)
            )
            if held is Held.RECORDED and not stored:
                # The database was to hold it: without it, the platform keeps it for a retry.
                self.counts.refused(kind.value, ErrorCode.SYSTEM_ERROR)
                return _ng(503, ErrorCode.SYSTEM_ERROR, "could not record the push")
        self.counts.accepted(kind.value, held.value)
        log.info("%s push %s%s", kind, held.value, f": {reason}" if reason else "")
        return JSONResponse(OK_RESPONSE)

    async def _refuse(
        self,
        request: Request,
        kind: PushKind,
        refusal: Refusal,
        body: bytes,
        received_at: datetime,
        *,
        signed: bool,
    ) -> Response:
        """Answered `ng` and kept within bounds (starter.push_keeper); logged when kept, so a
        flood is not a flood of lines too."""
        message = self.keeper.scrub(refusal.message)
        push = self._push(request, kind, body, received_at, message, refusal.code, signed=signed)
        if await self.keeper.keep(push):
            log.warning("%s push refused (%s): %s", kind, refusal.code, message)
        self.counts.refused(kind.value, refusal.code)
        return _ng(refusal.status, refusal.code, message)

    def _push(
        self,
        request: Request,
        kind: PushKind,
        body: bytes,
        received_at: datetime,
        reason: str,
        cause: ErrorCode | None,
        *,
        signed: bool,
    ) -> Push:
        return Push(
            route=f"{PUSH_PREFIX}/{kind.value}",
            method=request.method,
            query=request.url.query,
            body=body,
            headers=dict(request.headers.items()),
            source=self._source(request),
            received_at=received_at,
            reason=reason,
            cause=cause,
            signed=signed,
        )

    def _source(self, request: Request) -> str:
        """Who sent the push: the peer, or behind a trusted proxy the address it names."""
        peer = request.client.host if request.client else ""
        forwarded = request.headers.getlist("x-forwarded-for")
        return client_address(peer, forwarded, self.settings.trusted_proxies)

    async def _read_body(self, request: Request) -> tuple[bytes, bool]:
        """The body, or as much as the limit allows: (bytes, whether complete). A body that
        says it is too big is not read at all beyond what is kept of it."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        stop = STORED_BODY_BYTES if declared.isdigit() and int(declared) > limit else limit
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > stop:
                return bytes(body), False
        return bytes(body), len(body) <= limit

    def _check_fresh(self, kind: PushKind, push: BaseModel, received_at: datetime) -> None:
        """Replay protection: the signature covers `timestamp`, so an old or future one was
        either recorded and sent again or forged, unless the clocks disagree."""
        settings = self.settings
        if settings.push_max_age_s <= 0:
            return
        stamp = getattr(push, "timestamp", None)
        if not isinstance(stamp, int) or stamp <= 0:
            raise Refusal(
                400, ErrorCode.MISSING_PARAMETER, f"{kind} push has no timestamp to check"
            )
        age = received_at.timestamp() - stamp
        if age > settings.push_max_age_s:
            raise Refusal(
                400,
                ErrorCode.BAD_PARAMETER_FORMAT,
                f"{kind} push timestamp {stamp} is {age:.0f} s old, over the "
                f"{settings.push_max_age_s:g} s window: refused as a possible replay",
            )
        if -age > settings.push_max_future_s:
            raise Refusal(
                400,
                ErrorCode.BAD_PARAMETER_FORMAT,
                f"{kind} push timestamp {stamp} is {-age:.0f} s in the future, over the "
                f"{settings.push_max_future_s:g} s allowed for clock skew",
            )

    async def healthz(self, request: Request) -> Response:
        """Ready to take pushes: Temporal answers and the database answers. What went wrong is
        logged, not answered: an error's text can name hosts, users and paths."""
        checks: dict[str, str] = {}
        try:
            healthy = await self.client.service_client.check_health(timeout=self._timeout)
            checks["temporal"] = "ok" if healthy else "not serving"
        except Exception as exc:
            log.warning("health: Temporal unreachable: %s: %s", type(exc).__name__, exc)
            checks["temporal"] = "unreachable"
        if self.pool is None:
            checks["database"] = "not configured"
        else:
            try:
                async with asyncio.timeout(self.settings.temporal_timeout_s):
                    await self.pool.fetchval("SELECT 1")
                checks["database"] = "ok"
            except Exception as exc:
                log.warning("health: database unreachable: %s: %s", type(exc).__name__, exc)
                checks["database"] = "unreachable"
        ok = checks["temporal"] == "ok" and checks["database"] == "ok"
        return JSONResponse({"ok": ok, **checks}, 200 if ok else 503)

    # -- pushes --------------------------------------------------------------------------------

    async def hold(self, kind: PushKind, form: dict[str, str], received_at: datetime) -> Held:
        """Verify and decode a push, then hand it to Temporal (or the database)."""
        try:
            push = decode_push(
                kind,
                form,
                url=self.settings.push_url(kind),
                secret=self.settings.app_secret,
                app_id=self.settings.app_id,
            )
        except PushDecodeError as exc:
            raise Refusal(400, _decode_code(exc), str(exc)) from exc
        order_id = getattr(push, "order_id", None)
        if order_id is not None:
            # Every line logged for the rest of this request names the order (the request runs
            # in its own task, so the binding ends with it).
            structlog.contextvars.bind_contextvars(
                order_id=str(order_id), workflow_id=order_workflow_id(order_id)
            )
        self._check_fresh(kind, push, received_at)
        try:
            async with asyncio.timeout(self.settings.temporal_timeout_s):
                return await self._dispatch(push, received_at)
        except (Refusal, Kept):
            raise
        except ValidationError as exc:
            raise Refusal(400, ErrorCode.BAD_PARAMETER_FORMAT, f"{kind} push: {exc}") from exc
        except MeituanError as exc:
            raise Refusal(
                503, ErrorCode.SYSTEM_ERROR, f"order detail unavailable from the platform: {exc}"
            ) from exc
        except TimeoutError as exc:
            raise Refusal(
                503,
                ErrorCode.SYSTEM_ERROR,
                f"not held within {self.settings.temporal_timeout_s:g} s (Temporal or platform)",
            ) from exc
        except Exception as exc:
            # Temporal unreachable or refusing: the platform retries the push.
            log.exception("%s push not accepted by Temporal", kind)
            raise Refusal(
                503,
                ErrorCode.SYSTEM_ERROR,
                f"not accepted by Temporal: {type(exc).__name__}: {exc}",
            ) from exc

    async def _dispatch(self, push: BaseModel, received_at: datetime) -> Held:
        # Checked most specific first: a partial refund is also a RefundPush.
        if isinstance(push, OrderPush):
            return await self.start_order(push, received_at)
        if isinstance(push, CancelPush):
            cancel = PlatformCancel(
                reason_code=push.reason_code, reason=push.reason, deal_op_type=push.deal_op_type
            )
            return await self.signal(push.order_id, "platform_cancel", cancel)
        if isinstance(push, PartialRefundPush | RefundPush):
            return await self.refund(push)
        if isinstance(push, LogisticsPush):
            status = DeliveryStatus(
                status=push.logistics_status,
                at=_moment(push.time),
                courier_name=push.dispatcher_name,
                courier_phone=push.dispatcher_mobile,
            )
            return await self.signal(push.order_id, "delivery_status", status)
        if isinstance(push, RemindPush):
            reminder = CustomerReminder(remind_id=str(push.remind_id))
            return await self.signal(push.order_id, "customer_reminder", reminder)
        if isinstance(push, RefundStatusPush):
            # No workflow consumes the refund status (the refund reached the workflow through
            # the refund push): the database keeps it.
            return Held.RECORDED
        if isinstance(push, OrderRefPush):
            return await self.reconcile(push.order_id)
        if isinstance(push, PrivacyDowngradePush):
            raise Kept("privacy numbers downgraded: customers' real numbers apply for a while")
        raise Refusal(400, ErrorCode.BAD_PARAMETER_FORMAT, f"unhandled push {type(push).__name__}")

    async def refund(self, push: RefundPush) -> Held:
        """A refund request reaches its order's workflow; one the workflow cannot take is kept
        for a person rather than refused, so the platform does not retry it forever."""
        partial = isinstance(push, PartialRefundPush)
        notice = _refund_notice(push, partial)
        if notice is None:
            raise Kept(
                f"refund {push.refund_id}: notify_type {push.notify_type!r}, status "
                f"{push.status}: not a step the order's workflow takes, for a person"
            )
        refund = PlatformRefund(
            refund_id=str(push.refund_id),
            notify_type=notice,
            reason=push.reason,
            partial=partial,
            amount=push.money if isinstance(push, PartialRefundPush) else None,
        )
        return await self.signal(push.order_id, "platform_refund", refund)

    async def reconcile(self, order_id: int) -> Held:
        """A confirmed or completed order (R2.1.2): started from `getOrderDetail` when we never
        had it, as if its order push had come; otherwise there is nothing to do."""
        handle = self.client.get_workflow_handle(order_workflow_id(order_id))
        try:
            await handle.describe(rpc_timeout=self._timeout)
            return Held.KNOWN
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
        if await self._on_record(order_id) is not None:
            return Held.KNOWN
        detail = await self.meituan.get_order_detail(order_id)
        return await self.start_order(detail, datetime.now(UTC))

    async def start_order(self, push: OrderPush, received_at: datetime) -> Held:
        """R2.1.1 real-time intake: one workflow per order; a repeated push is a no-op."""
        try:
            inp = order_input(push, received_at=received_at)
        except ValidationError as exc:
            raise Refusal(400, ErrorCode.BAD_PARAMETER_FORMAT, f"order push: {exc}") from exc
        if await self._on_record(push.order_id) is not None:
            return Held.DUPLICATE  # ended, and its workflow deleted past the retention
        try:
            await self.client.start_workflow(
                WORKFLOW_TYPE,
                inp,
                id=order_workflow_id(push.order_id),
                task_queue=TASK_QUEUE,
                id_reuse_policy=ID_REUSE,
                rpc_timeout=self._timeout,
                **await self._told(inp.order),
            )
        except WorkflowAlreadyStartedError:
            return Held.DUPLICATE
        return Held.STARTED

    async def signal(self, order_id: int, name: str, arg: BaseModel) -> Held:
        """Signal the order's workflow; an order Temporal does not know yet is fetched from
        the platform and started with the signal (signal-with-start), so a push that overtook
        the order push, or replaced a lost one, still reaches a workflow (R2.1.2)."""
        handle = self.client.get_workflow_handle(order_workflow_id(order_id))
        try:
            await handle.signal(name, arg, rpc_timeout=self._timeout)
            return Held.SIGNALLED
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
        try:
            await handle.describe(rpc_timeout=self._timeout)
            return await self.after_end(order_id, arg)  # known, but no longer running
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
        if await self._on_record(order_id) is not None:
            # Ended, and its workflow deleted past the namespace's retention: one run, ever.
            return await self.after_end(order_id, arg)
        detail = await self.meituan.get_order_detail(order_id)
        try:
            inp = order_input(detail)
        except ValidationError as exc:
            raise Refusal(
                400, ErrorCode.BAD_PARAMETER_FORMAT, f"order {order_id} from the platform: {exc}"
            ) from exc
        try:
            await self.client.start_workflow(
                WORKFLOW_TYPE,
                inp,
                id=order_workflow_id(order_id),
                task_queue=TASK_QUEUE,
                id_reuse_policy=ID_REUSE,
                start_signal=name,
                start_signal_args=[arg],
                rpc_timeout=self._timeout,
                **await self._told(inp.order),
            )
        except WorkflowAlreadyStartedError:
            return Held.CLOSED  # closed between the describe and the start
        return Held.SIGNAL_STARTED

    async def after_end(self, order_id: int, arg: BaseModel) -> Held:
        """A push for an ended order: a refund request is a case for the manager (R4.2), the
        rest is kept for a person to see."""
        applied = isinstance(arg, PlatformRefund) and arg.notify_type is RefundNotice.APPLY
        if applied and self.pool is not None:
            assert isinstance(arg, PlatformRefund)
            opened = await refund_case_after_close(
                self.pool,
                str(order_id),
                arg.refund_id,
                partial=arg.partial,
                amount=arg.amount,
                reason=arg.reason,
            )
            if opened:
                return Held.REFUND_CASE
        return Held.CLOSED

    async def _told(self, order: PlatformOrder) -> dict[str, Any]:
        """What an order starts with besides its input: the search attributes it is found by
        and its summary and details in the Web UI, with its store's type and region when
        the database answers (else the store and stage alone; the order adds the rest).

        A database in trouble does not hold the push up: the look-up has a quarter of the
        push's time, and none while the record could not be read a moment ago."""
        known = self._stores.get(order.store_code)
        troubled = time.monotonic() < self._database_troubled_until
        if known is None and self.pool is not None and not troubled:
            try:
                async with asyncio.timeout(self.settings.temporal_timeout_s / 4):
                    row = await self.pool.fetchrow(
                        "SELECT order_type, region FROM stores WHERE code = $1", order.store_code
                    )
            except _UNREADABLE as exc:
                log.warning("store %s: not read (%s)", order.store_code, exc)
                row = None
            if row is not None:
                known = self._stores[order.store_code] = (row["order_type"], row["region"])
        order_type, region = known or (None, None)
        return {
            "search_attributes": sa.at_start(order.store_code, order_type, region),
            "static_summary": story.summary(order, order_type),
            "static_details": story.details(order),
        }

    async def _on_record(self, order_id: int) -> str | None:
        """The order's stage in the system of record, when the gateway can read it.

        A database that is down does not hold pushes up: the order is handed to Temporal as
        if never recorded. Only an order that ended, had its workflow deleted past the
        retention, and is pushed again while the database is down would run twice; refusing
        every push meanwhile would leave the platform's retries and the patrol to find them."""
        if self.pool is None:
            return None
        try:
            async with asyncio.timeout(self.settings.temporal_timeout_s / 2):
                return await stage_on_record(self.pool, str(order_id))
        except _UNREADABLE as exc:
            self._database_troubled_until = time.monotonic() + _TROUBLE_S
            log.warning("order %s: the record could not be read (%s)", order_id, exc)
            return None


def _refund_notice(push: RefundPush, partial: bool) -> RefundNotice | None:
    """The step a refund push is, or None when it is none the workflow knows."""
    if not push.notify_type:
        return None if push.status is None else _RETURN_FLOW.get(push.status)
    if partial and push.notify_type == RefundNotifyType.PART:
        return RefundNotice.APPLY
    try:
        return RefundNotice(push.notify_type)
    except ValueError:
        return None


def _push_paths(settings: GatewaySettings, kind: PushKind) -> list[str]:
    """Where a kind is received: its own route, and the path of its console URL if another."""
    own = f"{PUSH_PREFIX}/{kind.value}"
    configured = urlsplit(settings.push_url(kind)).path
    return [own] if configured in ("", own) else [own, configured]


def create_app(
    client: Client,
    pool: asyncpg.Pool | None,
    settings: GatewaySettings | None = None,
    *,
    meituan: MeituanClient | None = None,
) -> Starlette:
    """The gateway app. `client` must use the pydantic data converter (the workflow's inputs
    are pydantic models); `meituan` defaults to a client built from `settings`, closed with
    the app."""
    settings = settings or GatewaySettings.from_env()
    owned = meituan is None
    platform = meituan or MeituanClient(
        settings.meituan_base_url, settings.app_id, settings.app_secret
    )
    gateway = Gateway(client, pool, settings, platform)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            try:
                await gateway.keeper.flush()  # the counts of the last second
            except Exception:
                log.exception("the last refused-push counts were not written")
            if owned:
                await platform.aclose()

    routes = [
        Route(path, gateway.endpoint(kind), methods=["GET", "POST"])
        for kind in PushKind
        for path in _push_paths(settings, kind)
    ]
    routes.append(Route("/healthz", gateway.healthz, methods=["GET"]))

    async def metrics(request: Request) -> Response:
        return await serve_metrics(request, gateway.counts, settings.trusted_proxies)

    routes.append(Route("/metrics", metrics, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    tracing.instrument_asgi(app)  # a span per push when OTEL_EXPORTER_OTLP_ENDPOINT is set
    return app


async def connect_temporal(env: Mapping[str, str] | None = None) -> Client:
    """Lazy: the gateway starts while Temporal is down and answers 503 meanwhile."""
    return await connect_client(env, lazy=True)


async def serve(host: str, port: int, log_level: str = "info") -> None:
    """Until SIGINT/SIGTERM, then a clean exit (the database pool and any embedded server)."""
    settings = GatewaySettings.from_env()
    client = await connect_temporal()
    pool = await db.connect()
    try:
        await db.migrate(pool)  # rejected_pushes must exist before the first push
        await serve_until_stopped(create_app(client, pool, settings), host, port, log_level)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Meituan push gateway (orderflow)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
        GatewaySettings.from_env()  # every variable, read and checked before anything starts
        fail_closed.require(settings_for(None), fail_closed.Role.GATEWAY)
    except SettingsError as err:
        raise SystemExit(f"gateway not started: {err}") from None
    asyncio.run(serve(args.host, args.port, args.log_level))


if __name__ == "__main__":
    main()
