"""R4.3.3 improvement measures: the figure a finding names, and its value in a period's
statistics, so that a report can show each measure with its figure before and after.

Pure. A figure is `on_time:<clause>`, `rating`, `complaint_rate`, `anomaly_rate`,
`cancellation_rate`, `breach_rate` or `p90:<stage>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analytics.formats import ratio
from analytics.vocabulary import CLAUSES, STAGES

FROM_FINDING: Mapping[str, str] = {
    "clause_below_target": "on_time:{subject}",
    "clause_past_hard_limit": "on_time:{subject}",
    "rating_below_target": "rating",
    "complaint_rate_above_target": "complaint_rate",
    "anomaly_rate_above_target": "anomaly_rate",
    "cancellation_rate_above_target": "cancellation_rate",
    "stage_slower": "p90:{subject}",
}
"""The figure each kind of finding is about."""


class UnknownFigure(ValueError):
    """A finding no figure measures; the message lists those that are."""


def figure_of(finding_kind: str, subject: str) -> str:
    template = FROM_FINDING.get(finding_kind)
    if template is None:
        raise UnknownFigure(
            f"no figure measures a {finding_kind!r} finding; measures follow "
            f"{', '.join(sorted(FROM_FINDING))}"
        )
    figure = template.format(subject=subject)
    name, _, part = figure.partition(":")
    if (name == "on_time" and part not in CLAUSES) or (name == "p90" and part not in STAGES):
        raise UnknownFigure(f"{subject!r} is not a {'clause' if name == 'on_time' else 'stage'}")
    return figure


def value_of(figure: str, stats: Mapping[str, Any]) -> float | None:
    """The figure in a period's statistics (`orderctl stats --json`); None: nothing to measure."""
    name, _, part = figure.partition(":")
    orders = stats["orders"]["count"]
    if name == "on_time":
        return (stats["deadlines"].get(part) or {}).get("on_time_rate")
    if name == "p90":
        return (stats["stage_seconds"].get(part) or {}).get("p90")
    if name == "rating":
        return stats["satisfaction"]["rating_average"]  # type: ignore[no-any-return]
    if name == "complaint_rate":
        return stats["satisfaction"]["complaint_rate"]  # type: ignore[no-any-return]
    if name == "breach_rate":
        return stats["breach_rate"]  # type: ignore[no-any-return]
    if name == "anomaly_rate":
        return ratio(stats["orders"]["with_anomaly"], orders)
    if name == "cancellation_rate":
        ended = stats["orders"]["by_outcome"]
        return ratio(ended.get("cancelled", 0) + ended.get("rejected", 0), orders)
    raise UnknownFigure(f"no figure {figure!r}")
