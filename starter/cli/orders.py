"""Reading orders: `list` and `show`, from the system of record through the staff API (no
workflow is touched by looking)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, tzinfo

from schemas.order import OrderType, Stage
from schemas.reads import OrderRow
from schemas.sheet import OrderSheet
from schemas.status import OrderStatus
from starter.api.client import Api
from starter.cli import format as fmt
from starter.cli.arguments import keyword, positive
from starter.cli.base import Exit, business_zone
from starter.cli.commands import Commands, Parents


async def list_orders(api: Api, args: argparse.Namespace) -> Exit:
    asked = {
        "stage": args.stage,
        "store": args.store,
        "assignee": args.assignee,
        "type": args.type,
        "breached": args.breached or None,
        "anomaly_open": args.anomaly_open or None,
        "running": args.running or None,
        "limit": args.limit,
    }
    found = await api.call("GET", "/orders", params={k: v for k, v in asked.items() if v})
    rows = [OrderRow.model_validate(row) for row in found]
    if args.json:
        print(fmt.dumps([r.model_dump(mode="json", exclude={"next_due_at"}) for r in rows]))
    else:
        print(fmt.render_orders(rows, business_zone()))
    return Exit.OK


async def show(api: Api, args: argparse.Namespace) -> Exit:
    status = OrderStatus.model_validate(await api.call("GET", f"/orders/{args.order}"))
    params = {"contact": "true"} if args.contact else None
    found = await api.call("GET", f"/orders/{args.order}/sheet", params=params)
    sheet = OrderSheet.model_validate(found)
    if args.json:
        print(fmt.dumps({**status.model_dump(mode="json"), "sheet": sheet.model_dump(mode="json")}))
    else:
        zone = business_zone()
        print(fmt.render_status(status, zone, datetime.now(UTC), render_sheet(sheet, zone)))
    return Exit.OK


def render_sheet(sheet: OrderSheet, zone: tzinfo) -> str:
    """What to make or do, for whom and where: the items, the notes, the address."""
    lines = [
        f"{line.name}{f' ({line.spec})' if line.spec else ''} x{line.quantity}"
        + (f", {line.boxes} box" if line.boxes else "")
        for line in sheet.items
    ]
    facts = [("caution", sheet.caution or "-"), ("address", sheet.address or "-")]
    if sheet.expected_at:
        facts.append(("expected", fmt.moment(sheet.expected_at, zone)))
    if sheet.contact:
        facts.append(("contact", sheet.contact))
    told = [
        f"  {fmt.moment(t.created_at, zone)}  {t.audience}  {t.subject}: "
        + " / ".join(t.text.splitlines()[1:] or t.text.splitlines())
        for t in sheet.told
    ]
    body = "\n".join(f"  {line}" for line in lines) + "\n" + fmt.pairs(facts, "  ")
    return body + ("\n\ntold\n" + "\n".join(told) if told else "")


def add_parsers(commands: Commands, shared: Parents) -> None:
    """`list` and `show`."""
    sub = shared.command(
        commands,
        "list",
        "orders by stage, store, assignee, type, breach or open anomaly (newest first)",
        [
            "list --stage in_progress --store SH-XH-001",
            "list --breached --running",
            "list --anomaly-open --json",
        ],
        handler=list_orders,
    )
    sub.add_argument("--stage", choices=[s.value for s in Stage])
    sub.add_argument("--store", type=keyword, metavar="CODE")
    sub.add_argument("--assignee", type=keyword, metavar="STAFF")
    sub.add_argument("--type", choices=[t.value for t in OrderType])
    sub.add_argument("--breached", action="store_true", help="a deadline was missed")
    sub.add_argument("--anomaly-open", action="store_true", help="on hold for a manager")
    sub.add_argument("--running", action="store_true", help="leave out ended orders")
    sub.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="at most N orders (default 50)"
    )
    sub.epilog = (sub.epilog or "") + (
        "\n\njson keys: order_id, workflow_id, status, stage, order_type, store_code, region,"
        "\n  assignee, breached, anomaly_open, started_at, closed_at"
    )

    sub = shared.command(
        commands,
        "show",
        "one order: stage, assignee, promise, deadlines, breaches, anomalies, feedback, "
        "refunds and its timeline",
        ["show 27061900311184578", "show 27061900311184578 --json"],
        handler=show,
        parents=[shared.order],
    )
    sub.add_argument(
        "--contact",
        action="store_true",
        help="with the customer's number (the assignee and managers only; recorded)",
    )
    sub.epilog = (sub.epilog or "") + (
        "\n\njson: the order as the system of record has it: order_id, stage, paused_stage,"
        "\n  order_type, store_code, region, delivery_mode, assignee, booking, promise,"
        "\n  awaiting_reconfirmation, deadlines, breaches, anomalies, feedback, refunds,"
        "\n  rating, timeline, sheet (items, caution, address, expected_at, contact)"
    )
