"""Anomalies (R5.2): the inbox of orders on hold, and a manager's decision on one.

Two parsers, added at different places of the command list (`anomalies` with the reading
commands, `anomaly decide` after the after-sales ones), so `orderctl -h` reads in the order a
person works.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pydantic import BaseModel

from schemas.anomaly import AnomalyOutcome, Decide, Decision
from schemas.order import CustomerChanges
from schemas.reads import OpenAnomaly
from starter.api.client import Api, body
from starter.cli import format as fmt
from starter.cli.arguments import CORRECTABLE, cancel_code, correction, money, positive
from starter.cli.base import PROG, Exit, business_zone
from starter.cli.commands import ME, Commands, Parents, say


async def anomalies(api: Api, args: argparse.Namespace) -> Exit:
    """The inbox: every open anomaly within the person's reach, most urgent first."""
    found = await api.call("GET", "/anomalies", params={"limit": args.limit})
    rows = sorted((OpenAnomaly.model_validate(r) for r in found), key=lambda r: r.due_at)
    if args.json:
        print(fmt.dumps([r.model_dump(mode="json") for r in rows]))
    else:
        print(fmt.render_anomalies(rows, business_zone(), datetime.now(UTC)))
    return Exit.OK


async def decide(api: Api, args: argparse.Namespace) -> Exit:
    """Without N the API takes the order's latest open anomaly."""
    params = {"number": args.number} if args.number is not None else None
    answered = await api.call(
        "POST", f"/orders/{args.order}/anomaly/decide", json=body(args.message), params=params
    )
    answered.pop("order_id", None)
    outcome = AnomalyOutcome.model_validate(answered)
    after = "the order resumes" if outcome.resume else "the order ends"
    say(
        args,
        f"{outcome.anomaly_id}: {outcome.decision.value} by {outcome.decided_by}; {after}",
        {"order_id": args.order, **outcome.model_dump(mode="json")},
    )
    return Exit.OK


def build_decide(a: argparse.Namespace) -> BaseModel:
    corrections = CustomerChanges(**dict(a.correct)) if a.correct else None
    return Decide(
        by=ME,
        decision=a.decision,
        cause=a.cause,
        responsibility=a.responsibility,
        note=a.note,
        corrections=corrections,
        new_total=a.new_total,
        cancel_code=a.code,
        resume=a.resume,
    )


def add_inbox_parser(commands: Commands, shared: Parents) -> None:
    """`anomalies`."""
    sub = shared.command(
        commands,
        "anomalies",
        "the anomaly inbox: orders on hold with their open anomaly, most urgent first",
        ["anomalies", "anomalies --json"],
        handler=anomalies,
    )
    sub.add_argument(
        "--limit", type=positive, default=200, metavar="N", help="at most N orders (default 200)"
    )
    sub.epilog = (sub.epilog or "") + (
        "\n\njson keys: order_id, anomaly_id, kind, state, detail, opened_at, due_at,"
        "\n  escalations, paused_stage, store_code, assignee"
    )


def add_decide_parser(commands: Commands, shared: Parents) -> None:
    """`anomaly decide`."""
    anomaly = commands.add_parser(
        "anomaly",
        help="decide an anomalous order (R5.2)",
        description="Decide an anomalous order (R5.2). The inbox is `orderctl anomalies`.",
        epilog=f"""examples:
  {PROG} anomaly decide 123 --decision dismiss --cause 'phone checked' \\
      --responsibility customer""",
    )
    steps = anomaly.add_subparsers(dest="step", metavar="STEP", required=True)
    sub = shared.command(
        steps,
        "decide",
        "the manager's decision on an anomaly; N defaults to the order's open anomaly",
        [
            "anomaly decide 123 --decision correct_info --cause 'wrong phone' "
            "--responsibility customer --correct phone=13800138000",
            "anomaly decide 123 --decision adjust_price --new-total 58.00 "
            "--cause 'old price list' --responsibility store",
            "anomaly decide 123 2 --decision agreed_with_platform --no-resume "
            "--cause 'courier strike' --responsibility platform",
        ],
        handler=decide,
        build=build_decide,
        parents=[shared.order],
    )
    _decision_arguments(sub)


def _decision_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("number", type=positive, nargs="?", metavar="N", help="anomaly-ORDER-N")
    sub.add_argument("--decision", required=True, choices=[d.value for d in Decision])
    sub.add_argument("--cause", required=True, help="what the investigation found")
    sub.add_argument(
        "--responsibility", required=True, help="customer, store, platform, courier, system, ..."
    )
    sub.add_argument("--note", default="")
    sub.add_argument("--new-total", type=money, metavar="AMOUNT", help="for adjust_price")
    sub.add_argument("--code", type=cancel_code, help="for cancel: merchant cancel code")
    sub.add_argument(
        "--correct",
        type=correction,
        action="append",
        metavar="FIELD=VALUE",
        help=f"for correct_info, once per field; FIELD is one of {', '.join(CORRECTABLE)}",
    )
    sub.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="agreed_with_platform: the order ends instead of resuming",
    )
