"""`orderctl admin customer show|ban|lift`: a customer's credit profile, a ban and its lifting
(R5.3.3), through the staff API as the signed-in admin; each change audited."""

from __future__ import annotations

import argparse
from typing import Any

from schemas.admin import CustomerProfile
from starter.api.admin import BY_ORDER
from starter.api.client import Api
from starter.cli import format as fmt
from starter.cli.arguments import order_id
from starter.cli.base import Exit, business_zone
from starter.cli.commands import Commands, Parents


def render_profile(p: CustomerProfile) -> str:
    zone = business_zone()
    facts = [
        ("customer", p.customer_id),
        ("status", p.status),
        ("credit", str(p.credit_score)),
        ("first seen", fmt.moment(p.first_seen_at, zone)),
        ("last order", fmt.moment(p.last_order_at, zone) if p.last_order_at else "-"),
    ]
    credit = fmt.table(
        ["AT", "ORDER", "KIND", "DELTA", "SCORE"],
        [
            [fmt.moment(c.at, zone), c.order_id, c.kind, f"{c.delta:+d}", str(c.score_after)]
            for c in p.credit
        ],
    )
    audit = fmt.table(
        ["AT", "BY", "ACTION", "REASON"],
        [[fmt.moment(a.at, zone), a.actor, a.action, a.reason] for a in p.audit],
    )
    return "\n".join(
        [
            fmt.pairs(facts),
            "",
            "credit",
            credit if p.credit else "  none",
            "",
            "changes",
            audit if p.audit else "  none",
        ]
    )


def _path(args: argparse.Namespace, step: str = "") -> tuple[str, dict[str, Any] | None]:
    who = args.customer or BY_ORDER
    params = {"order": args.order} if args.order else None
    return f"/admin/customers/{who}{step}", params


async def show(api: Api, args: argparse.Namespace) -> Exit:
    path, params = _path(args)
    found = CustomerProfile.model_validate(await api.call("GET", path, params=params))
    print(fmt.dumps(found.model_dump(mode="json")) if args.json else render_profile(found))
    return Exit.OK


def change(step: str) -> Any:
    async def run(api: Api, args: argparse.Namespace) -> Exit:
        path, params = _path(args, f"/{step}")
        answer = await api.call("POST", path, json={"reason": args.reason}, params=params)
        found = CustomerProfile.model_validate(answer)
        line = f"customer {found.customer_id}: {found.status} (credit {found.credit_score})"
        print(fmt.dumps(found.model_dump(mode="json")) if args.json else line)
        return Exit.OK

    return run


def add_customer_area(areas: Commands, shared: Parents) -> None:
    customer = areas.add_parser("customer", help="a customer's credit, bans (admins; audited)")
    steps = customer.add_subparsers(dest="step", metavar="STEP", required=True)
    which = argparse.ArgumentParser(add_help=False)
    named = which.add_mutually_exclusive_group(required=True)
    named.add_argument("customer", nargs="?", metavar="CUSTOMER_ID")
    named.add_argument("--order", type=order_id, metavar="ORDER", help="the customer of an order")
    shared.command(
        steps,
        "show",
        "the customer's credit profile and its changes",
        ["admin customer show --order 27061900311184578"],
        handler=show,
        parents=[which],
    )
    for step, text in (
        ("ban", "ban the customer: their next orders are fraud anomalies"),
        ("lift", "lift the customer's ban"),
    ):
        sub = shared.command(
            steps,
            step,
            text,
            [f"admin customer {step} C-1a2b --reason '...'"],
            handler=change(step),
            parents=[which],
        )
        sub.add_argument("--reason", required=True, help="why: it goes on record")
