"""The gateway's counts in Prometheus' text format: every metric announced, even at zero, and a
label value that could end the line or the quote escaped."""

from __future__ import annotations

from starter.gateway_metrics import ACCEPTED, METRICS, REFUSED, PushCounters


def test_the_exposition_announces_each_metric_and_counts_by_label() -> None:
    counts = PushCounters()
    assert counts.exposition().count("# TYPE ") == len(METRICS)  # scraped before any push
    counts.accepted("order", "started")
    counts.accepted("order", "started")
    counts.refused("cancel", 703)
    counts.accepted('odd"kind\n', "known\\")
    lines = counts.exposition().splitlines()
    assert f'{ACCEPTED}{{kind="order",held="started"}} 2' in lines
    assert f'{REFUSED}{{kind="cancel",code="703"}} 1' in lines
    assert f'{ACCEPTED}{{kind="odd\\"kind\\n",held="known\\\\"}} 1' in lines
    assert f"# TYPE {ACCEPTED} counter" in lines
