"""orderctl: people act on orders and see where they stand.

Each human action is a subcommand that builds its update's input model and calls the update on
`order-<order_id>` (or `anomaly-<order_id>-<n>`). The workflow's validator decides whether the
stage allows it, so a refusal shows its message unchanged. Arguments are checked against the
same pydantic models before anything is sent, so a bad argument never reaches Temporal.

Exit codes: 0 done, 1 other failure, 2 bad arguments, 3 unknown order or anomaly, 4 not allowed
now (refused by the workflow, or the workflow already ended), 5 Temporal unreachable, 6 no
worker answered in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

import analytics as st
from infra.logging import configure_logging
from infra.temporal import connect_client
from schemas.anomaly import AnomalyOutcome, AnomalyStatus, Decide, Decision
from schemas.contract import (
    TASK_QUEUE,
    anomaly_workflow_id,
    order_id_in,
    order_workflow_id,
)
from schemas.messages import (
    PLATFORM_KINDS,
    CancelOrder,
    ConfirmWithCustomer,
    CustomerChange,
    CustomerFeedback,
    DecideRefund,
    ExceptionKind,
    FeedbackKind,
    MarkDelivered,
    MarkReady,
    Reassign,
    ReconfirmVisit,
    RecordRating,
    Remedy,
    ReplyReminder,
    ReportException,
    ReportProgress,
    ResolveFeedback,
    RespondFeedback,
    UpdateResult,
)
from schemas.order import CustomerChanges, OrderType, Stage
from schemas.status import OrderStatus
from starter import cli_format as fmt
from starter.settled import SETTLE_WITHIN_S, settled
from workflows import search_attributes as sa

PROG = "orderctl"
CONNECT_TIMEOUT = 5.0  # seconds; an unreachable server should not keep a person waiting
DEFAULT_TIMEOUT = 30.0  # seconds for a worker to answer a query or an update
PARALLEL_QUERIES = 8

R = TypeVar("R")


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_ALLOWED = 4
    UNREACHABLE = 5
    NO_ANSWER = 6


class Failure(Exception):
    """A failure explained in one line for the person, with the exit code scripts rely on."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ==================================================================================================
# Arguments
# ==================================================================================================


@cache
def business_zone() -> tzinfo:
    """ORDERFLOW_TIMEZONE (default Asia/Shanghai), imported here rather than at the top so that
    a bad value is one clear line from `main`, not an import-time traceback."""
    from infra.settings import BUSINESS_TZ

    return BUSINESS_TZ


_RELATIVE = re.compile(r"\+(?:\d+(?:\.\d+)?[smhd])+")
_RELATIVE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
WHEN_HELP = "+90m, +2h, +1d (from now) or ISO 8601; without a zone it is Asia/Shanghai time"


def when(value: str, now: datetime | None = None) -> datetime:
    """A moment as a person types it: relative to now, or ISO 8601 (naive = business zone)."""
    text = value.strip()
    if _RELATIVE.fullmatch(text):
        delta = timedelta()
        for amount, unit in _RELATIVE_PART.findall(text):
            delta += timedelta(**{_UNITS[unit]: float(amount)})
        return (now or datetime.now(UTC)) + delta
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected +90m, +2h, +1d or ISO 8601 such as 2025-06-01T18:30, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=business_zone())
    return moment


def order_id(value: str) -> str:
    """The platform's order_id; `order-<id>` (the workflow ID) is accepted too."""
    text = order_id_in(value)
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(f"not an order id: {value!r}")
    return text


def keyword(value: str) -> str:
    """A search-attribute value; control characters could only ever be a mistake."""
    if not value or any(not c.isprintable() for c in value):
        raise argparse.ArgumentTypeError(f"not a usable value: {value!r}")
    return value


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {value!r}")
    return number


def cancel_code(value: str) -> int:
    """Merchant cancel codes are 2001-2016 on the platform."""
    try:
        code = int(value)
    except ValueError:
        code = 0
    if not 2001 <= code <= 2016:
        raise argparse.ArgumentTypeError(f"a merchant cancel code is 2001-2016, got {value!r}")
    return code


def money(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"expected an amount such as 58.00, got {value!r}"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"expected an amount such as 58.00, got {value!r}")
    return amount


CORRECTABLE = ("name", "phone", "address", "latitude", "longitude", "expected_at", "remarks")


def correction(value: str) -> tuple[str, Any]:
    """`field=value` of a corrected order detail."""
    field, sep, raw = value.partition("=")
    field = field.strip().replace("-", "_")
    if not sep or field not in CORRECTABLE:
        raise argparse.ArgumentTypeError(
            f"expected field=value with field one of {', '.join(CORRECTABLE)}, got {value!r}"
        )
    if field == "expected_at":
        return field, when(raw)
    if field in ("latitude", "longitude"):
        try:
            return field, float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field} is a number, got {raw!r}") from None
    return field, raw


def quote(value: str) -> str:
    """A visibility-query string literal that no value can break out of."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visibility_query(
    *,
    stage: str | None = None,
    store: str | None = None,
    assignee: str | None = None,
    order_type: str | None = None,
    breached: bool = False,
    anomaly_open: bool = False,
    running: bool = False,
) -> str:
    parts = ['WorkflowType="OrderWorkflow"']
    for key, value in (
        (sa.ORDER_STAGE, stage),
        (sa.STORE_CODE, store),
        (sa.ASSIGNEE_ID, assignee),
        (sa.ORDER_TYPE, order_type),
    ):
        if value is not None:
            parts.append(f"{key.name}={quote(value)}")
    if breached:
        parts.append(f"{sa.SLA_BREACHED.name}=true")
    if anomaly_open:
        parts.append(f"{sa.ANOMALY_OPEN.name}=true")
    if running:
        parts.append('ExecutionStatus="Running"')
    return " AND ".join(parts)


# Model fields as the person typed them, for validation messages.
OPTION_OF = {
    "by": "--by",
    "promised_delivery_at": "--delivery-at",
    "promised_ready_at": "--ready-at",
    "promises": "--promises",
    "channel": "--channel",
    "note": "--note",
    "percent": "--percent",
    "detail": "--detail",
    "new_promised_at": "--new-time",
    "cancel_code": "--code",
    "reason_code": "--code",
    "proof": "--proof",
    "score": "--score",
    "comment": "--comment",
    "reason": "--reason",
    "to": "--to",
    "case": "CASE",
    "response": "--response",
    "resolution": "--resolution",
    "refund_id": "REFUND_ID",
    "remind_id": "REMIND_ID",
    "text": "--text",
    "cause": "--cause",
    "responsibility": "--responsibility",
    "new_total": "--new-total",
    "corrections": "--correct",
    "changes": "the changed fields",
}
_SNAKE_FIELDS = re.compile(r"\b(" + "|".join(k for k in OPTION_OF if "_" in k) + r")\b")


def explain_invalid(err: ValidationError) -> str:
    """Pydantic's findings in the words of the command line."""
    findings = []
    for item in err.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        message = _SNAKE_FIELDS.sub(lambda m: OPTION_OF[m.group(1)], message)
        loc = [str(part) for part in item["loc"]]
        if loc:
            name = OPTION_OF.get(loc[0], "--" + loc[0].replace("_", "-"))
            if loc[0] == "changes" and len(loc) > 1:
                name = "--" + loc[1].replace("_", "-")
            findings.append(f"argument {name}: {message}")
        else:
            findings.append(message)
    return "; ".join(findings)


# ==================================================================================================
# Temporal
# ==================================================================================================


@dataclass(frozen=True)
class Target:
    """A workflow a command addresses, and how a person calls it."""

    workflow_id: str
    label: str
    is_order: bool = True


def order_target(order: str) -> Target:
    return Target(order_workflow_id(order), f"order {order}")


def anomaly_target(order: str, number: int) -> Target:
    return Target(anomaly_workflow_id(order, number), f"anomaly {number} of order {order}", False)


@dataclass(frozen=True)
class Session:
    client: Client
    address: str
    namespace: str
    timeout: timedelta

    def no_answer(self) -> Failure:
        return Failure(
            f"no worker answered within {self.timeout.total_seconds():g}s; "
            f"is a worker running on task queue {TASK_QUEUE!r}?",
            Exit.NO_ANSWER,
        )

    def rpc_failure(self, err: RPCError) -> Failure:
        if err.status == RPCStatusCode.UNAVAILABLE:
            return Failure(
                f"cannot reach Temporal at {self.address}: {err.message}", Exit.UNREACHABLE
            )
        if err.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            return Failure(
                f"Temporal at {self.address} refused the call: {err.message}", Exit.UNREACHABLE
            )
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return self.no_answer()
        return Failure(f"Temporal: {err.message}", Exit.FAILED)

    async def explain(self, target: Target, err: RPCError) -> Failure:
        """NOT_FOUND means either no such workflow or one that has ended: say which."""
        if err.status != RPCStatusCode.NOT_FOUND:
            return self.rpc_failure(err)
        if "namespace" in err.message.lower():
            return Failure(
                f"cannot use namespace {self.namespace!r} at {self.address}: {err.message}",
                Exit.UNREACHABLE,
            )
        handle = self.client.get_workflow_handle(target.workflow_id)
        try:
            described = await handle.describe(rpc_timeout=self.timeout)
        except RPCError as again:
            if again.status == RPCStatusCode.NOT_FOUND:
                return Failure(f"{target.label} not found", Exit.NOT_FOUND)
            return self.rpc_failure(again)
        if described.status in (None, WorkflowExecutionStatus.RUNNING):
            return Failure(f"{target.label}: {err.message}", Exit.FAILED)
        ended = described.status.name.lower()
        stage = described.typed_search_attributes.get(sa.ORDER_STAGE)
        if target.is_order and stage:
            completed = described.status is WorkflowExecutionStatus.COMPLETED
            ended = stage if completed else f"{ended} at stage {stage}"
        return Failure(f"{target.label} already ended: {ended}", Exit.NOT_ALLOWED)

    async def settled(self, handle: WorkflowHandle[Any, Any]) -> None:
        """No workflow task waiting before a query or update (starter/settled.py)."""
        await settled(handle, within_s=min(self.timeout.total_seconds(), SETTLE_WITHIN_S))

    async def update(self, target: Target, name: str, arg: BaseModel, result_type: type[R]) -> R:
        handle = self.client.get_workflow_handle(target.workflow_id)
        try:
            await self.settled(handle)
            result: R = await handle.execute_update(
                name, arg, result_type=result_type, rpc_timeout=self.timeout
            )
        except WorkflowUpdateFailedError as err:
            raise refusal(err.cause) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise self.no_answer() from None
        except RPCError as err:
            raise await self.explain(target, err) from None
        return result

    async def query(self, target: Target, result_type: type[R]) -> R:
        handle = self.client.get_workflow_handle(target.workflow_id)
        try:
            await self.settled(handle)
            result: R = await handle.query(
                "status", result_type=result_type, rpc_timeout=self.timeout
            )
        except WorkflowQueryFailedError as err:
            raise Failure(
                f"{target.label}: status query failed: {err.message}", Exit.FAILED
            ) from None
        except RPCError as err:
            raise await self.explain(target, err) from None
        return result

    async def signal(self, target: Target, name: str, arg: BaseModel) -> None:
        handle = self.client.get_workflow_handle(target.workflow_id)
        try:
            await handle.signal(name, arg, rpc_timeout=self.timeout)
        except RPCError as err:
            raise await self.explain(target, err) from None

    async def list_orders(self, query: str, limit: int | None) -> list[WorkflowExecution]:
        try:
            return [
                execution
                async for execution in self.client.list_workflows(
                    query, limit=limit, rpc_timeout=self.timeout
                )
            ]
        except RPCError as err:
            raise self.rpc_failure(err) from None


def refusal(cause: BaseException | None) -> Failure:
    """The workflow's own words: a validator's or handler's ApplicationError, verbatim."""
    if isinstance(cause, ApplicationError):
        return Failure(cause.message, Exit.NOT_ALLOWED)
    messages: list[str] = []
    while isinstance(cause, FailureError):
        messages.append(cause.message)
        cause = cause.cause
    return Failure(": ".join(messages) or "the update failed", Exit.FAILED)


def _target_config() -> tuple[str, str]:
    """Address and namespace as connect_client will see them, for messages."""
    try:
        config = ClientConfig.load_client_connect_config(override_env_vars=dict(os.environ))
    except Exception:
        return os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"), "default"
    return str(config.get("target_host") or "localhost:7233"), str(
        config.get("namespace") or "default"
    )


async def connect(answer_within: float) -> Session:
    address, namespace = _target_config()
    try:
        client = await asyncio.wait_for(connect_client(), CONNECT_TIMEOUT)
    except TimeoutError:
        raise Failure(
            f"cannot reach Temporal at {address}: no answer within {CONNECT_TIMEOUT:g}s",
            Exit.UNREACHABLE,
        ) from None
    except Exception as err:  # the SDK reports every connection problem as some exception
        detail = str(err).removeprefix("Failed client connect: ") or type(err).__name__
        raise Failure(f"cannot reach Temporal at {address}: {detail}", Exit.UNREACHABLE) from None
    return Session(client, address, namespace, timedelta(seconds=answer_within))


# ==================================================================================================
# Commands
# ==================================================================================================

Handler = Callable[[Session, argparse.Namespace], Awaitable[Exit]]
Builder = Callable[[argparse.Namespace], BaseModel]


def say(args: argparse.Namespace, line: str, payload: Any) -> None:
    print(fmt.dumps(payload) if getattr(args, "json", False) else line)


def action(update: str) -> Handler:
    """An update on the order; the answer is the workflow's own message."""

    async def run(session: Session, args: argparse.Namespace) -> Exit:
        result = await session.update(order_target(args.order), update, args.message, UpdateResult)
        say(
            args,
            f"order {args.order}: {result.message} (stage {result.stage.value})",
            {"order_id": args.order, "update": update, **result.model_dump(mode="json")},
        )
        return Exit.OK

    return run


def signal(name: str, told: Callable[[argparse.Namespace], str]) -> Handler:
    """A signal on the customer's behalf; Temporal holds it once this returns."""

    async def run(session: Session, args: argparse.Namespace) -> Exit:
        await session.signal(order_target(args.order), name, args.message)
        say(
            args,
            f"order {args.order}: {told(args)}",
            {"order_id": args.order, "signal": name, "sent": True},
        )
        return Exit.OK

    return run


async def decide(session: Session, args: argparse.Namespace) -> Exit:
    """Without N the order's latest open anomaly is the one meant."""
    number: int | None = args.number
    if number is None:
        status = await session.query(order_target(args.order), OrderStatus)
        still_open = [a for a in status.anomalies if a.closed_at is None]
        if not still_open:
            raise Failure(f"order {args.order} has no open anomaly", Exit.NOT_ALLOWED)
        number = int(still_open[-1].anomaly_id.rsplit("-", 1)[1])
    outcome = await session.update(
        anomaly_target(args.order, number), "decide", args.message, AnomalyOutcome
    )
    after = "the order resumes" if outcome.resume else "the order ends"
    say(
        args,
        f"{outcome.anomaly_id}: {outcome.decision.value} by {outcome.decided_by}; {after}",
        {"order_id": args.order, **outcome.model_dump(mode="json")},
    )
    return Exit.OK


def order_row(execution: WorkflowExecution) -> fmt.OrderRow:
    attrs = execution.typed_search_attributes
    return fmt.OrderRow(
        order_id=order_id_in(execution.id),
        workflow_id=execution.id,
        status=execution.status.name.lower() if execution.status else "unknown",
        stage=attrs.get(sa.ORDER_STAGE),
        order_type=attrs.get(sa.ORDER_TYPE),
        store_code=attrs.get(sa.STORE_CODE),
        region=attrs.get(sa.REGION),
        assignee=attrs.get(sa.ASSIGNEE_ID),
        breached=bool(attrs.get(sa.SLA_BREACHED)),
        anomaly_open=bool(attrs.get(sa.ANOMALY_OPEN)),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


async def list_orders(session: Session, args: argparse.Namespace) -> Exit:
    query = visibility_query(
        stage=args.stage,
        store=args.store,
        assignee=args.assignee,
        order_type=args.type,
        breached=args.breached,
        anomaly_open=args.anomaly_open,
        running=args.running,
    )
    rows = [order_row(e) for e in await session.list_orders(query, args.limit)]
    if args.json:
        print(fmt.dumps([r.as_json() for r in rows]))
    else:
        print(fmt.render_orders(rows, business_zone()))
    return Exit.OK


async def show(session: Session, args: argparse.Namespace) -> Exit:
    status = await session.query(order_target(args.order), OrderStatus)
    if args.json:
        print(fmt.dumps(status.model_dump(mode="json")))
    else:
        print(fmt.render_status(status, business_zone(), datetime.now(UTC)))
    return Exit.OK


async def anomalies(session: Session, args: argparse.Namespace) -> Exit:
    """The inbox: every order on hold, with its open anomaly as the child sees it."""
    query = visibility_query(anomaly_open=True, running=True)
    executions = await session.list_orders(query, args.limit)
    gate = asyncio.Semaphore(PARALLEL_QUERIES)

    async def one(execution: WorkflowExecution) -> fmt.AnomalyRow | None:
        order = order_id_in(execution.id)
        async with gate:
            try:
                status = await session.query(order_target(order), OrderStatus)
                still_open = [a for a in status.anomalies if a.closed_at is None]
                if not still_open:
                    return None  # decided since the listing: visibility lags a little
                child = Target(still_open[-1].anomaly_id, still_open[-1].anomaly_id, False)
                anomaly = await session.query(child, AnomalyStatus)
            except Failure as failure:
                if failure.code in (Exit.NOT_FOUND, Exit.NOT_ALLOWED):
                    return None  # ended since the listing
                raise
        if anomaly.state == "decided":
            return None
        return fmt.AnomalyRow.of(status, anomaly)

    found = await asyncio.gather(*(one(e) for e in executions))
    rows = sorted((r for r in found if r is not None), key=lambda r: r.due_at)
    if args.json:
        print(fmt.dumps([r.as_json() for r in rows]))
    else:
        print(fmt.render_anomalies(rows, business_zone(), datetime.now(UTC)))
    return Exit.OK


async def stats(args: argparse.Namespace) -> Exit:
    """R4.3 the statistics of a period; reads PostgreSQL, not Temporal."""
    try:
        figures = await st.collect(period_of(args), args.by)
    except st.StatsError as err:
        raise Failure(str(err), Exit.FAILED) from None
    print(fmt.dumps(figures) if args.json else st.render(figures))
    return Exit.OK


async def report(args: argparse.Namespace) -> Exit:
    """R4.3 the statistics as one self-contained HTML file."""
    from analytics import report as html  # matplotlib only when a report is made

    try:
        written = await html.write(args.out, period_of(args))
    except st.StatsError as err:
        raise Failure(str(err), Exit.FAILED) from None
    except OSError as err:
        raise Failure(f"cannot write {args.out}: {err.strerror or err}", Exit.FAILED) from None
    print(f"report for {written.period.label()} written to {written.path}")
    return Exit.OK


async def pushes(args: argparse.Namespace) -> Exit:
    """R6.3.2 what the gateway kept for a person; reads PostgreSQL, not Temporal."""
    from starter import kept_pushes

    zone = business_zone()
    first = args.since or datetime.now(zone).date()
    since = datetime.combine(first, datetime.min.time(), zone)
    kept = await kept_pushes.recent(since, args.limit)
    if args.json:
        print(fmt.dumps([push.as_json() for push in kept]))
    else:
        print(kept_pushes.render(kept, zone))
    return Exit.OK


def period_of(args: argparse.Namespace) -> st.Period:
    try:
        return st.period_of(args.start, args.end)
    except ValueError as err:
        raise Failure(str(err), Exit.USAGE) from None


def day(value: str) -> date:
    try:
        return st.parse_day(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --- message builders: pure, so bad arguments fail before any connection --------------------------


def build_confirm(a: argparse.Namespace) -> BaseModel:
    return ConfirmWithCustomer(
        by=a.by,
        channel=a.channel,
        promised_ready_at=a.ready_at,
        promised_delivery_at=a.delivery_at,
        promises=a.promises,
    )


def build_exception(a: argparse.Namespace) -> BaseModel:
    return ReportException(
        by=a.by,
        kind=a.kind,
        detail=a.detail,
        remedy=a.remedy,
        new_promised_at=a.new_time,
        cancel_code=a.code,
    )


def build_decide(a: argparse.Namespace) -> BaseModel:
    corrections = CustomerChanges(**dict(a.correct)) if a.correct else None
    return Decide(
        by=a.by,
        decision=a.decision,
        cause=a.cause,
        responsibility=a.responsibility,
        note=a.note,
        corrections=corrections,
        new_total=a.new_total,
        cancel_code=a.code,
        resume=a.resume,
    )


def build_change(a: argparse.Namespace) -> BaseModel:
    changes = CustomerChanges(
        name=a.name,
        phone=a.phone,
        address=a.address,
        latitude=a.latitude,
        longitude=a.longitude,
        expected_at=a.expected_at,
        remarks=a.remarks,
    )
    return CustomerChange(changes=changes, note=a.note)


def changed(a: argparse.Namespace) -> str:
    fields = ", ".join(a.message.changes.changed_fields())
    return f"change of {fields} sent; it goes through review again"


# ==================================================================================================
# The parser
# ==================================================================================================

EPILOG = f"""\
examples:
  {PROG} list --stage in_progress --store SH-XH-001
  {PROG} show 27061900311184578
  {PROG} confirm 27061900311184578 --by S-101 --delivery-at +90m --promises "少放辣"
  {PROG} anomalies
  {PROG} anomaly decide 27061900311184578 --by M-001 --decision dismiss \\
      --cause "address checked by phone" --responsibility customer

times: {WHEN_HELP}.

environment:
  TEMPORAL_ADDRESS      Temporal frontend (default localhost:7233)
  TEMPORAL_NAMESPACE    namespace (default "default")
  TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH
                        Temporal Cloud or a TLS cluster
  ORDERFLOW_TIMEZONE    the business's zone for naive times and display (Asia/Shanghai)

exit codes:
  0 done  1 other failure  2 bad arguments  3 unknown order or anomaly
  4 not allowed now (the workflow's reason, or it already ended)
  5 Temporal unreachable  6 no worker answered in time
"""


def version() -> str:
    try:
        return metadata.version("orderflow")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Act on orders and see where they stand (orderflow on Temporal).",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for a worker's answer (default {DEFAULT_TIMEOUT:g})",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument("--by", required=True, metavar="STAFF", help="who does it, e.g. S-101")
    order = argparse.ArgumentParser(add_help=False)
    order.add_argument("order", type=order_id, metavar="ORDER", help="the platform's order_id")

    def command(
        group: Any,
        name: str,
        help_text: str,
        examples: Sequence[str],
        *,
        handler: Handler,
        build: Builder | None = None,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[*parents, common],
            epilog="examples:\n" + "\n".join(f"  {PROG} {e}" for e in examples),
            formatter_class=_Formatter,
        )
        sub.set_defaults(handler=handler, build=build, parser=sub, offline=None)
        return sub

    # --- reading ----------------------------------------------------------------------------------
    sub = command(
        commands,
        "list",
        "orders by stage, store, assignee, type, breach or open anomaly (newest first)",
        [
            "list --stage in_progress --store SH-XH-001",
            "list --breached --running",
            "list --anomaly-open --json",
        ],
        handler=list_orders,
    )
    sub.add_argument("--stage", choices=[s.value for s in Stage])
    sub.add_argument("--store", type=keyword, metavar="CODE")
    sub.add_argument("--assignee", type=keyword, metavar="STAFF")
    sub.add_argument("--type", choices=[t.value for t in OrderType])
    sub.add_argument("--breached", action="store_true", help="a deadline was missed")
    sub.add_argument("--anomaly-open", action="store_true", help="on hold for a manager")
    sub.add_argument("--running", action="store_true", help="leave out ended orders")
    sub.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="at most N orders (default 50)"
    )
    sub.epilog = (sub.epilog or "") + (
        "\n\njson keys: order_id, workflow_id, status, stage, order_type, store_code, region,"
        "\n  assignee, breached, anomaly_open, started_at, closed_at"
    )

    sub = command(
        commands,
        "show",
        "one order: stage, assignee, promise, deadlines, breaches, anomalies, feedback, "
        "refunds and its timeline",
        ["show 27061900311184578", "show 27061900311184578 --json"],
        handler=show,
        parents=[order],
    )
    sub.epilog = (sub.epilog or "") + (
        "\n\njson: the status query as the workflow returns it: order_id, stage, paused_stage,"
        "\n  order_type, store_code, region, delivery_mode, assignee, booking, promise,"
        "\n  awaiting_reconfirmation, deadlines, breaches, anomalies, feedback, refunds,"
        "\n  rating, timeline"
    )

    sub = command(
        commands,
        "anomalies",
        "the anomaly inbox: orders on hold with their open anomaly, most urgent first",
        ["anomalies", "anomalies --json"],
        handler=anomalies,
    )
    sub.add_argument(
        "--limit", type=positive, default=200, metavar="N", help="at most N orders (default 200)"
    )
    sub.epilog = (sub.epilog or "") + (
        "\n\njson keys: order_id, anomaly_id, kind, state, detail, opened_at, due_at,"
        "\n  escalations, paused_stage, store_code, assignee"
    )

    # --- the lifecycle ----------------------------------------------------------------------------
    sub = command(
        commands,
        "confirm",
        "confirmed with the customer, with the promised times (R2.4.1, R2.4.3)",
        [
            "confirm 123 --by T-301 --delivery-at +1d --promises 'bring the ladder'",
            "confirm 123 --by S-101 --delivery-at 2025-06-01T18:30 --ready-at 2025-06-01T18:00",
        ],
        handler=action("confirm_with_customer"),
        build=build_confirm,
        parents=[order, actor],
    )
    sub.add_argument("--delivery-at", type=when, required=True, metavar="WHEN", help=WHEN_HELP)
    sub.add_argument("--ready-at", type=when, metavar="WHEN", help="goods ready by (same forms)")
    sub.add_argument("--promises", default="", help="what else the customer was promised")
    sub.add_argument("--channel", default="phone", help="how they were reached (default phone)")

    sub = command(
        commands,
        "progress",
        "progress the customer is told about (R3.3.1)",
        ["progress 123 --by S-101 --note 'in the oven' --percent 60"],
        handler=action("report_progress"),
        build=lambda a: ReportProgress(by=a.by, note=a.note, percent=a.percent),
        parents=[order, actor],
    )
    sub.add_argument("--note", required=True)
    sub.add_argument("--percent", type=int, help="0-100")

    sub = command(
        commands,
        "exception",
        "an exception with its remedy; the customer is told (R3.3.2)",
        [
            "exception 123 --by S-101 --kind delay --detail 'rain' --remedy reschedule "
            "--new-time +2h",
            "exception 123 --by S-101 --kind shortage --detail 'no pork' --remedy cancel "
            "--code 2009",
            "exception 123 --by S-101 --kind other --detail 'oven broke' --remedy escalate",
        ],
        handler=action("report_exception"),
        build=build_exception,
        parents=[order, actor],
    )
    sub.add_argument("--kind", required=True, choices=[k.value for k in ExceptionKind])
    sub.add_argument("--detail", required=True)
    sub.add_argument("--remedy", required=True, choices=[r.value for r in Remedy])
    sub.add_argument("--new-time", type=when, metavar="WHEN", help="for reschedule: " + WHEN_HELP)
    sub.add_argument("--code", type=cancel_code, help="for cancel: merchant cancel code 2001-2016")

    sub = command(
        commands,
        "ready",
        "goods are ready",
        ["ready 123 --by S-101"],
        handler=action("mark_ready"),
        build=lambda a: MarkReady(by=a.by, note=a.note),
        parents=[order, actor],
    )
    sub.add_argument("--note", default="")

    sub = command(
        commands,
        "delivered",
        "delivered (or the service done), with proof (R3.4.1)",
        ["delivered 123 --by S-101 --proof photo:IMG_2031.jpg"],
        handler=action("mark_delivered"),
        build=lambda a: MarkDelivered(by=a.by, proof=a.proof, note=a.note),
        parents=[order, actor],
    )
    sub.add_argument("--proof", required=True, help="photo reference, signature or pickup code")
    sub.add_argument("--note", default="")

    sub = command(
        commands,
        "reconfirm",
        "the service visit re-confirmed with the customer (R3.2.2)",
        ["reconfirm 123 --by T-301"],
        handler=action("reconfirm_visit"),
        build=lambda a: ReconfirmVisit(by=a.by, note=a.note),
        parents=[order, actor],
    )
    sub.add_argument("--note", default="")

    sub = command(
        commands,
        "rate",
        "the customer's rating; a low one opens a complaint (R3.4.2)",
        ["rate 123 --score 5", "rate 123 --score 2 --comment 'arrived cold' --by S-101"],
        handler=action("record_rating"),
        build=lambda a: RecordRating(by=a.by, score=a.score, comment=a.comment),
        parents=[order],
    )
    sub.add_argument("--score", type=int, required=True, choices=range(1, 6), metavar="1-5")
    sub.add_argument("--comment", default="")
    sub.add_argument("--by", default="customer", help="who recorded it (default customer)")

    sub = command(
        commands,
        "reassign",
        "give the order to someone else (or let the rules choose)",
        ["reassign 123 --by M-001 --reason 'S-101 went home ill' --to S-102"],
        handler=action("reassign"),
        build=lambda a: Reassign(by=a.by, reason=a.reason, to=a.to),
        parents=[order, actor],
    )
    sub.add_argument("--reason", required=True)
    sub.add_argument("--to", metavar="STAFF", help="the new assignee (default: the rules choose)")

    sub = command(
        commands,
        "cancel",
        "cancel on the merchant's side, e.g. the customer asked by phone",
        ["cancel 123 --by S-101 --code 2006 --reason 'customer phoned to cancel'"],
        handler=action("cancel_order"),
        build=lambda a: CancelOrder(by=a.by, reason_code=a.code, reason=a.reason),
        parents=[order, actor],
    )
    sub.add_argument("--code", type=cancel_code, required=True, help="merchant code 2001-2016")
    sub.add_argument("--reason", required=True)

    # --- after-sales ------------------------------------------------------------------------------
    feedback = commands.add_parser(
        "feedback",
        help="answer and resolve a feedback case (R4.2)",
        description="Answer and resolve a feedback case (R4.2).",
        epilog=f"""examples:
  {PROG} feedback respond 123 1 --by S-101 --response 'sorry, a new one is on its way'
  {PROG} feedback resolve 123 1 --by S-101 --resolution 'refunded the drink' --satisfied""",
        formatter_class=_Formatter,
    )
    cases = feedback.add_subparsers(dest="step", metavar="STEP", required=True)
    case_arg = argparse.ArgumentParser(add_help=False)
    case_arg.add_argument("case", type=positive, metavar="CASE", help="the case number")

    sub = command(
        cases,
        "respond",
        "a response to the customer; someone is put on the case",
        ["feedback respond 123 1 --by S-101 --response 'sorry, a new one is on its way'"],
        handler=action("respond_feedback"),
        build=lambda a: RespondFeedback(by=a.by, case=a.case, response=a.response),
        parents=[order, case_arg, actor],
    )
    sub.add_argument("--response", required=True)

    sub = command(
        cases,
        "resolve",
        "the result went back to the customer; were they satisfied?",
        [
            "feedback resolve 123 1 --by S-101 --resolution 'refunded the drink' --satisfied",
            "feedback resolve 123 1 --by S-101 --resolution 'voucher' --unsatisfied",
        ],
        handler=action("resolve_feedback"),
        build=lambda a: ResolveFeedback(
            by=a.by, case=a.case, resolution=a.resolution, satisfied=a.satisfied
        ),
        parents=[order, case_arg, actor],
    )
    sub.add_argument("--resolution", required=True)
    verdict = sub.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--satisfied", dest="satisfied", action="store_true", default=None)
    verdict.add_argument("--unsatisfied", dest="satisfied", action="store_false")

    sub = command(
        commands,
        "refund",
        "decide the platform's refund request",
        ["refund 123 R-88 --by M-001 --agree --reason 'items missing'"],
        handler=action("decide_refund"),
        build=lambda a: DecideRefund(
            by=a.by, refund_id=a.refund_id, agree=a.agree, reason=a.reason
        ),
        parents=[order, actor],
    )
    sub.add_argument("refund_id", metavar="REFUND_ID")
    decision = sub.add_mutually_exclusive_group(required=True)
    decision.add_argument("--agree", dest="agree", action="store_true", default=None)
    decision.add_argument("--reject", dest="agree", action="store_false")
    sub.add_argument("--reason", required=True)

    sub = command(
        commands,
        "reply-reminder",
        "answer the customer's reminder (催单)",
        ["reply-reminder 123 RM-5 --by S-101 --text 'the rider left 5 minutes ago'"],
        handler=action("reply_reminder"),
        build=lambda a: ReplyReminder(by=a.by, remind_id=a.remind_id, text=a.text),
        parents=[order, actor],
    )
    sub.add_argument("remind_id", metavar="REMIND_ID")
    sub.add_argument("--text", required=True)

    # --- anomalies --------------------------------------------------------------------------------
    anomaly = commands.add_parser(
        "anomaly",
        help="decide an anomalous order (R5.2)",
        description="Decide an anomalous order (R5.2). The inbox is `orderctl anomalies`.",
        epilog=f"""examples:
  {PROG} anomaly decide 123 --by M-001 --decision dismiss --cause 'phone checked' \\
      --responsibility customer""",
        formatter_class=_Formatter,
    )
    steps = anomaly.add_subparsers(dest="step", metavar="STEP", required=True)
    sub = command(
        steps,
        "decide",
        "the manager's decision on an anomaly; N defaults to the order's open anomaly",
        [
            "anomaly decide 123 --by M-001 --decision correct_info --cause 'wrong phone' "
            "--responsibility customer --correct phone=13800138000",
            "anomaly decide 123 --by M-001 --decision adjust_price --new-total 58.00 "
            "--cause 'old price list' --responsibility store",
            "anomaly decide 123 2 --by M-001 --decision agreed_with_platform --no-resume "
            "--cause 'courier strike' --responsibility platform",
        ],
        handler=decide,
        build=build_decide,
        parents=[order],
    )
    sub.add_argument("number", type=positive, nargs="?", metavar="N", help="anomaly-ORDER-N")
    sub.add_argument("--by", required=True, metavar="MANAGER")
    sub.add_argument("--decision", required=True, choices=[d.value for d in Decision])
    sub.add_argument("--cause", required=True, help="what the investigation found")
    sub.add_argument(
        "--responsibility", required=True, help="customer, store, platform, courier, system, ..."
    )
    sub.add_argument("--note", default="")
    sub.add_argument("--new-total", type=money, metavar="AMOUNT", help="for adjust_price")
    sub.add_argument("--code", type=cancel_code, help="for cancel: merchant cancel code")
    sub.add_argument(
        "--correct",
        type=correction,
        action="append",
        metavar="FIELD=VALUE",
        help=f"for correct_info, once per field; FIELD is one of {', '.join(CORRECTABLE)}",
    )
    sub.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="agreed_with_platform: the order ends instead of resuming",
    )

    # --- on the customer's behalf -----------------------------------------------------------------
    sub = command(
        commands,
        "complain",
        "feedback the customer gave by phone or in person (opens a case)",
        ["complain 123 --kind complaint --text 'the soup was spilled'"],
        handler=signal("customer_feedback", lambda a: f"{a.kind} sent; a case opens"),
        build=lambda a: CustomerFeedback(kind=a.kind, text=a.text, channel=a.channel),
        parents=[order],
    )
    sub.add_argument(
        "--kind",
        required=True,
        choices=[k.value for k in FeedbackKind if k not in PLATFORM_KINDS],
    )
    sub.add_argument("--text", required=True)
    sub.add_argument("--channel", default="phone", help="how it reached us (default phone)")

    sub = command(
        commands,
        "change",
        "what the customer changed; the order goes back through review (R2.4.2)",
        [
            "change 123 --address '上海市徐汇区宜山路1号' --note 'moved'",
            "change 123 --expected-at +3h --remarks 'call before coming'",
        ],
        handler=signal("customer_change", changed),
        build=build_change,
        parents=[order],
    )
    sub.add_argument("--name")
    sub.add_argument("--phone")
    sub.add_argument("--address")
    sub.add_argument("--latitude", type=float)
    sub.add_argument("--longitude", type=float)
    sub.add_argument("--expected-at", type=when, metavar="WHEN", help=WHEN_HELP)
    sub.add_argument("--remarks")
    sub.add_argument("--note", default="", help="why, in a few words")

    # --- statistics (R4.3, R7.2): PostgreSQL only ----------------------------------------------
    period = argparse.ArgumentParser(add_help=False)
    period.add_argument(
        "--from", dest="start", type=day, metavar="DATE", help="first day (default today)"
    )
    period.add_argument("--to", dest="end", type=day, metavar="DATE", help="last day, included")
    sub = commands.add_parser(
        "stats",
        help="statistics of a period, compared with the one before, with findings (R4.3)",
        description="Statistics of a period (business days in Asia/Shanghai), compared with the "
        "period of the same length before it, with what stands out and the staff scorecards "
        "(R4.3, R7.2). Reads PostgreSQL (DATABASE_URL), not Temporal.",
        epilog=f"""examples:
  {PROG} stats
  {PROG} stats --from 2025-06-01 --to 2025-06-30 --by store
  {PROG} stats --from yesterday --json""",
        parents=[period],
        formatter_class=_Formatter,
    )
    sub.add_argument("--by", choices=st.GROUPS, help="figures per store, region, type or hour")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.set_defaults(handler=None, build=None, parser=sub, offline=stats)

    sub = commands.add_parser(
        "report",
        help="the statistics as one self-contained HTML file with charts (R4.3)",
        description="The statistics of a period as one HTML file with its charts inline: "
        "readable offline, nothing loaded from the network.",
        epilog=f"""examples:
  {PROG} report --out today.html
  {PROG} report --out june.html --from 2025-06-01 --to 2025-06-30""",
        parents=[period],
        formatter_class=_Formatter,
    )
    sub.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    sub.set_defaults(handler=None, build=None, parser=sub, offline=report)

    sub = commands.add_parser(
        "pushes",
        help="pushes the gateway kept for a person: refused, or taken by no workflow (R6.3.2)",
        description="The pushes kept in the database, newest first, each with its reason: "
        "refused ones (bad signature, malformed, too old) and accepted ones that no workflow "
        "took (an ended order, a refund step or a privacy-number downgrade). Reads PostgreSQL "
        "(DATABASE_URL), not Temporal.",
        epilog=f"""examples:
  {PROG} pushes
  {PROG} pushes --since yesterday --limit 200 --json""",
        formatter_class=_Formatter,
    )
    sub.add_argument(
        "--since", type=day, default=None, metavar="DATE", help="first day (default today)"
    )
    sub.add_argument("--limit", type=positive, default=50, help="at most this many (50)")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.set_defaults(handler=None, build=None, parser=sub, offline=pushes)

    # --- the local stack -----------------------------------------------------------------------
    sub = commands.add_parser(
        "dev",
        help="the whole local stack (Temporal, PostgreSQL, simulator, gateway, worker)",
        description="Starts the Temporal dev server (Web UI on :8233, state in .data/dev so a "
        "restart continues the orders in flight), the embedded PostgreSQL with migrations and "
        "the demo company, the platform simulator, the push gateway and a worker; Ctrl-C stops "
        "everything.",
        epilog=f"""examples:
  {PROG} dev
  {PROG} dev --fresh --policy localstack/demo_policy.toml""",
        formatter_class=_Formatter,
    )
    sub.add_argument("--fresh", action="store_true", help="start from nothing")
    sub.add_argument("--policy", type=Path, help="policy file for the worker (ORDERFLOW_POLICY)")
    sub.set_defaults(handler=None, build=None, parser=sub, offline=dev)
    return parser


async def dev(args: argparse.Namespace) -> Exit:
    from localstack.dev import run_dev  # the stack's imports are only needed here

    return Exit(await run_dev(fresh=args.fresh, policy=args.policy))


# ==================================================================================================
# Entry point
# ==================================================================================================


async def _run(args: argparse.Namespace) -> Exit:
    offline: Callable[[argparse.Namespace], Awaitable[Exit]] | None = args.offline
    if offline is not None:
        return await offline(args)  # the database only: no Temporal connection
    session = await connect(args.timeout)
    handler: Handler = args.handler
    return await handler(session, args)


def main(argv: Sequence[str] | None = None, *, hard_exit: bool = True) -> int:
    """The console script. Once Temporal was used the process leaves with `os._exit`: the SDK
    core's threads can crash CPython's finalization of a short-lived client process
    (temporalio/sdk-python#300, about one run in ten here), after the output was right."""
    try:
        business_zone()
    except ValueError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return Exit.USAGE
    configure_logging("WARNING")
    parser = build_parser()
    args = parser.parse_args(argv)
    build: Builder | None = args.build
    if build is not None:
        try:
            args.message = build(args)
        except ValidationError as err:
            args.parser.error(explain_invalid(err))
    code = _execute(args)
    if hard_exit:
        _leave(code)
    return code


def _execute(args: argparse.Namespace) -> int:
    try:
        return int(asyncio.run(_run(args)))
    except Failure as failure:
        print(f"{PROG}: {failure.message}", file=sys.stderr)
        return int(failure.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return Exit.OK
    except Exception as err:  # a person gets one line, not a traceback
        print(f"{PROG}: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return Exit.FAILED


def _leave(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
