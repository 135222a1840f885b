"""Reading orders: `list` from the visibility store (no worker needed) and `show` from the
order's status query."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from temporalio.client import WorkflowExecution

from schemas.contract import order_id_in
from schemas.order import OrderType, Stage
from schemas.status import OrderStatus
from starter.cli import format as fmt
from starter.cli.arguments import keyword, positive
from starter.cli.base import Exit, business_zone
from starter.cli.commands import Commands, Parents
from starter.cli.session import Session, order_target
from workflows import search_attributes as sa


def quote(value: str) -> str:
    """A visibility-query string literal that no value can break out of."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visibility_query(
    *,
    stage: str | None = None,
    store: str | None = None,
    assignee: str | None = None,
    order_type: str | None = None,
    breached: bool = False,
    anomaly_open: bool = False,
    running: bool = False,
) -> str:
    parts = ['WorkflowType="OrderWorkflow"']
    for key, value in (
        (sa.ORDER_STAGE, stage),
        (sa.STORE_CODE, store),
        (sa.ASSIGNEE_ID, assignee),
        (sa.ORDER_TYPE, order_type),
    ):
        if value is not None:
            parts.append(f"{key.name}={quote(value)}")
    if breached:
        parts.append(f"{sa.SLA_BREACHED.name}=true")
    if anomaly_open:
        parts.append(f"{sa.ANOMALY_OPEN.name}=true")
    if running:
        parts.append('ExecutionStatus="Running"')
    return " AND ".join(parts)


def order_row(execution: WorkflowExecution) -> fmt.OrderRow:
    attrs = execution.typed_search_attributes
    return fmt.OrderRow(
        order_id=order_id_in(execution.id),
        workflow_id=execution.id,
        status=execution.status.name.lower() if execution.status else "unknown",
        stage=attrs.get(sa.ORDER_STAGE),
        order_type=attrs.get(sa.ORDER_TYPE),
        store_code=attrs.get(sa.STORE_CODE),
        region=attrs.get(sa.REGION),
        assignee=attrs.get(sa.ASSIGNEE_ID),
        breached=bool(attrs.get(sa.SLA_BREACHED)),
        anomaly_open=bool(attrs.get(sa.ANOMALY_OPEN)),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


async def list_orders(session: Session, args: argparse.Namespace) -> Exit:
    query = visibility_query(
        stage=args.stage,
        store=args.store,
        assignee=args.assignee,
        order_type=args.type,
        breached=args.breached,
        anomaly_open=args.anomaly_open,
        running=args.running,
    )
    rows = [order_row(e) for e in await session.list_orders(query, args.limit)]
    if args.json:
        print(fmt.dumps([r.as_json() for r in rows]))
    else:
        print(fmt.render_orders(rows, business_zone()))
    return Exit.OK


async def show(session: Session, args: argparse.Namespace) -> Exit:
    status = await session.query(order_target(args.order), OrderStatus)
    if args.json:
        print(fmt.dumps(status.model_dump(mode="json")))
    else:
        print(fmt.render_status(status, business_zone(), datetime.now(UTC)))
    return Exit.OK


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
    sub.epilog = (sub.epilog or "") + (
        "\n\njson: the status query as the workflow returns it: order_id, stage, paused_stage,"
        "\n  order_type, store_code, region, delivery_mode, assignee, booking, promise,"
        "\n  awaiting_reconfirmation, deadlines, breaches, anomalies, feedback, refunds,"
        "\n  rating, timeline"
    )
