"""The two things every workflow of an order does: run an activity, and tell someone.

OrderWorkflow and AnomalyWorkflow share these so that their activities retry, time out and
cancel alike, and their notifications are keyed alike (`<workflow key>:<n>`): the notifier
sends each key once, however often the activity that sends it is retried.

A workflow whose record's writes are local (`local_writes`) runs them, and its review, as local
activities on the worker that runs the workflow: a marker in the history instead of a server
round trip with a workflow task of its own (`activity_options.runs_locally` says which, and
why the others stay on the server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities.notify import Notifier
    from schemas.notices import Audience, Notification, Topic
    from workflows import story
    from workflows.activity_options import (
        CANCELLATION,
        LOCAL_RETRY_THRESHOLD,
        LOCAL_TIMEOUT,
        RETRY,
        TIMEOUT,
        gives_up_after,
        runs_locally,
        task_queue_for,
    )

A = TypeVar("A")
R = TypeVar("R")


class Steps:
    """The activities and notifications of one workflow about one order."""

    def __init__(
        self,
        *,
        order_id: str,
        store_code: str,
        notice_key: str,
        gives_up: bool = True,
        local_writes: bool = False,
    ) -> None:
        """`gives_up`: steps end by their kind's bound (`activity_options.gives_up_after`);
        False for a workflow with nobody to hand a step that gave up to (the anomaly's
        remedy is already a manager's decision), whose steps keep trying. `local_writes`: the
        record's writes run as local activities (above)."""
        self._order_id = order_id
        self.local_writes = local_writes
        self._store_code = store_code
        self._notice_key = notice_key
        self._gives_up = gives_up
        self._notices = 0
        self._routed = False
        self._platform_task_queue: str | None = None
        self.busy = 0
        """Steps in flight: a write to the record can wait for the order to settle."""
        self._local_since: list[int] = []
        """The workflow task each local activity in flight started in (by the history's length
        then): the task completes once none is running; one that waits on a timer to try again
        started in an earlier task."""

    def route(self, platform_task_queue: str | None) -> Steps:
        """Merchant API calls go to the platform's queue when the policy names one. No
        activity starts before this is known."""
        self._platform_task_queue = platform_task_queue
        self._routed = True
        return self

    async def act(self, fn: Callable[[Any, A], Awaitable[R]], arg: A, *, busy: bool = True) -> R:
        """`busy`: counted in `busy` (every step but the writes that wait for it)."""
        if not self._routed:
            # A signal that started the order acts once the order has its policy snapshot.
            await workflow.wait_condition(lambda: self._routed)
        self.busy += busy
        try:
            if self.local_writes and runs_locally(fn):
                return await self._local(fn, arg)
            return await workflow.execute_activity_method(
                fn,
                arg,
                task_queue=task_queue_for(fn, self._platform_task_queue),
                start_to_close_timeout=TIMEOUT,
                schedule_to_close_timeout=gives_up_after(fn) if self._gives_up else None,
                retry_policy=RETRY,
                cancellation_type=CANCELLATION,
                summary=story.step(fn, self._order_id),
            )
        finally:
            self.busy -= busy

    async def _local(self, fn: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        """A local step fails as a server one does: an ActivityError caused by the refusal (the
        SDK raises a local activity's ApplicationError bare)."""
        started = workflow.info().get_current_history_length()
        self._local_since.append(started)
        try:
            return await workflow.execute_local_activity_method(
                fn,
                arg,
                start_to_close_timeout=LOCAL_TIMEOUT,
                retry_policy=RETRY,
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                cancellation_type=CANCELLATION,
                summary=story.step(fn, self._order_id),
            )
        except ApplicationError as err:
            raise ActivityError(
                f"{fn.__name__} failed",
                scheduled_event_id=0,
                started_event_id=0,
                identity="",
                activity_type=fn.__name__,
                activity_id="",
                retry_state=RetryState.NON_RETRYABLE_FAILURE,
            ) from err
        finally:
            self._local_since.remove(started)

    @property
    def local_in_flight(self) -> int:
        return len(self._local_since)

    def local_running(self) -> bool:
        """A local activity started in this workflow task is in flight: the task goes on."""
        return workflow.info().get_current_history_length() in self._local_since

    async def tell(
        self,
        audience: Audience,
        topic: Topic,
        facts: dict[str, str] | None = None,
        *,
        recipient: str | None = None,
        due_at: datetime | None = None,
    ) -> None:
        """Written to the recipient's inbox and the outbox; delivery never holds up the order
        (the dispatcher sends it, workers/dispatcher.py)."""
        await self.act(
            Notifier.notify, self.notice(audience, topic, facts, recipient=recipient, due_at=due_at)
        )

    def notice(
        self,
        audience: Audience,
        topic: Topic,
        facts: dict[str, str] | None = None,
        *,
        recipient: str | None = None,
        due_at: datetime | None = None,
    ) -> Notification:
        """The next notification, keyed; `tell` writes it, or a claim carries it (its recipient,
        and the facts only the claim knows, filled in by the claim)."""
        self._notices += 1
        return Notification(
            key=f"{self._notice_key}:{self._notices}",
            order_id=self._order_id,
            audience=audience,
            recipient=recipient,
            store_code=self._store_code,
            topic=topic,
            facts=facts or {},
            due_at=due_at,
        )
