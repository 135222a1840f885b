"""The staff API's calls to Temporal, and every Temporal error turned into one line and the
outcome code a person's client acts on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from schemas.contract import TASK_QUEUE, anomaly_workflow_id, order_workflow_id
from schemas.messages import REWRITE_RECORD, RewriteRecord
from starter.failures import Exit, Failure
from starter.settled import SETTLE_WITHIN_S, settled
from workflows import search_attributes as sa

R = TypeVar("R")
log = structlog.get_logger("orderflow.api")
STAFF_API = "staff-api"


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

    async def update(
        self, target: Target, name: str, arg: BaseModel, result_type: type[R], *, update_id: str
    ) -> R:
        """`update_id` names the action: a retried request is the same update, applied once
        (Temporal answers a known ID with the first outcome)."""
        handle = self.client.get_workflow_handle(target.workflow_id)
        try:
            await self.settled(handle)
        except RPCError as err:
            raise await self.explain(target, err) from None
        try:
            result: R = await handle.execute_update(
                name, arg, id=update_id, result_type=result_type, rpc_timeout=self.timeout
            )
        except WorkflowUpdateFailedError as err:
            raise refusal(err.cause) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            await self._rewrite_record(target, handle)
            raise self.no_answer() from None
        except RPCError as err:
            await self._rewrite_record(target, handle)
            raise await self.explain(target, err) from None
        return result

    async def _rewrite_record(self, target: Target, handle: WorkflowHandle[Any, Any]) -> None:
        """An update with no outcome may have died with the task that took it, after the task
        wrote its lines (Temporal restarting): the person would read an action the order never
        took. The order is asked to write its record again, which takes such lines back
        (`RewriteRecord`). Best effort: the doctor finds what this misses (R4.1.3)."""
        if not target.is_order:
            return  # an anomaly's writes are server activities, on record only once done
        try:
            await handle.signal(
                REWRITE_RECORD, RewriteRecord(by=STAFF_API), rpc_timeout=self.timeout
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return  # ended: its last write took back whatever an older task wrote
            log.warning(
                "api.record_not_rewritten", workflow_id=target.workflow_id, error=err.message
            )
        else:
            log.info("api.record_rewritten", workflow_id=target.workflow_id)

    async def signal(self, target: Target, name: str, arg: BaseModel) -> None:
        handle = self.client.get_workflow_handle(target.workflow_id)
        try:
            await handle.signal(name, arg, rpc_timeout=self.timeout)
        except RPCError as err:
            raise await self.explain(target, err) from None


def refusal(cause: BaseException | None) -> Failure:
    """The workflow's own words: a validator's or handler's ApplicationError, verbatim."""
    if isinstance(cause, ApplicationError):
        return Failure(cause.message, Exit.NOT_ALLOWED)
    messages: list[str] = []
    while isinstance(cause, FailureError):
        messages.append(cause.message)
        cause = cause.cause
    return Failure(": ".join(messages) or "the update failed", Exit.FAILED)
