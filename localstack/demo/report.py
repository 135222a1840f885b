"""The demo's summary as a person reads it at the end of `make demo`."""

from __future__ import annotations

from typing import Any

from schemas.contract import order_workflow_id


def render(summary: dict[str, Any], kept: bool) -> str:
    """The summary as a person reads it at the end of `make demo`."""
    minutes, seconds = divmod(round(summary["elapsed_s"]), 60)
    out = [
        "",
        f"== orderflow demo: {summary['orders']} orders, seed {summary['seed']}, "
        f"{minutes} min {seconds:02d} s from start to summary "
        f"(business day {summary['business_day_s']:.0f} s)",
    ]
    out += _outcomes(summary)
    out += _activity(summary)
    out += _database(summary)
    out += _where_to_look(summary, kept)
    return "\n".join(out)


def _outcomes(summary: dict[str, Any]) -> list[str]:
    """Orders by outcome, deadlines per clause, anomalies by decision, time per stage."""
    totals = summary["outcome_totals"]
    out = ["", "Orders by outcome                goods  service  total"]
    for stage, kinds in summary["outcomes"].items():
        out.append(
            f"  {stage:<30} {kinds.get('goods', 0):>5} {kinds.get('service', 0):>8} "
            f"{totals[stage]:>6}"
        )
    if summary["cancelled_by"]:
        causes = " · ".join(f"{k} {v}" for k, v in summary["cancelled_by"].items())
        out.append(f"  cancelled by: {causes}")
    out += ["", "Deadlines per clause               met  missed  past hard limit"]
    for clause, row in summary["deadlines"].items():
        out.append(f"  {clause:<30} {row['met']:>5} {row['breached']:>7} {row['hard']:>16}")
    out += ["", "Anomalies by kind and decision"]
    if not summary["anomalies"]:
        out.append("  none")
    for kind, decisions in summary["anomalies"].items():
        out.append(f"  {kind:<12} " + " · ".join(f"{d} {n}" for d, n in decisions.items()))
    out += ["", "Average time per stage (s, from the post-execution summaries)"]
    out.append("  " + " · ".join(f"{k} {v}" for k, v in summary["average_stage_seconds"].items()))
    return out


def _activity(summary: dict[str, Any]) -> list[str]:
    """What the customers, the patrol and the staff did."""
    sent, missed = summary["customer_events"]["sent"], summary["customer_events"]["not_sent"]
    patrol, staff = summary["patrol"], summary["staff"]
    out = [
        "",
        "Customers: "
        + (" · ".join(f"{k} {v}" for k, v in sorted(sent.items())) or "no events")
        + (f"  (too late, the order was done: {dict(sorted(missed.items()))})" if missed else ""),
        f"Patrol (R2.1.2): {patrol.get('runs', 0)} walks of the platform, "
        f"{patrol.get('found', 0)} orders found that the pushes had missed",
        f"Staff: {sum(staff['actions'].values())} actions, "
        f"{sum(staff['slow_on_purpose'].values())} on purpose past the soft deadline, "
        f"{sum(staff['refused_as_stale'].values())} refused because the order had moved on",
    ]
    if staff["errors"]:
        out.append(f"  staff errors: {staff['errors'][:3]}")
    return out


def _database(summary: dict[str, Any]) -> list[str]:
    """R1.3 the checks against the system of record, and the orders still open."""
    verdict = "yes" if summary["database_agrees"] else "NO"
    out = ["", f"Database {summary['database']} agrees with the workflows: {verdict}"]
    for check in summary["database_checks"]:
        out.append(f"  {'ok ' if check['ok'] else 'BAD'} {check['check']}: {check['detail']}")
    if summary["open_orders"]:
        out += ["", f"Still open at the time limit ({len(summary['open_orders'])}):"]
        for order_id, stage in sorted(summary["open_orders"].items()):
            out.append(f"  {order_workflow_id(order_id)}: {stage}")
    return out


def _where_to_look(summary: dict[str, Any], kept: bool) -> list[str]:
    """The Web UI's filtered lists and the orderctl commands to try next."""
    out = ["", "Where to look (Temporal Web UI, filtered by search attribute):"]
    for name, url in summary["web_ui"].items():
        if url:
            out.append(f"  {name:<18} {url}")
    out.append(
        "  The stack stays up until Ctrl-C."
        if kept
        else "  The dev server stops now; `--keep` leaves it running for browsing."
    )
    out += [
        "",
        "orderctl to try (with --keep, and TEMPORAL_ADDRESS pointing at the stack):",
        "  orderctl list --stage closed --store SH-XH-001 · orderctl list --breached",
        "  orderctl show <order id> · orderctl anomalies",
        "  orderctl stats --by store · orderctl report --out day.html"
        f" (DATABASE_URL at database {summary['database']})",
    ]
    return out
