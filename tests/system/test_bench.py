"""The Temporal benchmarks at a tiny size, so that the scripts cannot rot unnoticed.

Each runs for real (its own dev server, PostgreSQL, workers) and its JSON is checked for the
fields docs/benchmarks.md is written from, with values that make sense; nothing is recorded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent, MarkerRecordedEventAttributes
from temporalio.client import WorkflowHistory

from bench import capacity_bench, gateway_bench, memory_bench


def run(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main([*argv, "--no-record"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_the_local_activities_of_one_workflow_task_are_billed_as_one_action() -> None:
    """As Temporal Cloud counts them: two in one task and one in another are two actions."""

    def marker(event_id: int, task: int) -> HistoryEvent:
        return HistoryEvent(
            event_id=event_id,
            event_type=EventType.EVENT_TYPE_MARKER_RECORDED,
            marker_recorded_event_attributes=MarkerRecordedEventAttributes(
                marker_name=capacity_bench.LOCAL_ACTIVITY_MARKER,
                workflow_task_completed_event_id=task,
            ),
        )

    history = WorkflowHistory("order", [marker(5, 4), marker(6, 4), marker(10, 9)])
    found = capacity_bench.counts(history)
    assert (found["local_activities"], found["local_activity_tasks"]) == (3, 2)


def test_gateway_against_a_bare_client(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--rate", "20", "--seconds", "1", "--rounds", "1", "--burst", "10"]
    result = run(gateway_bench.main, argv, capsys)
    for side in ("gateway", "bare_client"):
        assert result[side]["held"] == 20 and result[side]["failed"] == 0
        latency = result[side]["latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
        assert result["flat_out"][side]["held"] == 10
    assert result["p99_ms"] == result["gateway"]["latency_ms"]["p99"]
    assert 0.5 < result["ratio"]["per_s"] < 1.5  # both keep up with 20 a second


def test_worker_memory_with_open_orders(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(memory_bench.main, ["--orders", "4", "--settle", "0.5"], capsys)
    assert result["open_orders"] == 4
    rss = result["worker_rss_mb"]
    assert 30 < rss["idle"] <= rss["peak"] < 2000
    assert rss["all_open"] <= rss["peak"]


def test_capacity_of_the_stack_the_minimal_order_and_the_code_before(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--rates", "1,2", "--seconds", "3", "--variants", "current,minimal,before"]
    result = run(capacity_bench.main, argv, capsys)
    assert set(result["variants"]) == {"current", "minimal", "before"}
    for variant in result["variants"].values():
        assert [s["rate"] for s in variant["steps"]][:1] == [1.0]
        for row in variant["steps"]:
            assert 0 <= row["share"] <= 1
            assert row["pushed"] == round(row["rate"] * 3)
            if row["p50_s"] is not None:
                assert 0 < row["p50_s"] <= row["p95_s"]
        actions = variant["actions_per_order"]
        assert actions["starts"] >= 1 and actions["activities"] >= 5
        assert actions["billable"] >= actions["activities"] + actions["updates"]
    assert result["variants"]["minimal"]["actions_per_order"]["timers"] == 1
    rates = result["sustained_rate"]
    assert set(rates) == {"current", "minimal", "before"}
    for name, (part, whole) in {
        "current_over_before": ("current", "before"),
        "current_over_minimal": ("current", "minimal"),
    }.items():
        expected = round(rates[part] / rates[whole], 3) if rates[whole] else None
        assert result["ratios"][name] == expected
