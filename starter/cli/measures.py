"""`orderctl measure add|list|end` (R4.3.3): a measure taken on a finding of `orderctl stats`,
its owner and due date; the reports show it with its figure before and after."""

from __future__ import annotations

import argparse
from typing import Any

from starter.api.client import Api
from starter.cli import format as fmt
from starter.cli.base import Exit
from starter.cli.commands import Commands, Parents, say


def _finding(value: str) -> tuple[str, str]:
    kind, sep, subject = value.partition(":")
    if not sep or not kind or not subject:
        raise argparse.ArgumentTypeError(
            f"{value!r}: a finding is KIND:SUBJECT, as `orderctl stats --json` names it "
            "(e.g. clause_below_target:confirm)"
        )
    return kind, subject


def _line(m: dict[str, Any]) -> str:
    return (
        f"#{m['measure_id']} {m['state']}: {m['what']} (owner {m['owner']}, due {m['due']}; "
        f"{m['finding_kind']}: {m['subject']}, figure {m['figure']})"
    )


async def add(api: Api, args: argparse.Namespace) -> Exit:
    kind, subject = args.finding
    body = {
        "finding_kind": kind,
        "subject": subject,
        "what": args.what,
        "owner": args.owner,
        "due": args.due,
    }
    taken = await api.call("POST", "/measures", json=body)
    say(args, _line(taken), taken)
    return Exit.OK


async def listing(api: Api, args: argparse.Namespace) -> Exit:
    found = await api.call("GET", "/measures")
    print(fmt.dumps(found) if args.json else "\n".join(map(_line, found)) or "no measures")
    return Exit.OK


async def end(api: Api, args: argparse.Namespace) -> Exit:
    ended = await api.call("POST", f"/measures/{args.id}/end", json={"state": args.state})
    say(args, _line(ended), ended)
    return Exit.OK


def add_parsers(commands: Commands, shared: Parents) -> None:
    measure = commands.add_parser(
        "measure",
        help="improvement measures taken on findings (R4.3.3; managers and admins)",
    )
    steps = measure.add_subparsers(dest="step", metavar="STEP", required=True)
    sub = shared.command(
        steps,
        "add",
        "a measure on a finding: what will change, who owns it, by when",
        [
            "measure add clause_below_target:confirm --what '两人接单' --owner M-001 "
            "--due 2026-12-31"
        ],
        handler=add,
    )
    sub.add_argument("finding", type=_finding, metavar="KIND:SUBJECT")
    sub.add_argument("--what", required=True)
    sub.add_argument("--owner", required=True, metavar="STAFF")
    sub.add_argument("--due", required=True, metavar="YYYY-MM-DD")
    shared.command(steps, "list", "the measures, newest first", ["measure list"], handler=listing)
    sub = shared.command(
        steps, "end", "a measure done or dropped", ["measure end 3 --done"], handler=end
    )
    sub.add_argument("id", metavar="ID")
    state = sub.add_mutually_exclusive_group(required=True)
    state.add_argument("--done", dest="state", action="store_const", const="done")
    state.add_argument("--dropped", dest="state", action="store_const", const="dropped")
