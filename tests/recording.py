"""Keeping histories for the replay set, including the side of a patch that code before it ran.

A history recorded before a `workflow.patched()` change replays its old branch. A branch that
only a race or a rare push reaches may have no such history from the day the patch came in;
`unpatched()` records one now: the ids named answer False, as the code before the patch did,
and no marker is written, so the run takes the old branch (the code a patch keeps in its
`else` is the code from before it). `tests/workflows/test_patches.py` holds every patch to a
history on each side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from temporalio import workflow
from temporalio.client import WorkflowHandle

from workflows.order.patches import taken_with

HISTORIES = Path(__file__).parent / "histories"
# Set to keep the histories of the tests that call `keep()`: races a scenario cannot stage.
KEEP = "ORDERFLOW_KEEP_HISTORIES"
# Comma-separated patch ids that answer False while recording (`unpatched`).
UNPATCHED = "ORDERFLOW_UNPATCHED"


def free_path(stem: str) -> Path:
    """`<stem>.json`, or the next `<stem>-N.json`: a recording never replaces an older one."""
    path, version = HISTORIES / f"{stem}.json", 1
    while path.exists():
        version += 1
        path = HISTORIES / f"{stem}-{version}.json"
    return path


@contextmanager
def unpatched(*ids: str) -> Iterator[None]:
    """Workflows run here as they did before the patches named (workflows take `patched` from
    the `temporalio.workflow` module, which the sandbox passes through), and so without the
    later patch that takes them with it (`workflows.order.patches.Patches`)."""
    if not ids:
        yield
        return
    ids = (*ids, *taken_with(ids))
    real: Callable[[str], bool] = workflow.patched

    def before_the_patch(patch_id: str) -> bool:
        return False if patch_id in ids else real(patch_id)

    workflow.patched = before_the_patch
    try:
        yield
    finally:
        workflow.patched = real


def unpatched_from_environment() -> tuple[str, ...]:
    return tuple(i.strip() for i in os.environ.get(UNPATCHED, "").split(",") if i.strip())


def before_suffix(ids: tuple[str, ...]) -> str:
    return "".join(f"-before-{patch_id}" for patch_id in ids)


async def keep(handle: WorkflowHandle[object, object], stem: str) -> None:
    """The workflow's history into the replay set, when ORDERFLOW_KEEP_HISTORIES is set; named
    for the patches it ran without, if any."""
    if not os.environ.get(KEEP):
        return
    history = await handle.fetch_history()
    path = free_path(stem + before_suffix(unpatched_from_environment()))
    path.write_text(history.to_json(), encoding="utf-8")
    print(f"recorded {path} ({len(history.events)} events)")
