"""bench/cpu_share.py reads what each part of the stack uses from /proc."""

from __future__ import annotations

import subprocess
import sys

from bench.cpu_share import part_of, shares


def test_a_busy_process_shows_as_most_of_a_core() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import sys\nwhile True: pass", "bench.busy"])
    try:
        used = shares(1.5)
    finally:
        busy.kill()
        busy.wait()
    assert used["benchmark driver"] >= 0.5, used


def test_the_parts_are_told_apart_by_their_command_line() -> None:
    assert part_of("/x/temporal server start-dev --port 7233") == "Temporal dev server"
    assert part_of("/x/python -m workers.main") == "workers"
    assert part_of("postgres: orderflow orderflow 127.0.0.1 idle") == "PostgreSQL"
    assert part_of("/bin/bash") == "other"
