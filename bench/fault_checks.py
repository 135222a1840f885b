"""What must hold after the fault run: every order once, the database in agreement, stock and
capacity balanced, and every history replaying with the current code."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Replayer

from localstack.demo import Check
from schemas.contract import order_workflow_id
from workers.registry import WORKFLOWS

ORDERS_QUERY = 'WorkflowType="OrderWorkflow"'


async def stock_snapshot(pool: asyncpg.Pool) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await pool.fetch("SELECT store_code, sku, on_hand, reserved FROM stock")
    return {(r["store_code"], r["sku"]): (r["on_hand"], r["reserved"]) for r in rows}


async def check_stock(
    pool: asyncpg.Pool, before: dict[tuple[str, str], tuple[int, int]]
) -> list[Check]:
    """R3.1.2 stock now = stock before + what the ledger says happened, and none oversold."""
    after = await stock_snapshot(pool)
    moved = await pool.fetch(
        """
        SELECT store_code, sku,
               coalesce(sum(quantity) FILTER (WHERE kind = 'reserve'), 0) AS reserved,
               coalesce(sum(quantity) FILTER (WHERE kind = 'release'), 0) AS released,
               coalesce(sum(quantity) FILTER (WHERE kind = 'commit'), 0) AS committed
        FROM stock_ledger GROUP BY store_code, sku
        """
    )
    unbalanced: list[str] = []
    oversold: list[str] = []
    committed_total = 0
    for r in moved:
        key = (r["store_code"], r["sku"])
        on_hand0, reserved0 = before.get(key, (0, 0))
        on_hand, reserved = after.get(key, (0, 0))
        committed_total += r["committed"]
        expected = (
            on_hand0 - r["committed"],
            reserved0 + r["reserved"] - r["released"] - r["committed"],
        )
        if (on_hand, reserved) != expected:
            unbalanced.append(f"{key}: stock {(on_hand, reserved)}, ledger says {expected}")
        if r["committed"] > on_hand0 or on_hand < 0 or reserved > on_hand:
            oversold.append(f"{key}: {r['committed']} sold of {on_hand0}")
    untouched = [
        k
        for k in after
        if k not in {(r["store_code"], r["sku"]) for r in moved} and after[k] != before.get(k)
    ]
    return [
        Check(
            "stock ledger balances (R3.1.2)",
            not unbalanced and not untouched,
            f"{len(moved)} SKUs moved, {committed_total} units sold"
            + (f"; off: {unbalanced[:3]}" if unbalanced else "")
            + (f"; changed without ledger rows: {untouched[:3]}" if untouched else ""),
        ),
        Check(
            "no SKU oversold (R3.1.2)",
            not oversold,
            "every sale within the stock on hand" if not oversold else f"{oversold[:3]}",
        ),
    ]


async def check_capacity(pool: asyncpg.Pool, still_open: set[str]) -> Check:
    """R2.3.2, R3.2.1 nobody's capacity and no slot is claimed but by an order still open."""
    load = await pool.fetchval("SELECT coalesce(sum(active_load), 0) FROM staff")
    assigned = {
        r["order_id"] for r in await pool.fetch("SELECT order_id FROM assignments WHERE active")
    }
    booked = {
        r["order_id"]
        for r in await pool.fetch("SELECT order_id FROM service_bookings WHERE active")
    }
    leaked = (assigned | booked) - still_open
    return Check(
        "no capacity leaked (R2.3.2, R3.2.1)",
        not leaked and load == len(assigned),
        f"staff load {load}, active assignments {len(assigned)}, booked slots {len(booked)}"
        + (
            f" (held by orders still open: {sorted(assigned | booked)[:3]})"
            if assigned | booked
            else ""
        )
        + (f"; claimed by ended orders: {sorted(leaked)[:3]}" if leaked else ""),
    )


async def check_replay(
    client: Client, replaced: Collection[str] = ()
) -> tuple[Check, dict[str, str]]:
    """Every history the day wrote replays with the current code, as a worker that starts
    afresh replays it. One that does not is an order stuck for good: its every workflow task
    fails with a nondeterminism error. Returns the failing ids with the replay's error. The
    runs `replaced` by the doctor's resets are left out: their new runs are replayed."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter)
    replayed = 0
    failed: dict[str, str] = {}
    async for execution in client.list_workflows():
        if execution.run_id in replaced:
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        result = await replayer.replay_workflow(
            await handle.fetch_history(), raise_on_replay_failure=False
        )
        replayed += 1
        if result.replay_failure is not None:
            failed[execution.id] = str(result.replay_failure)[:500]
    first = next(iter(sorted(failed.items())), None)
    return (
        Check(
            "every history replays with the current code",
            not failed,
            f"{replayed - len(failed)} of {replayed} workflows"
            + (f"; not: {sorted(failed)[:5]}; first: {first[1]}" if first else ""),
        ),
        dict(sorted(failed.items())),
    )


WORKFLOW_IDS = re.compile(r"\b(?:order|anomaly)-\d+(?:-\d+)?\b")


async def keep_evidence(client: Client, checks: list[dict[str, Any]], folder: Path) -> list[str]:
    """The histories of every workflow a failed check names, kept to replay and read: a fault
    that shows once in many runs is understood from its history or not at all."""
    named = sorted(
        {wid for c in checks if not c["ok"] for wid in WORKFLOW_IDS.findall(str(c["detail"]))}
    )
    if not named:
        return []
    histories = {
        workflow_id: (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()
        for workflow_id in named
    }
    await asyncio.to_thread(_write_histories, folder, histories)
    return named


def _write_histories(folder: Path, histories: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for workflow_id, text in histories.items():
        (folder / f"{workflow_id}.json").write_text(text, encoding="utf-8")


async def replaced_runs(client: Client) -> set[str]:
    """Runs a reset replaced: terminated, with a later run of the same workflow. Nothing else
    terminates an order's workflow in the run."""
    runs: dict[str, list[tuple[Any, str, bool]]] = {}
    async for wf in client.list_workflows():
        terminated = wf.status is WorkflowExecutionStatus.TERMINATED
        runs.setdefault(wf.id, []).append((wf.start_time, wf.run_id, terminated))
    replaced: set[str] = set()
    for of_one in runs.values():
        *earlier, _latest = sorted(of_one, key=lambda r: r[0])
        replaced |= {run for _, run, terminated in earlier if terminated}
    return replaced


async def check_one_each(
    client: Client,
    pool: asyncpg.Pool,
    placed: set[str],
    replaced: Collection[str] = (),
) -> list[Check]:
    """Duplicated pushes, the patrol and the retries of a restarted gateway all start the same
    order: its workflow id makes it one workflow, its order id one row. A run the doctor
    replaced by a reset (`replaced`) is not a second workflow."""
    runs: Counter[str] = Counter()
    async for wf in client.list_workflows(ORDERS_QUERY):
        if wf.run_id not in replaced:
            runs[wf.id] += 1
    twice = [w for w, n in runs.items() if n > 1]
    missing = placed - set(runs)
    extra = set(runs) - placed
    rows = await pool.fetch("SELECT order_id, count(*) AS n FROM orders GROUP BY order_id")
    recorded = {order_workflow_id(r["order_id"]): r["n"] for r in rows}
    summaries = await pool.fetchval("SELECT count(DISTINCT order_id) FROM order_summaries")
    summary_rows = await pool.fetchval("SELECT count(*) FROM order_summaries")
    return [
        Check(
            "one workflow per order",
            not twice and not missing and not extra,
            f"{len(runs)} workflows for {len(placed)} orders"
            + (f"; more than one run: {twice[:3]}" if twice else "")
            + (f"; no workflow: {sorted(missing)[:3]}" if missing else "")
            + (f"; not an order of the day: {sorted(extra)[:3]}" if extra else ""),
        ),
        Check(
            "one record per order",
            set(recorded) <= placed
            and all(n == 1 for n in recorded.values())
            and summaries == summary_rows,
            f"{len(recorded)} order rows, {summary_rows} summaries for {summaries} orders",
        ),
    ]
