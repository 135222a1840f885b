"""The two things every workflow of an order does: run an activity, and tell someone.

OrderWorkflow and AnomalyWorkflow share these so that their activities retry, time out and
cancel alike, and their notifications are keyed alike (`<workflow key>:<n>`): the notifier
sends each key once, however often the activity that sends it is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notify import Notifier
    from schemas.notices import Topic
    from schemas.records import Audience, Notification
    from workflows import story
    from workflows.activity_options import (
        CANCELLATION,
        RETRY,
        TIMEOUT,
        gives_up_after,
        task_queue_for,
    )

A = TypeVar("A")
R = TypeVar("R")


class Steps:
    """The activities and notifications of one workflow about one order."""

    def __init__(
        self, *, order_id: str, store_code: str, notice_key: str, gives_up: bool = True
    ) -> None:
        """`gives_up`: steps end by their kind's bound (`activity_options.gives_up_after`);
        False for a workflow with nobody to hand a step that gave up to (the anomaly's
        remedy is already a manager's decision), whose steps keep trying."""
        self._order_id = order_id
        self._store_code = store_code
        self._notice_key = notice_key
        self._gives_up = gives_up
        self._notices = 0
        self._routed = False
        self._platform_task_queue: str | None = None
        self.busy = 0
        """Steps in flight: a write to the record can wait for the order to settle."""

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
        self._notices += 1
        await self.act(
            Notifier.notify,
            Notification(
                key=f"{self._notice_key}:{self._notices}",
                order_id=self._order_id,
                audience=audience,
                recipient=recipient,
                store_code=self._store_code,
                topic=topic,
                facts=facts or {},
                due_at=due_at,
            ),
        )
