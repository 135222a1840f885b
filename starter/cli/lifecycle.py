"""Staff moving an order along its lifecycle: confirm, progress, exception, ready, delivered,
reconfirm, rate, reassign and cancel, each an update on the order's workflow."""

from __future__ import annotations

import argparse

from pydantic import BaseModel

from schemas.messages import (
    CancelOrder,
    ConfirmWithCustomer,
    ExceptionKind,
    MarkDelivered,
    MarkReady,
    Reassign,
    ReconfirmVisit,
    RecordRating,
    Remedy,
    ReportException,
    ReportProgress,
)
from starter.cli.arguments import WHEN_HELP, cancel_code, when
from starter.cli.commands import ME, Commands, Parents, action


def build_confirm(a: argparse.Namespace) -> BaseModel:
    return ConfirmWithCustomer(
        by=ME,
        channel=a.channel,
        promised_ready_at=a.ready_at,
        promised_delivery_at=a.delivery_at,
        promises=a.promises,
    )


def build_exception(a: argparse.Namespace) -> BaseModel:
    return ReportException(
        by=ME,
        kind=a.kind,
        detail=a.detail,
        remedy=a.remedy,
        new_promised_at=a.new_time,
        cancel_code=a.code,
    )


def add_parsers(commands: Commands, shared: Parents) -> None:
    """The lifecycle's commands, in the order an order meets them."""
    _add_confirm(commands, shared)
    _add_work(commands, shared)
    _add_finish(commands, shared)
    _add_handover(commands, shared)


def _add_confirm(commands: Commands, shared: Parents) -> None:
    sub = shared.command(
        commands,
        "confirm",
        "confirmed with the customer, with the promised times (R2.4.1, R2.4.3)",
        [
            "confirm 123 --delivery-at +1d --promises 'bring the ladder'",
            "confirm 123 --delivery-at 2025-06-01T18:30 --ready-at 2025-06-01T18:00",
        ],
        handler=action("confirm_with_customer"),
        build=build_confirm,
        parents=[shared.order],
    )
    sub.add_argument("--delivery-at", type=when, required=True, metavar="WHEN", help=WHEN_HELP)
    sub.add_argument("--ready-at", type=when, metavar="WHEN", help="goods ready by (same forms)")
    sub.add_argument("--promises", default="", help="what else the customer was promised")
    sub.add_argument("--channel", default="phone", help="how they were reached (default phone)")


def _add_work(commands: Commands, shared: Parents) -> None:
    """`progress` and `exception`: what the customer is told while the work goes on."""
    sub = shared.command(
        commands,
        "progress",
        "progress the customer is told about (R3.3.1)",
        ["progress 123 --note 'in the oven' --percent 60"],
        handler=action("report_progress"),
        build=lambda a: ReportProgress(by=ME, note=a.note, percent=a.percent),
        parents=[shared.order],
    )
    sub.add_argument("--note", required=True)
    sub.add_argument("--percent", type=int, help="0-100")

    sub = shared.command(
        commands,
        "exception",
        "an exception with its remedy; the customer is told (R3.3.2)",
        [
            "exception 123 --kind delay --detail 'rain' --remedy reschedule --new-time +2h",
            "exception 123 --kind shortage --detail 'no pork' --remedy cancel --code 2009",
            "exception 123 --kind other --detail 'oven broke' --remedy escalate",
        ],
        handler=action("report_exception"),
        build=build_exception,
        parents=[shared.order],
    )
    sub.add_argument("--kind", required=True, choices=[k.value for k in ExceptionKind])
    sub.add_argument("--detail", required=True)
    sub.add_argument("--remedy", required=True, choices=[r.value for r in Remedy])
    sub.add_argument("--new-time", type=when, metavar="WHEN", help="for reschedule: " + WHEN_HELP)
    sub.add_argument("--code", type=cancel_code, help="for cancel: merchant cancel code 2001-2016")


def _add_finish(commands: Commands, shared: Parents) -> None:
    """`ready`, `delivered`, `reconfirm` and `rate`."""
    sub = shared.command(
        commands,
        "ready",
        "goods are ready",
        ["ready 123"],
        handler=action("mark_ready"),
        build=lambda a: MarkReady(by=ME, note=a.note),
        parents=[shared.order],
    )
    sub.add_argument("--note", default="")

    sub = shared.command(
        commands,
        "delivered",
        "delivered (or the service done), with proof (R3.4.1)",
        ["delivered 123 --proof photo:IMG_2031.jpg"],
        handler=action("mark_delivered"),
        build=lambda a: MarkDelivered(by=ME, proof=a.proof, note=a.note),
        parents=[shared.order],
    )
    sub.add_argument("--proof", required=True, help="photo reference, signature or pickup code")
    sub.add_argument("--note", default="")

    sub = shared.command(
        commands,
        "reconfirm",
        "the service visit re-confirmed with the customer (R3.2.2)",
        ["reconfirm 123"],
        handler=action("reconfirm_visit"),
        build=lambda a: ReconfirmVisit(by=ME, note=a.note),
        parents=[shared.order],
    )
    sub.add_argument("--note", default="")

    sub = shared.command(
        commands,
        "rate",
        "the customer's rating; a low one opens a complaint (R3.4.2)",
        ["rate 123 --score 5", "rate 123 --score 2 --comment 'arrived cold'"],
        handler=action("record_rating"),
        build=lambda a: RecordRating(by=ME, score=a.score, comment=a.comment),
        parents=[shared.order],
    )
    sub.add_argument("--score", type=int, required=True, choices=range(1, 6), metavar="1-5")
    sub.add_argument("--comment", default="")


def _add_handover(commands: Commands, shared: Parents) -> None:
    """`reassign` and `cancel`: the order leaves its assignee's hands."""
    sub = shared.command(
        commands,
        "reassign",
        "give the order to someone else (or let the rules choose)",
        ["reassign 123 --reason 'S-101 went home ill' --to S-102"],
        handler=action("reassign"),
        build=lambda a: Reassign(by=ME, reason=a.reason, to=a.to),
        parents=[shared.order],
    )
    sub.add_argument("--reason", required=True)
    sub.add_argument("--to", metavar="STAFF", help="the new assignee (default: the rules choose)")

    sub = shared.command(
        commands,
        "cancel",
        "cancel on the merchant's side, e.g. the customer asked by phone",
        ["cancel 123 --code 2006 --reason 'customer phoned to cancel'"],
        handler=action("cancel_order"),
        build=lambda a: CancelOrder(by=ME, reason_code=a.code, reason=a.reason),
        parents=[shared.order],
    )
    sub.add_argument("--code", type=cancel_code, required=True, help="merchant code 2001-2016")
    sub.add_argument("--reason", required=True)
