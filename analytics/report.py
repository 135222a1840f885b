"""The statistics of a period as one HTML file a manager can open anywhere (R4.3, R7.2).

    orderctl report --out FILE.html [--from DATE] [--to DATE]

Everything is inline: the charts are SVG drawn by matplotlib's Agg backend (analytics.charts),
the style is one <style> block, and nothing is loaded from the network, so the file reads the
same offline, in a mail attachment or years later. The findings come first and in words
(R4.3.2); the charts and tables follow: orders per hour, orders and price anomalies per day
(R5.3.2), stage times, deadline compliance, satisfaction, and the staff and department
scorecards (R7.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from analytics.charts import (
    chart_compliance,
    chart_daily,
    chart_orders_per_hour,
    chart_ratings,
    chart_scorecards,
    chart_stages,
)
from analytics.collect import collect
from analytics.formats import pct
from analytics.period import Period

STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", "Noto Sans", "PingFang SC",
       "Microsoft YaHei", sans-serif; color: #1f2328; margin: 0; background: #f6f8fa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.sub { color: #57606a; margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px;
        min-width: 150px; }
.card b { display: block; font-size: 22px; }
.card span { color: #57606a; font-size: 12px; }
.findings li { margin: 4px 0; }
.findings .warning::marker { color: #c62828; }
.quiet { color: #2e7d32; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
figure { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; margin: 0;
         padding: 8px; }
figure svg { width: 100%; height: auto; }
figcaption { color: #57606a; font-size: 12px; padding: 0 6px; }
table { border-collapse: collapse; background: #fff; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
th { background: #eaeef2; }
footer { color: #57606a; font-size: 12px; margin-top: 28px; }
"""


@dataclass(frozen=True)
class Written:
    path: Path
    period: Period


async def write(out: str | Path, period: Period) -> Written:
    """Collect the period's statistics (per store) and write the report."""
    stats = await collect(period, "store")
    path = await asyncio.to_thread(_save, Path(out), render(stats))
    return Written(path, period)


def _save(path: Path, page: str) -> Path:
    path = path.expanduser()
    path.write_text(page, encoding="utf-8")
    return path.absolute()


def render(
    stats: Mapping[str, Any], now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> str:
    """The whole page; pure apart from the clock in its footer."""
    period, previous = stats["period"], stats["previous_period"]
    span = period["from"] if period["days"] == 1 else f"{period['from']} – {period['to']}"
    groups = stats.get("groups") or {"by": "store", "rows": []}
    patrol = stats["patrol"]
    source = stats["source"]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>orderflow statistics {escape(span)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>Order statistics {escape(span)}</h1>
<p class="sub">Business days in {escape(stats["zone"])}, compared with {escape(previous["from"])}
 – {escape(previous["to"])} (R4.3). Patrol: {patrol["runs"]} runs,
 {patrol["orders_found"]} orders found that the pushes missed (R6.3.2). Pushes refused:
 {stats["refused_pushes"]["refused"]}, the period before {stats["refused_pushes"]["previous"]}
 (R6.3).</p>
{_cards(stats)}
{_section("Findings (R4.3.2)", _findings(stats), _causes(stats), _comparison(stats))}
{_section("Measures (R4.3.3)", _measures(stats))}
<section><h2>Charts</h2><div class="charts">{"".join(_charts(stats))}</div></section>
{_section("Amounts", _money(stats))}
{_section("Processing time per stage", _stages(stats))}
{_section("Deadline compliance", _deadlines(stats))}
{_section("Anomalies by kind and decision (R5.2.4)", _anomalies(stats))}
{_section("Cancellations and rejections by reason", _cancels(stats))}
{_section("Feedback (R4.2)", _feedback(stats))}
{_section(f"By {groups['by']}", _by_group(groups))}
{_section("Staff scorecards (R7.2)", _people(stats))}
{_section("Department scorecards (R7.2)", _units(stats))}
<footer>Made {now():%Y-%m-%d %H:%M} UTC by orderctl report. {source["orders_computed_live"]}
 orders read live (running or just finished), the rest from the daily rollup. A person's
 figures are the orders they held (the event log's assignments); durations are read from
 log-scale histograms, within 2.5% (of 1 + seconds).</footer>
</main>
</body>
</html>
"""


# --- building blocks ------------------------------------------------------------------------------


def _num(value: Any) -> str:
    return "—" if value is None else escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], text_columns: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{_num(v)}</td>' if i < text_columns else f"<td>{_num(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure_html(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def _cards(stats: Mapping[str, Any]) -> str:
    orders, amount, sat = stats["orders"], stats["amount"], stats["satisfaction"]
    items = [
        (str(orders["count"]), "orders"),
        (amount["net"], "net amount (after full refunds)"),
        (str(sat["rating_average"] or "—"), f"average rating of {sat['rated']}"),
        (pct(sat["complaint_rate"]), "orders with a complaint"),
        (pct(stats["breach_rate"]), "orders with a deadline missed"),
        (str(orders["with_anomaly"]), "anomalous orders"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in items
        )
        + "</div>"
    )


# --- the sections ---------------------------------------------------------------------------------


def _findings(stats: Mapping[str, Any]) -> str:
    """R4.3.2 in words, first: what a manager reads when reading nothing else."""
    findings = stats["findings"]
    if not findings:
        return "<p class='quiet'>Nothing stands out in this period.</p>"
    return (
        "<ul class='findings'>"
        + "".join(
            f"<li class='{escape(f['severity'])}'>{escape(f['message'])}</li>" for f in findings
        )
        + "</ul>"
    )


def _comparison(stats: Mapping[str, Any]) -> str:
    return (
        "<ul>" + "".join(f"<li>{escape(c['text'])}</li>" for c in stats["comparison"]) + ("</ul>")
    )


def _measures(stats: Mapping[str, Any]) -> str:
    """Each measure taken on a finding, with the figure it aims at before it and now."""
    measures = stats.get("measures") or []
    if not measures:
        return "<p class='quiet'>No measure is open or ended in this period.</p>"
    rows = [
        [
            f"#{m['measure_id']} {m['what']}",
            m["finding"],
            m["owner"],
            m["due"],
            m["state"],
            m["figure"],
            f"{_figure(m['before'])} ({m['before_period']})",
            _figure(m["after"]),
        ]
        for m in measures
    ]
    return _table(
        ["measure", "finding", "owner", "due", "state", "figure", "before", "now"],
        rows,
        text_columns=6,
    )


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _causes(stats: Mapping[str, Any]) -> str:
    """R3.3.3 what went wrong in the orders, the most frequent first."""
    causes = stats.get("improvement_causes") or []
    if not causes:
        return "<p class='quiet'>No order of this period had anything to improve on record.</p>"
    rows = [[c["cause"], c["n"], c["previous"]] for c in causes]
    return "<h3>Most frequent causes</h3>" + _table(
        ["cause", "orders", "orders the period before"], rows, text_columns=1
    )


def _charts(stats: Mapping[str, Any]) -> list[str]:
    """The charts with something to show; a chart with nothing to show is a sentence saying
    so, never bare axes."""
    orders = sum(stats["orders_per_hour"])
    ratings = stats["satisfaction"]["distribution"]
    return [
        _chart_or_say(
            orders > 0,
            lambda: chart_orders_per_hour(stats["orders_per_hour"]),
            "Orders per hour of the day",
            "No orders in this period: nothing to show by hour or by day.",
        ),
        _chart_or_say(
            orders > 0,
            lambda: chart_daily(stats["daily"]),
            "Orders per day and price anomalies per 1,000 orders (R5.3.2 price monitoring)",
            "",
        ),
        _chart_or_say(
            bool(stats["stage_seconds"]),
            lambda: chart_stages(stats["stage_seconds"]),
            "Time per stage: half the orders within p50, nine in ten within p90",
            "No stage was timed in this period.",
        ),
        _chart_or_say(
            bool(stats["deadlines"]),
            lambda: chart_compliance(stats["deadlines"]),
            "Deadline compliance per clause",
            "No deadline fell in this period.",
        ),
        _chart_or_say(
            sum(ratings.values()) > 0,
            lambda: chart_ratings(ratings),
            f"Ratings; complaints on {pct(stats['satisfaction']['complaint_rate'])} of orders",
            "No ratings in this period.",
        ),
        _chart_or_say(
            bool(stats["staff"]),
            lambda: chart_scorecards(stats["staff"]),
            "Staff: deadlines met on time (R7.2)",
            "No one's work fell in this period.",
        ),
    ]


def _chart_or_say(has_data: bool, draw: Callable[[], str], caption: str, nothing: str) -> str:
    if has_data:
        return _figure_html(draw(), caption)
    return f"<p class='quiet'>{escape(nothing)}</p>" if nothing else ""


def _money(stats: Mapping[str, Any]) -> str:
    amount = stats["amount"]
    return _table(
        ["gross", "discounts", "paid", "refunded (cancelled, rejected)", "net"],
        [[amount["gross"], amount["discounts"], amount["paid"], amount["refunded"], amount["net"]]],
        text_columns=0,
    )


def _stages(stats: Mapping[str, Any]) -> str:
    return _table(
        ["stage", "orders", "p50 (s)", "p90 (s)", "mean (s)"],
        [[s, h["n"], h["p50"], h["p90"], h["mean"]] for s, h in stats["stage_seconds"].items()],
    )


def _deadlines(stats: Mapping[str, Any]) -> str:
    return _table(
        ["clause", "met", "late", "past hard limit", "on time"],
        [
            [c, d["met"], d["breached"], d["hard"], pct(d["on_time_rate"])]
            for c, d in stats["deadlines"].items()
        ],
    )


def _anomalies(stats: Mapping[str, Any]) -> str:
    return _table(
        ["kind", "decisions"],
        [
            [kind, ", ".join(f"{d} {n}" for d, n in decisions.items())]
            for kind, decisions in stats["anomalies"].items()
        ],
        text_columns=2,
    )


def _cancels(stats: Mapping[str, Any]) -> str:
    return _table(
        ["outcome", "code", "reason", "by", "orders"],
        [[c["outcome"], c["code"], c["reason"], c["by"], c["n"]] for c in stats["cancellations"]],
        text_columns=4,
    )


def _feedback(stats: Mapping[str, Any]) -> str:
    fb = stats["feedback"]
    first = fb["first_response_seconds"]
    return _table(
        [
            "cases",
            "first response p50 (s)",
            "p90 (s)",
            "average rounds",
            "more than one round",
            "satisfied",
            "escalated",
        ],
        [
            [
                fb["cases"],
                first["p50"],
                first["p90"],
                fb["average_rounds"],
                fb["more_than_one_round"],
                fb["satisfied"],
                fb["escalated"],
            ]
        ],
        text_columns=0,
    )


def _by_group(groups: Mapping[str, Any]) -> str:
    return _table(
        [
            groups["by"],
            "orders",
            "period before",
            "net",
            "rating",
            "complaints",
            "deadline missed",
            "on time",
        ],
        [
            [
                r["key"],
                r["orders"],
                r["previous_orders"],
                r["net"],
                r["rating_average"],
                pct(r["complaint_rate"]),
                pct(r["breach_rate"]),
                pct(r["on_time_rate"]),
            ]
            for r in groups["rows"]
        ],
    )


_CARD_COLUMNS = (
    "orders",
    "on time",
    "late",
    "handling (s)",
    "rating",
    "complaints",
    "anomalies decided",
)


def _card_cells(card: Mapping[str, Any]) -> list[Any]:
    """R7.2 the figures a person's and a department's scorecard share."""
    return [
        card["orders"],
        pct(card["on_time_rate"]),
        card["late"],
        card["average_handling_seconds"],
        card["average_rating"],
        card["complaints"],
        card["anomalies_decided"],
    ]


def _people(stats: Mapping[str, Any]) -> str:
    return _table(
        ["person", "department", "role", *_CARD_COLUMNS],
        [[c["staff_id"], c["department"], c["role"], *_card_cells(c)] for c in stats["staff"]],
        text_columns=3,
    )


def _units(stats: Mapping[str, Any]) -> str:
    return _table(
        ["department", "name", "people", *_CARD_COLUMNS],
        [[d["department"], d["name"], d["people"], *_card_cells(d)] for d in stats["departments"]],
        text_columns=2,
    )
