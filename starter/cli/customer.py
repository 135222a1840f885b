"""On the customer's behalf: what they said by phone or in person, sent as the same signals the
platform's pushes become."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pydantic import BaseModel

from schemas.messages import PLATFORM_KINDS, CustomerChange, CustomerFeedback, FeedbackKind
from schemas.order import CustomerChanges
from starter.api.client import Api
from starter.cli.arguments import WHEN_HELP, when
from starter.cli.base import Exit
from starter.cli.commands import Commands, Handler, Parents, say


def signal(name: str, told: Callable[[argparse.Namespace], str]) -> Handler:
    """A signal on the customer's behalf, sent by the signed-in person; Temporal holds it once
    this returns."""

    async def run(api: Api, args: argparse.Namespace) -> Exit:
        await api.signal(args.order, name, args.message)
        say(
            args,
            f"order {args.order}: {told(args)}",
            {"order_id": args.order, "signal": name, "sent": True},
        )
        return Exit.OK

    return run


def build_change(a: argparse.Namespace) -> BaseModel:
    changes = CustomerChanges(
        name=a.name,
        phone=a.phone,
        address=a.address,
        latitude=a.latitude,
        longitude=a.longitude,
        expected_at=a.expected_at,
        remarks=a.remarks,
    )
    return CustomerChange(changes=changes, note=a.note)


def changed(a: argparse.Namespace) -> str:
    fields = ", ".join(a.message.changes.changed_fields())
    return f"change of {fields} sent; it goes through review again"


def add_parsers(commands: Commands, shared: Parents) -> None:
    """`complain` and `change`."""
    sub = shared.command(
        commands,
        "complain",
        "feedback the customer gave by phone or in person (opens a case)",
        ["complain 123 --kind complaint --text 'the soup was spilled'"],
        handler=signal("customer_feedback", lambda a: f"{a.kind} sent; a case opens"),
        build=lambda a: CustomerFeedback(kind=a.kind, text=a.text, channel=a.channel),
        parents=[shared.order],
    )
    sub.add_argument(
        "--kind",
        required=True,
        choices=[k.value for k in FeedbackKind if k not in PLATFORM_KINDS],
    )
    sub.add_argument("--text", required=True)
    sub.add_argument("--channel", default="phone", help="how it reached us (default phone)")

    sub = shared.command(
        commands,
        "change",
        "what the customer changed; the order goes back through review (R2.4.2)",
        [
            "change 123 --address '上海市徐汇区宜山路1号' --note 'moved'",
            "change 123 --expected-at +3h --remarks 'call before coming'",
        ],
        handler=signal("customer_change", changed),
        build=build_change,
        parents=[shared.order],
    )
    sub.add_argument("--name")
    sub.add_argument("--phone")
    sub.add_argument("--address")
    sub.add_argument("--latitude", type=float)
    sub.add_argument("--longitude", type=float)
    sub.add_argument("--expected-at", type=when, metavar="WHEN", help=WHEN_HELP)
    sub.add_argument("--remarks")
    sub.add_argument("--note", default="", help="why, in a few words")
