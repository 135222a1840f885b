"""What the Temporal benchmarks share: a throwaway stack, a company big enough, percentiles,
process memory, and their lines in docs/benchmarks.md.

Every benchmark runs on its own dev server and its own embedded PostgreSQL in temporary
folders, so it neither meets nor disturbs a stack someone else is running on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final, TypeVar

import asyncpg

from infra import database as db
from infra.settings import settings
from localstack.devstack import Database, TemporalServer, database, temporal_dev_server

DOC = db.REPO_ROOT / "docs" / "benchmarks.md"
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, with SIGTERM (a `timeout`, a cancelled CI job) stopping it as Ctrl-C
    does: the tasks are cancelled, so the servers and workers the run started are stopped."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        return asyncio.run(main)
    finally:
        signal.signal(signal.SIGTERM, previous)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): a value that was measured, never interpolated."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else math.nan


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_mb: float


def memory_of(pid: int) -> Memory:
    """Resident set size and its high-water mark from /proc (Linux), in MB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return Memory(round(fields["VmRSS"], 1), round(fields["VmHWM"], 1))


LOCAL_STACK: Final = {"ORDERFLOW_DEV": "1"}


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Variables set for this process for the run (the in-process worker reads the policy
    from them), then put back; the settings are read again each time."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    settings.cache_clear()
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        settings.cache_clear()


async def scale_company(pool: asyncpg.Pool, factor: int) -> None:
    """Every person takes `factor` times the orders and every shelf holds `factor` times the
    stock: the demo company sized for hundreds of orders at once, so what is measured is the
    system and not the company running out of hands or goods."""
    await pool.execute("UPDATE staff SET capacity = capacity * $1", factor)
    await pool.execute("UPDATE stock SET on_hand = on_hand * $1", factor)


@dataclass(frozen=True)
class Base:
    temporal: TemporalServer
    db: Database
    folder: Path


@contextlib.asynccontextmanager
async def base_stack(prefix: str, *, demo_data: bool = True) -> AsyncIterator[Base]:
    """A fresh headless dev server and a fresh database with the demo company, both in a
    temporary folder that is removed afterwards."""
    # The local stack (infra.fail_closed): the processes a bench starts run on the simulator's
    # secret and may keep payloads in plaintext.
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as folder, environment(LOCAL_STACK):
        root = Path(folder)
        async with (
            temporal_dev_server(root / "temporal", fresh=True, port=None, headless=True) as t,
            database(
                f"{prefix.replace('-', '_')}", fresh=True, demo_data=demo_data, pgdata=root / "pg"
            ) as d,
        ):
            yield Base(t, d, root)


async def spawn(
    args: Sequence[str], env: Mapping[str, str], log: Path
) -> asyncio.subprocess.Process:
    """`python -m ...` of this virtualenv, its output in `log`."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


def tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else ""


async def stop_process(process: asyncio.subprocess.Process, within_s: float = 15.0) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), within_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def record(heading: str, header: str, line: str) -> None:
    """One table line per run in docs/benchmarks.md, under `heading` (written once)."""
    DOC.parent.mkdir(exist_ok=True)
    existing = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if heading not in existing:
        existing = existing.rstrip("\n") + "\n\n" + header
    if not existing.endswith("\n"):
        existing += "\n"
    # The line goes right after the last line of this section's table.
    lines = existing.splitlines(keepends=True)
    start = next(i for i, text in enumerate(lines) if text.startswith(heading))
    end = start + 1
    last_row = None
    while end < len(lines) and not lines[end].startswith("## "):
        if lines[end].startswith("|"):
            last_row = end
        end += 1
    at = (last_row + 1) if last_row is not None else end
    lines.insert(at, line if line.endswith("\n") else line + "\n")
    DOC.write_text("".join(lines), encoding="utf-8")


def today() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d}"


def table_head(columns: Sequence[str]) -> str:
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|\n"
