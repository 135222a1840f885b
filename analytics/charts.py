"""The report's charts: SVG drawn by matplotlib's Agg backend, inline in the page.

matplotlib is imported only when a chart is drawn: `orderctl stats` never loads it. Each SVG's
ids are salted with the chart's name so that several inline SVGs never clash, and the file
carries no creation date, so a report of the same figures is the same file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Colours a person tells apart, also in grey print.
MET, LATE, HARD = "#2e7d32", "#f9a825", "#c62828"
BAR, BAR_2 = "#1565c0", "#90caf9"


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
