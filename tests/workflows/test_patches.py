"""Every patch in docs/patches.md is replayed on both of its sides: some recorded history runs
its old branch (`patched()` answers False: the history was made before the patch) and another
its new one. A branch no history reaches could change unseen; record one with
`python -m tests.record_histories --unpatched <id> <scenario>`, or with `tests/recording.py`
for a race that only a test stages."""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from pathlib import Path

from temporalio import workflow
from temporalio.client import WorkflowHistory

from tests.workflows.test_replay import HISTORIES, replayer

PATCHES_DOC = Path(__file__).parents[2] / "docs" / "patches.md"


def documented_patches() -> list[str]:
    return re.findall(r"^\| `([a-z-]+)` \|", PATCHES_DOC.read_text(encoding="utf-8"), re.M)


def patches_in_code() -> set[str]:
    """Every id the workflow code passes to `workflow.patched()`, `Patches.patched()` or
    `deprecate_patch()`."""
    found: set[str] = set()
    root = Path(__file__).parents[2]
    for path in sorted((root / "workflows").rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("patched", "deprecate_patch")
            ):
                [arg] = node.args
                if isinstance(arg, ast.Constant):
                    found.add(str(arg.value))
                elif isinstance(arg, ast.Name) and isinstance(
                    value := getattr(module, arg.id, None), str
                ):
                    found.add(value)  # not `Patches.patched`'s own parameter, which it passes on
    return found


async def answers_in_histories() -> dict[str, dict[bool, set[str]]]:
    """Per patch id, the histories whose replay it answered False in, and True in."""
    answers: dict[str, dict[bool, set[str]]] = defaultdict(lambda: {False: set(), True: set()})
    real = workflow.patched
    replaying = ""

    def watched(patch_id: str) -> bool:
        answer = real(patch_id)
        answers[patch_id][answer].add(replaying)
        return answer

    workflow.patched = watched  # the sandbox passes temporalio.workflow through
    try:
        for replaying, text in HISTORIES.items():
            history = WorkflowHistory.from_json(replaying, text)
            await replayer(as_in_production=True).replay_workflow(history)
    finally:
        workflow.patched = real
    return answers


async def test_every_patch_is_replayed_on_both_sides() -> None:
    documented = documented_patches()
    answers = await answers_in_histories()

    assert len(documented) >= 11, "the table in docs/patches.md was not read"
    assert patches_in_code() == set(documented), "docs/patches.md and the code's ids differ"
    assert set(answers) <= set(documented)
    unreplayed = {
        f"{patch_id} ({side})"
        for patch_id in documented
        for side, answer in (("old", False), ("new", True))
        if not answers[patch_id][answer]
    }
    assert not unreplayed, f"no recorded history replays these sides: {sorted(unreplayed)}"
