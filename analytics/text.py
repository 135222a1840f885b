"""The statistics as a person reads them in a terminal: `orderctl stats` without `--json`.

Renders the JSON answer of `compute` and nothing else, so the two cannot tell different stories.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analytics.formats import duration, pct


def render(stats: Mapping[str, Any]) -> str:
    """The stats as a person reads them in a terminal."""
    out = _headline(stats)
    out.append("")
    out += _times_and_deadlines(stats)
    out += _anomalies_and_feedback(stats)
    out += _groups_and_staff(stats)
    out.append("")
    out += _comparison_and_findings(stats)
    return "\n".join(out)


def _headline(stats: Mapping[str, Any]) -> list[str]:
    p = stats["period"]
    span = p["from"] if p["days"] == 1 else f"{p['from']} – {p['to']}"
    prev = stats["previous_period"]
    orders = stats["orders"]
    outcomes = " · ".join(f"{k} {v}" for k, v in orders["by_outcome"].items())
    a = stats["amount"]
    s = stats["satisfaction"]
    dist = " ".join(f"{k}★{v}" for k, v in s["distribution"].items())
    return [
        f"Statistics {span} ({stats['zone']}); compared with {prev['from']} – {prev['to']}",
        f"  orders {orders['count']}" + (f"  ({outcomes})" if outcomes else ""),
        f"  amount gross {a['gross']} · discounts {a['discounts']} · refunded {a['refunded']} · "
        f"net {a['net']}",
        f"  satisfaction: average {s['rating_average'] or '—'} of {s['rated']} rated ({dist}); "
        f"complaints on {pct(s['complaint_rate'])} of orders",
        *_freshness(stats.get("source", {})),
    ]


def _freshness(source: Mapping[str, Any]) -> list[str]:
    """How fresh the rollup read was; what it lacked was read from the orders themselves."""
    at = source.get("rollup_refreshed_at")
    if not at:
        return []
    by = "this read" if source.get("refreshed_here") else "the workers"
    live = source.get("orders_computed_live", 0)
    return [f"  rollup refreshed {at[:16].replace('T', ' ')} by {by}; {live} orders read live"]


def _times_and_deadlines(stats: Mapping[str, Any]) -> list[str]:
    out = ["  stage                 n      p50      p90"]
    for stage, h in stats["stage_seconds"].items():
        out.append(f"  {stage:<16} {h['n']:>6} {duration(h['p50']):>8} {duration(h['p90']):>8}")
    out.append("")
    out.append("  deadline             met  breached  hard  on time")
    for clause, d in stats["deadlines"].items():
        out.append(
            f"  {clause:<19} {d['met']:>4} {d['breached']:>9} {d['hard']:>5} "
            f"{pct(d['on_time_rate']):>8}"
        )
    return out


def _anomalies_and_feedback(stats: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if stats["anomalies"]:
        out.append("")
        out.append(
            "  anomalies: "
            + "; ".join(
                f"{kind} " + ", ".join(f"{d} {n}" for d, n in decisions.items())
                for kind, decisions in stats["anomalies"].items()
            )
        )
    if stats["cancellations"]:
        out.append(
            "  cancelled / rejected: "
            + ", ".join(
                f"{c['outcome']} {c['code']} {c['reason']} by {c['by']}: {c['n']}"
                for c in stats["cancellations"]
            )
        )
    f = stats["feedback"]
    if f["cases"]:
        fr = f["first_response_seconds"]
        out.append(
            f"  feedback: {f['cases']} cases, first response p50 {duration(fr['p50'])} "
            f"p90 {duration(fr['p90'])}, {f['average_rounds']} rounds on average, "
            f"{f['satisfied']} satisfied, {f['escalated']} escalated"
        )
    refused = stats["refused_pushes"]
    if refused["refused"] or refused["previous"]:
        out.append(
            f"  pushes refused: {refused['refused']} (the period before {refused['previous']})"
            + "".join(f", {cause} {n}" for cause, n in refused["by_cause"].items())
        )
    return out


def _groups_and_staff(stats: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if stats["groups"]:
        g = stats["groups"]
        out.append("")
        out.append(f"  by {g['by']:<12} orders  before      net  rating  complaints  breaches")
        for row in g["rows"]:
            out.append(
                f"  {row['key']:<15} {row['orders']:>6} {row['previous_orders']:>7} "
                f"{row['net']:>8} {row['rating_average'] or '—':>7} "
                f"{pct(row['complaint_rate']):>11} {pct(row['breach_rate']):>9}"
            )
    if stats["staff"]:
        out.append("")
        out.append("  staff (R7.2)     dept          orders  on time  handling  rating  compl.")
        for card in stats["staff"]:
            out.append(
                f"  {card['staff_id']:<15} {card['department']:<13} {card['orders']:>6} "
                f"{pct(card['on_time_rate']):>8} "
                f"{duration(card['average_handling_seconds']):>9} "
                f"{card['average_rating'] or '—':>7} {card['complaints']:>7}"
            )
    return out


def _comparison_and_findings(stats: Mapping[str, Any]) -> list[str]:
    out = ["  compared with the period before:"]
    out += [f"    {line['text']}" for line in stats["comparison"]]
    out.append("")
    if stats["findings"]:
        out.append("  findings (R4.3.2):")
        out += [f"    - {finding['message']}" for finding in stats["findings"]]
    else:
        out.append("  findings (R4.3.2): nothing stands out")
    for m in stats.get("measures") or []:
        out.append(
            f"  measure #{m['measure_id']} ({m['state']}, {m['owner']}, due {m['due']}): "
            f"{m['what']}; {m['figure']} {m['before']} before ({m['before_period']}), "
            f"{m['after']} now"
        )
    causes = stats.get("improvement_causes") or []
    if causes:
        out.append("  most frequent causes (R3.3.3), with the period before:")
        out += [f"    {c['n']:>5}  {c['cause']} ({c['previous']})" for c in causes]
    return out
