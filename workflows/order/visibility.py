"""What an order is found by in Temporal: its search attributes, upserted once per task.

An order with local steps (LOCAL_WRITES) passes several stages in one workflow task: what they
change is gathered and upserted in one command as the task's local activities are done, and
only what differs from what the order is already found by (the starter gives its store, stage,
type and region at start). An order started before that patch upserts each change at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from workflows.steps import Steps


class Visibility:
    def __init__(self, steps: Steps, progress: Callable[[], object]) -> None:
        """`progress`: what changes while the order's task runs on (its timeline, its steps).
        The upserts are merged where the steps are local (`Steps.local_writes`)."""
        self._steps = steps
        self._progress = progress
        self._unshown: dict[str, SearchAttributeUpdate[Any]] = {}

    def show(self, *updates: SearchAttributeUpdate[Any]) -> None:
        if not self._steps.local_writes:
            workflow.upsert_search_attributes(list(updates))
            return
        for update in updates:
            self._unshown[update.key.name] = update

    async def upsert_as_tasks_end(self) -> None:
        """Runs beside the lifecycle. A workflow task stays open while a local activity runs,
        so one with none running, once its coroutines have run as far as they can, is about to
        complete: then is the time to upsert."""
        while True:
            await workflow.wait_condition(self._due)
            if await self._task_done():
                self.upsert()

    def _due(self) -> bool:
        return bool(self._unshown) and not self._steps.local_running()

    async def _task_done(self) -> bool:
        """Conditions are looked at whenever the coroutines wait, also in the middle of a task
        (a wait that is over at once, as entering a stage with no hold open): the task is done
        once a whole pass changes nothing. A pass is judged from the one after it: what woke
        with this coroutine (the recorder, about to write) runs after it."""
        seen = None
        while (now := self._progress()) != seen:
            seen = now
            await workflow.wait_condition(lambda: True)
            await workflow.wait_condition(lambda: True)
        return self._due()

    def upsert(self) -> None:
        """What is gathered, now (also as the order ends, with its last task)."""
        known = workflow.info().typed_search_attributes
        changed = [u for u in self._unshown.values() if known.get(u.key) != u.value]
        self._unshown.clear()
        if changed:
            workflow.upsert_search_attributes(changed)
