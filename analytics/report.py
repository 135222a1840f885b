"""The statistics of a period as one HTML file a manager can open anywhere (R4.3, R7.2).

    orderctl report --out FILE.html [--from DATE] [--to DATE]

Everything is inline: the charts are SVG drawn by matplotlib's Agg backend, the style is one
<style> block, and nothing is loaded from the network, so the file reads the same offline, in a
mail attachment or years later. The findings come first and in words (R4.3.2); the charts and
tables follow: orders per hour, orders and price anomalies per day (R5.3.2), stage times,
deadline compliance, satisfaction, and the staff and department scorecards (R7.2).
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics import stats as st

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Colours a person tells apart, also in grey print.
MET, LATE, HARD = "#2e7d32", "#f9a825", "#c62828"
BAR, BAR_2 = "#1565c0", "#90caf9"

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
    period: st.Period


async def write(out: str | Path, period: st.Period) -> Written:
    """Collect the period's statistics (per store) and write the report."""
    stats = await st.collect(period, "store")
    path = await asyncio.to_thread(_save, Path(out), render(stats))
    return Written(path, period)


def _save(path: Path, page: str) -> Path:
    path = path.expanduser()
    path.write_text(page, encoding="utf-8")
    return path.absolute()


# --- charts ---------------------------------------------------------------------------------------


@contextmanager
def _figure(name: str, width: float = 6.4, height: float = 3.2) -> Iterator[Figure]:
    """A figure on the Agg backend; ids salted per chart so that inline SVGs never clash."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context(
        {
            "svg.hashsalt": name,
            "svg.fonttype": "none",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield Figure(figsize=(width, height), layout="constrained")


_SVG_START = re.compile(r"<svg\b")


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    metadata = {"Creator": None, "Date": None, "Format": None, "Type": None}
    fig.savefig(buffer, format="svg", metadata=metadata)
    text = buffer.getvalue()
    match = _SVG_START.search(text)
    return text[match.start() :] if match else text


def chart_orders_per_hour(hours: Sequence[int]) -> str:
    with _figure("hours") as fig:
        ax = fig.subplots()
        ax.bar(range(24), hours, color=BAR)
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel("hour of the day (created, business time)")
        ax.set_ylabel("orders")
        return _svg(fig)


def chart_daily(daily: Sequence[Mapping[str, Any]]) -> str:
    """Orders per day, and price anomalies per 1,000 orders over time (R5.3.2)."""
    days = [d["day"][5:] for d in daily]
    orders = [d["orders"] for d in daily]
    per_mille = [1000 * d["price_anomalies"] / d["orders"] if d["orders"] else 0 for d in daily]
    with _figure("daily") as fig:
        ax = fig.subplots()
        ax.bar(range(len(days)), orders, color=BAR_2, label="orders")
        ax.set_ylabel("orders per day")
        step = max(1, len(days) // 12)
        ax.set_xticks(range(0, len(days), step), days[::step], rotation=45, ha="right")
        twin = ax.twinx()
        twin.plot(
            range(len(days)),
            per_mille,
            color=HARD,
            marker="o",
            markersize=3,
            label="price anomalies per 1,000 orders",
        )
        twin.set_ylabel("price anomalies ‰")
        twin.set_ylim(bottom=0)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
        return _svg(fig)


def chart_stages(stages: Mapping[str, Mapping[str, Any]]) -> str:
    names = [s for s, h in stages.items() if h["n"]]
    with _figure("stages", height=max(2.4, 0.35 * len(names) + 1)) as fig:
        ax = fig.subplots()
        y = range(len(names))
        p50 = [max(stages[s]["p50"] or 0, 0.01) for s in names]
        p90 = [max(stages[s]["p90"] or 0, 0.01) for s in names]
        ax.barh([i + 0.2 for i in y], p90, height=0.4, color=BAR_2, label="p90")
        ax.barh([i - 0.2 for i in y], p50, height=0.4, color=BAR, label="p50")
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("seconds (log scale)")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        return _svg(fig)


def chart_compliance(deadlines: Mapping[str, Mapping[str, Any]]) -> str:
    names = [c for c, d in deadlines.items() if d["met"] + d["breached"] + d["hard"]]
    with _figure("compliance", height=max(2.4, 0.3 * len(names) + 1)) as fig:
        ax = fig.subplots()
        left = [0.0] * len(names)
        for key, colour, label in (
            ("met", MET, "met"),
            ("breached", LATE, "late"),
            ("hard", HARD, "past the hard limit"),
        ):
            shares = []
            for c in names:
                d = deadlines[c]
                total = d["met"] + d["breached"] + d["hard"]
                shares.append(100 * d[key] / total)
            ax.barh(names, shares, left=left, color=colour, label=label)
            left = [a + b for a, b in zip(left, shares, strict=True)]
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of deadlines")
        ax.legend(loc="lower left", fontsize=8, frameon=False, ncols=3, bbox_to_anchor=(0, 1.0))
        return _svg(fig)


def chart_ratings(distribution: Mapping[str, int]) -> str:
    with _figure("ratings", height=2.6) as fig:
        ax = fig.subplots()
        scores = ["1", "2", "3", "4", "5"]
        colours = [HARD, HARD, LATE, MET, MET]
        ax.bar(scores, [distribution.get(s, 0) for s in scores], color=colours)
        ax.set_xlabel("rating (stars)")
        ax.set_ylabel("orders")
        return _svg(fig)


def chart_scorecards(cards: Sequence[Mapping[str, Any]]) -> str:
    shown = [c for c in cards if c["orders"] or c["anomalies_decided"]][:30]
    with _figure("scorecards", height=max(2.4, 0.28 * len(shown) + 1)) as fig:
        ax = fig.subplots()
        names = [c["staff_id"] for c in shown]
        rates = [100 * (c["on_time_rate"] or 0) for c in shown]
        colours = [MET if r >= 95 else LATE if r >= 85 else HARD for r in rates]
        ax.barh(names, rates, color=colours)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("deadlines met on time (%)")
        return _svg(fig)


# --- the page ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


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


def _cards(stats: Mapping[str, Any]) -> str:
    orders, amount, sat = stats["orders"], stats["amount"], stats["satisfaction"]
    items = [
        (str(orders["count"]), "orders"),
        (amount["net"], "net amount (after full refunds)"),
        (str(sat["rating_average"] or "—"), f"average rating of {sat['rated']}"),
        (_pct(sat["complaint_rate"]), "orders with a complaint"),
        (_pct(stats["breach_rate"]), "orders with a deadline missed"),
        (str(orders["with_anomaly"]), "anomalous orders"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in items
        )
        + "</div>"
    )


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def render(
    stats: Mapping[str, Any], now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> str:
    """The whole page; pure apart from the clock in its footer."""
    period, previous = stats["period"], stats["previous_period"]
    span = period["from"] if period["days"] == 1 else f"{period['from']} – {period['to']}"
    findings = stats["findings"]
    if findings:
        found = (
            "<ul class='findings'>"
            + "".join(
                f"<li class='{escape(f['severity'])}'>{escape(f['message'])}</li>" for f in findings
            )
            + "</ul>"
        )
    else:
        found = "<p class='quiet'>Nothing stands out in this period.</p>"
    compared = (
        "<ul>" + "".join(f"<li>{escape(c['text'])}</li>" for c in stats["comparison"]) + ("</ul>")
    )
    charts = [
        _figure_html(chart_orders_per_hour(stats["orders_per_hour"]), "Orders per hour of the day"),
        _figure_html(
            chart_daily(stats["daily"]),
            "Orders per day and price anomalies per 1,000 orders (R5.3.2 price monitoring)",
        ),
    ]
    if stats["stage_seconds"]:
        charts.append(
            _figure_html(
                chart_stages(stats["stage_seconds"]),
                "Time per stage: half the orders within p50, nine in ten within p90",
            )
        )
    if stats["deadlines"]:
        charts.append(
            _figure_html(chart_compliance(stats["deadlines"]), "Deadline compliance per clause")
        )
    charts.append(
        _figure_html(
            chart_ratings(stats["satisfaction"]["distribution"]),
            f"Ratings; complaints on {_pct(stats['satisfaction']['complaint_rate'])} of orders",
        )
    )
    if stats["staff"]:
        charts.append(
            _figure_html(chart_scorecards(stats["staff"]), "Staff: deadlines met on time (R7.2)")
        )
    amount = stats["amount"]
    money = _table(
        ["gross", "discounts", "paid", "refunded (cancelled, rejected)", "net"],
        [[amount["gross"], amount["discounts"], amount["paid"], amount["refunded"], amount["net"]]],
        text_columns=0,
    )
    stages = _table(
        ["stage", "orders", "p50 (s)", "p90 (s)", "mean (s)"],
        [[s, h["n"], h["p50"], h["p90"], h["mean"]] for s, h in stats["stage_seconds"].items()],
    )
    deadlines = _table(
        ["clause", "met", "late", "past hard limit", "on time"],
        [
            [c, d["met"], d["breached"], d["hard"], _pct(d["on_time_rate"])]
            for c, d in stats["deadlines"].items()
        ],
    )
    anomalies = _table(
        ["kind", "decisions"],
        [
            [kind, ", ".join(f"{d} {n}" for d, n in decisions.items())]
            for kind, decisions in stats["anomalies"].items()
        ],
        text_columns=2,
    )
    cancels = _table(
        ["outcome", "code", "reason", "by", "orders"],
        [[c["outcome"], c["code"], c["reason"], c["by"], c["n"]] for c in stats["cancellations"]],
        text_columns=4,
    )
    fb = stats["feedback"]
    feedback = _table(
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
                fb["first_response_seconds"]["p50"],
                fb["first_response_seconds"]["p90"],
                fb["average_rounds"],
                fb["more_than_one_round"],
                fb["satisfied"],
                fb["escalated"],
            ]
        ],
        text_columns=0,
    )
    groups = stats.get("groups") or {"by": "store", "rows": []}
    by_group = _table(
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
                _pct(r["complaint_rate"]),
                _pct(r["breach_rate"]),
                _pct(r["on_time_rate"]),
            ]
            for r in groups["rows"]
        ],
    )
    people = _table(
        [
            "person",
            "department",
            "role",
            "orders",
            "on time",
            "late",
            "handling (s)",
            "rating",
            "complaints",
            "anomalies decided",
        ],
        [
            [
                c["staff_id"],
                c["department"],
                c["role"],
                c["orders"],
                _pct(c["on_time_rate"]),
                c["late"],
                c["average_handling_seconds"],
                c["average_rating"],
                c["complaints"],
                c["anomalies_decided"],
            ]
            for c in stats["staff"]
        ],
        text_columns=3,
    )
    units = _table(
        [
            "department",
            "name",
            "people",
            "orders",
            "on time",
            "late",
            "handling (s)",
            "rating",
            "complaints",
            "anomalies decided",
        ],
        [
            [
                d["department"],
                d["name"],
                d["people"],
                d["orders"],
                _pct(d["on_time_rate"]),
                d["late"],
                d["average_handling_seconds"],
                d["average_rating"],
                d["complaints"],
                d["anomalies_decided"],
            ]
            for d in stats["departments"]
        ],
        text_columns=2,
    )
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
 {patrol["orders_found"]} orders found that the pushes missed (R6.3.2).</p>
{_cards(stats)}
{_section("Findings (R4.3.2)", found, compared)}
<section><h2>Charts</h2><div class="charts">{"".join(charts)}</div></section>
{_section("Amounts", money)}
{_section("Processing time per stage", stages)}
{_section("Deadline compliance", deadlines)}
{_section("Anomalies by kind and decision (R5.2.4)", anomalies)}
{_section("Cancellations and rejections by reason", cancels)}
{_section("Feedback (R4.2)", feedback)}
{_section(f"By {groups['by']}", by_group)}
{_section("Staff scorecards (R7.2)", people)}
{_section("Department scorecards (R7.2)", units)}
<footer>Made {now():%Y-%m-%d %H:%M} UTC by orderctl report. {source["orders_computed_live"]}
 orders read live (running or just finished), the rest from the daily rollup. A person's
 figures are the orders they held (the event log's assignments); durations are read from
 log-scale histograms, within 2.5% (of 1 + seconds).</footer>
</main>
</body>
</html>
"""
