"""Every `workflow.patched()` id in the workflows is in docs/patches.md with its dates, so its
retirement is on the schedule."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def patch_ids() -> set[str]:
    """The string constants the workflows pass to `workflow.patched` or `Patches.patched`."""
    names = set()
    for path in (ROOT / "workflows").rglob("*.py"):
        names |= set(re.findall(r"\bpatched\(([A-Z][A-Z_]+)\)", path.read_text(encoding="utf-8")))
    ids = set()
    for path in (ROOT / "workflows").rglob("*.py"):
        for name, value in re.findall(r'^(\w+)(?:: Final)? = "([a-z-]+)"', path.read_text(), re.M):
            if name in names:
                ids.add(value)
    assert len(ids) == len(names), (names, ids)
    return ids


def test_every_patch_is_on_the_schedule() -> None:
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(
            r"^\| `([a-z-]+)` \|.*$", (ROOT / "docs" / "patches.md").read_text(), re.M
        )
    }
    ids = patch_ids()
    assert len(ids) >= 9
    assert ids <= set(rows), ids - set(rows)
    for patch in ids:
        assert re.search(r"\| \d{4}-\d{2}-\d{2} \|.*\| \d{4}-\d{2}-\d{2} \|$", rows[patch]), patch
