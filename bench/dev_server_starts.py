"""How often the local stack's Temporal dev server fails to start, several starting at once.

Each start takes free ports (`port=None`, as the tests do) and a fresh state folder; a start
that had to begin again on other ports is counted apart from one that failed. A failed start's
folder (its log) is kept under `--keep`.

    .venv/bin/python -m bench.dev_server_starts --starts 600 --at-once 4
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from localstack.devstack import StackError, temporal_dev_server


@dataclass
class Tally:
    started: int = 0
    started_again: int = 0
    failed: list[str] = field(default_factory=list)


async def _start_once(n: int, keep: Path, tally: Tally) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"dev-server-{n}-"))
    said: list[str] = []
    try:
        async with temporal_dev_server(
            folder / "temporal", fresh=True, port=None, headless=True, say=said.append
        ):
            tally.started += 1
        if any("taken meanwhile" in line for line in said):
            tally.started_again += 1
    except StackError as exc:
        shutil.copytree(folder, keep / f"start-{n}")
        tally.failed.append(f"{n}: {str(exc).splitlines()[0]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def run(starts: int, at_once: int, keep: Path) -> Tally:
    tally = Tally()
    for first in range(0, starts, at_once):
        batch = range(first, min(first + at_once, starts))
        await asyncio.gather(*(_start_once(n, keep, tally) for n in batch))
        print(f"{batch.stop} starts: {len(tally.failed)} failed", flush=True)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=120)
    parser.add_argument("--at-once", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=Path(".data/dev-server-starts"))
    args = parser.parse_args()
    args.keep.mkdir(parents=True, exist_ok=True)
    tally = asyncio.run(run(args.starts, args.at_once, args.keep))
    print(
        f"{args.starts} starts, {args.at_once} at once: {tally.started} started "
        f"({tally.started_again} on other ports after a taken one), {len(tally.failed)} failed"
    )
    for failure in tally.failed:
        print(f"  {failure} (log under {args.keep})")
    raise SystemExit(1 if tally.failed else 0)


if __name__ == "__main__":
    main()
