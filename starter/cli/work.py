"""A person's own work: `my` (their open orders, soonest due first), `inbox` (what they were
told) and `ticket` (the order printed for the kitchen or the technician)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, tzinfo
from typing import Any

from schemas.sheet import OrderSheet
from schemas.work import InboxEntry, ManagerQueues, WorkItem
from starter.api.client import Api
from starter.cli import format as fmt
from starter.cli.arguments import positive
from starter.cli.base import Exit, Failure, business_zone
from starter.cli.commands import Commands, Parents, say
from starter.cli.terminal import Style, printable
from starter.cli.ticket import PAPER, escpos, render_ticket, send

FOLLOW_LIMIT = 1000
"""The newest looked at by each look of `inbox --follow`: more than anyone is sent between two."""


def render_work(items: list[WorkItem], zone: tzinfo, now: datetime) -> str:
    if not items:
        return "nothing open is yours"
    return fmt.table(
        ["#", "ORDER", "STORE", "STAGE", "NEXT", "CLAUSE", "DUE", "LEFT"],
        [
            [
                str(i.day_seq) if i.day_seq is not None else "",
                i.order_id,
                i.store_name or i.store_code,
                i.stage.value,
                i.next_action,
                i.clause.value if i.clause else "",
                fmt.moment(i.due_at, zone) if i.due_at else "",
                fmt.left(i.due_at, now) if i.due_at else "",
            ]
            for i in items
        ],
        mark=lambda row: Style.RED if row[-1].startswith(fmt.OVERDUE) else None,
    )


def render_inbox(entries: list[InboxEntry], zone: tzinfo) -> str:
    if not entries:
        return "nothing in the inbox"
    blocks = []
    for e in entries:
        mark = " " if e.read_at else "*"
        head = f"{mark} {fmt.moment(e.created_at, zone)}  {printable(e.subject)}"
        body = "\n".join(f"    {printable(line)}" for line in e.text.splitlines())
        routes = f"  ({e.delivered})" if e.delivered else ""  # e.g. department:KITCHEN-XH=dead
        blocks.append(f"{head}  [{e.key}]{routes}\n{body}")
    return "\n".join(blocks)


async def my(api: Api, args: argparse.Namespace) -> Exit:
    answer = await api.call("GET", "/my", params={"limit": args.limit})
    items = [WorkItem.model_validate(i) for i in answer["items"]]
    if args.json:
        print(fmt.dumps(answer))
        return Exit.OK
    print(render_work(items, business_zone(), datetime.now(UTC)))
    if "queues" in answer:
        queues = ManagerQueues.model_validate(answer["queues"])
        waiting = f"{queues.anomalies} anomalies (orderctl anomalies), {queues.refunds} refunds"
        print(f"\nto decide: {waiting}")
    return Exit.OK


async def inbox(api: Api, args: argparse.Namespace) -> Exit:
    if args.read or args.read_all:
        body: dict[str, Any] = {"all": True} if args.read_all else {"keys": args.read}
        done = await api.call("POST", "/inbox/read", json=body)
        say(args, f"{done['read']} marked read", done)
        return Exit.OK
    params: dict[str, Any] = {"limit": args.limit}
    if args.unread:
        params["unread"] = "true"
    entries = await _entries(api, params)
    _print(entries, args)
    if not args.follow:
        return Exit.OK
    # Each look takes the newest and shows what was not shown yet: no clock is compared, so a
    # notification written late, or a clock set apart, loses nothing.
    seen = {e.key for e in await _entries(api, {**params, "limit": FOLLOW_LIMIT})}
    while True:  # until Ctrl-C
        await asyncio.sleep(args.every)
        fresh = [
            e for e in await _entries(api, {**params, "limit": FOLLOW_LIMIT}) if e.key not in seen
        ]
        if fresh:
            _print(list(reversed(fresh)), args)  # oldest first, as they came
            seen |= {e.key for e in fresh}


async def _entries(api: Api, params: dict[str, Any]) -> list[InboxEntry]:
    return [InboxEntry.model_validate(e) for e in await api.call("GET", "/inbox", params=params)]


def _print(entries: list[InboxEntry], args: argparse.Namespace) -> None:
    if args.json:
        print(fmt.dumps([e.model_dump(mode="json") for e in entries]), flush=True)
    elif entries or not args.follow:
        print(render_inbox(entries, business_zone()), flush=True)


async def ticket(api: Api, args: argparse.Namespace) -> Exit:
    sheet = OrderSheet.model_validate(await api.call("GET", f"/orders/{args.order}/sheet"))
    text = render_ticket(sheet, PAPER[args.paper], business_zone())
    if args.printer:
        try:
            await asyncio.to_thread(send, escpos(text), args.printer)
        except OSError as err:
            reason = f"the printer {args.printer} took nothing: {err}"
            raise Failure(reason, Exit.UNREACHABLE) from None
        print(f"ticket for order {args.order} sent to {args.printer}")
    else:
        print(text, end="")
    return Exit.OK


def add_parsers(commands: Commands, shared: Parents) -> None:
    """`my`, `inbox` and `ticket`."""
    sub = shared.command(
        commands,
        "my",
        "your open orders, soonest due first, with what each needs next and the time left "
        "(a manager: the departments' orders and what waits on a decision)",
        ["my", "my --json"],
        handler=my,
    )
    sub.add_argument("--limit", type=positive, default=200, metavar="N")
    sub = shared.command(
        commands,
        "inbox",
        "what you were told, newest first (* unread)",
        ["inbox --unread", "inbox --follow", "inbox --read KEY", "inbox --read-all"],
        handler=inbox,
    )
    sub.add_argument("--unread", action="store_true", help="only what you have not read")
    sub.add_argument("--follow", action="store_true", help="keep waiting for new ones")
    sub.add_argument("--every", type=positive, default=2, metavar="SECONDS", help=argparse.SUPPRESS)
    sub.add_argument("--read", nargs="+", metavar="KEY", help="mark these read")
    sub.add_argument("--read-all", action="store_true", help="mark every unread one read")
    sub.add_argument("--limit", type=positive, default=50, metavar="N")
    sub = shared.command(
        commands,
        "ticket",
        "the order's kitchen or service ticket, for a 58 mm (32 columns) or 80 mm (48) printer",
        ["ticket 27061900311184578", "ticket 27061900311184578 --paper 80 --printer 10.0.0.9:9100"],
        handler=ticket,
        parents=[shared.order],
    )
    sub.add_argument("--paper", choices=sorted(PAPER), default="58", help="mm (default 58)")
    sub.add_argument(
        "--printer",
        metavar="DEVICE|HOST:PORT",
        help="send it as ESC/POS to a device file or a network printer instead of printing it",
    )
