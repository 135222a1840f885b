"""docs/benchmarks.md: each benchmark owns a section with a table, and a run adds one row to it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from activities.db import REPO_ROOT

DOC = REPO_ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    """What the figures were measured on, for the table's last column."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def add_row(heading: str, section: str, row: str, doc: Path = DOC) -> None:
    """Append `row` to the table of the section titled `heading`, creating the section from
    `section` (its text down to the table's header lines) when the file lacks it. Rows go at the
    end of that section's table, whatever sections follow it."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    title = f"## {heading}"
    if title not in lines:
        body = section.strip("\n").splitlines()
        lines += ["", title, "", *body]
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    last_row = max((i for i in range(start, end) if lines[i].startswith("|")), default=end - 1)
    lines.insert(last_row + 1, row.rstrip("\n"))
    doc.parent.mkdir(exist_ok=True)
    doc.write_text("\n".join(lines) + "\n", encoding="utf-8")
