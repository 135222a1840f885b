"""The cores each part of a running stack uses over a window, read from /proc (Linux).

    .venv/bin/python -m bench.cpu_share --seconds 40      # while a benchmark runs

Says which side saturates: the Temporal dev server, the worker processes, PostgreSQL, the
gateway, the benchmark's own driver. Processes are grouped by their command line; one that
starts or ends in the window counts from its first or up to its last sample.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

PARTS = {
    "temporal server start-dev": "Temporal dev server",
    "workers.main": "workers",
    "postgres": "PostgreSQL",
    "starter.gateway": "gateway",
    "starter.api": "staff API",
    "bench.": "benchmark driver",
}
"""A part of the stack by what its command line holds, first match wins."""


def part_of(command: str) -> str:
    return next((name for key, name in PARTS.items() if key in command), "other")


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """Each process's command line and the CPU it has used, user and system."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        found[int(entry.name)] = (command, (int(fields[11]) + int(fields[12])) / ticks)
    return found


def shares(seconds: float) -> dict[str, float]:
    """The cores each part used, on average, over the next `seconds`, the busiest first."""
    first = cpu_seconds()
    time.sleep(seconds)
    used: defaultdict[str, float] = defaultdict(float)
    for pid, (command, cpu) in cpu_seconds().items():
        used[part_of(command)] += cpu - first.get(pid, (command, 0.0))[1]
    busiest = sorted(used.items(), key=lambda item: -item[1])
    return {part: round(cpu / seconds, 2) for part, cpu in busiest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="the window, s (30)")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    for part, cores in shares(args.seconds).items():
        print(f"{cores:5.2f} cores  {part}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
