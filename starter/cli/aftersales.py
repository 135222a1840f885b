"""After-sales (R4.2): feedback cases, the platform's refund requests and the customer's
reminders, each answered by an update on the order's workflow."""

from __future__ import annotations

import argparse

from schemas.messages import DecideRefund, ReplyReminder, ResolveFeedback, RespondFeedback
from starter.cli.arguments import positive
from starter.cli.base import PROG
from starter.cli.commands import ME, Commands, Parents, action


def add_parsers(commands: Commands, shared: Parents) -> None:
    """`feedback respond|resolve`, `refund` and `reply-reminder`."""
    _add_feedback(commands, shared)
    _add_refund(commands, shared)
    sub = shared.command(
        commands,
        "reply-reminder",
        "answer the customer's reminder (催单)",
        ["reply-reminder 123 5 --text 'the rider left 5 minutes ago'"],
        handler=action("reply_reminder"),
        build=lambda a: ReplyReminder(by=ME, remind_id=a.remind_id, text=a.text),
        parents=[shared.order],
    )
    sub.add_argument("remind_id", metavar="REMIND_ID")
    sub.add_argument("--text", required=True)


def _add_feedback(commands: Commands, shared: Parents) -> None:
    feedback = commands.add_parser(
        "feedback",
        help="answer and resolve a feedback case (R4.2)",
        description="Answer and resolve a feedback case (R4.2).",
        epilog=f"""examples:
  {PROG} feedback respond 123 1 --response 'sorry, a new one is on its way'
  {PROG} feedback resolve 123 1 --resolution 'refunded the drink' --satisfied""",
    )
    cases = feedback.add_subparsers(dest="step", metavar="STEP", required=True)
    case_arg = argparse.ArgumentParser(add_help=False)
    case_arg.add_argument("case", type=positive, metavar="CASE", help="the case number")

    sub = shared.command(
        cases,
        "respond",
        "a response to the customer; someone is put on the case",
        ["feedback respond 123 1 --response 'sorry, a new one is on its way'"],
        handler=action("respond_feedback"),
        build=lambda a: RespondFeedback(by=ME, case=a.case, response=a.response),
        parents=[shared.order, case_arg],
    )
    sub.add_argument("--response", required=True)

    sub = shared.command(
        cases,
        "resolve",
        "the result went back to the customer; were they satisfied?",
        [
            "feedback resolve 123 1 --resolution 'refunded the drink' --satisfied",
            "feedback resolve 123 1 --resolution 'voucher' --unsatisfied",
        ],
        handler=action("resolve_feedback"),
        build=lambda a: ResolveFeedback(
            by=ME, case=a.case, resolution=a.resolution, satisfied=a.satisfied
        ),
        parents=[shared.order, case_arg],
    )
    sub.add_argument("--resolution", required=True)
    verdict = sub.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--satisfied", dest="satisfied", action="store_true", default=None)
    verdict.add_argument("--unsatisfied", dest="satisfied", action="store_false")


def _add_refund(commands: Commands, shared: Parents) -> None:
    sub = shared.command(
        commands,
        "refund",
        "decide the platform's refund request",
        ["refund 123 88 --agree --reason 'items missing'"],
        handler=action("decide_refund"),
        build=lambda a: DecideRefund(by=ME, refund_id=a.refund_id, agree=a.agree, reason=a.reason),
        parents=[shared.order],
    )
    sub.add_argument("refund_id", metavar="REFUND_ID")
    decision = sub.add_mutually_exclusive_group(required=True)
    decision.add_argument("--agree", dest="agree", action="store_true", default=None)
    decision.add_argument("--reject", dest="agree", action="store_false")
    sub.add_argument("--reason", required=True)
