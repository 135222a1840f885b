"""`orderctl admin customer|person|stock|store`: a customer's credit and bans (R5.3.3), people
and their skills (R7.1), a store's stock (R2.2.1), its hours and own policy terms, through the
staff API as the signed-in admin; each change audited."""

from __future__ import annotations

import argparse
import json
from typing import Any

from schemas.admin import CustomerProfile, PersonView, StockLine, StoreView
from schemas.people import Role
from starter.api.admin import BY_ORDER
from starter.api.client import Api
from starter.cli import format as fmt
from starter.cli.arguments import keyword, order_id
from starter.cli.base import Exit, business_zone
from starter.cli.commands import Commands, Parents, say


def _reason() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--reason", required=True, help="why: it goes on record")
    return parent


REASON = _reason()
"""--reason, on every change an admin makes: it goes into the audit."""


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
        say(args, line, found.model_dump(mode="json"))
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
        shared.command(
            steps,
            step,
            text,
            [f"admin customer {step} C-1a2b --reason '...'"],
            handler=change(step),
            parents=[which, REASON],
        )


def _skills(value: str) -> tuple[str, int]:
    skill, sep, level = value.partition("=")
    if not sep or not level.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: a skill is NAME=LEVEL, e.g. hot_dishes=3")
    return skill, int(level)


def _print_person(args: argparse.Namespace, answer: Any) -> None:
    p = PersonView.model_validate(answer)
    skills = ", ".join(f"{k}={v}" for k, v in sorted(p.skills.items())) or "none"
    line = (
        f"{p.staff_id} {p.name}: {p.role.value} of {p.department} ({p.region}), "
        f"capacity {p.capacity}, {'active' if p.active else 'disabled'}; skills {skills}"
    )
    say(args, line, p.model_dump(mode="json"))


async def person_show(api: Api, args: argparse.Namespace) -> Exit:
    _print_person(args, await api.call("GET", f"/admin/people/{args.staff_id}"))
    return Exit.OK


async def person_add(api: Api, args: argparse.Namespace) -> Exit:
    body = {
        "staff_id": args.staff_id,
        "name": args.name,
        "department": args.department,
        "role": args.role,
        "capacity": args.capacity,
        "reason": args.reason,
    }
    _print_person(args, await api.call("POST", "/admin/people", json=body))
    return Exit.OK


async def person_set(api: Api, args: argparse.Namespace) -> Exit:
    body = {
        "department": args.department,
        "role": args.role,
        "capacity": args.capacity,
        "active": args.active,
        "reason": args.reason,
    }
    path = f"/admin/people/{args.staff_id}"
    answer = await api.call("POST", path, json={k: v for k, v in body.items() if v is not None})
    _print_person(args, answer)
    return Exit.OK


async def person_skills(api: Api, args: argparse.Namespace) -> Exit:
    body = {"skills": dict(args.skills), "reason": args.reason}
    _print_person(args, await api.call("PUT", f"/admin/people/{args.staff_id}/skills", json=body))
    return Exit.OK


def _print_stock(args: argparse.Namespace, rows: list[Any]) -> None:
    stock = [StockLine.model_validate(r) for r in rows]
    if args.json:
        print(fmt.dumps([s.model_dump(mode="json") for s in stock]))
        return
    print(
        fmt.table(
            ["SKU", "NAME", "ON HAND", "RESERVED", "LOW WATER"],
            [[s.sku, s.name, str(s.on_hand), str(s.reserved), str(s.low_water)] for s in stock],
        )
    )


async def stock_show(api: Api, args: argparse.Namespace) -> Exit:
    _print_stock(args, await api.call("GET", f"/admin/stock/{args.store}"))
    return Exit.OK


async def stock_move(api: Api, args: argparse.Namespace) -> Exit:
    path = f"/admin/stock/{args.store}/{args.sku}/{args.step}"
    body: dict[str, Any] = {"reason": args.reason}
    body |= {"quantity": args.quantity} if args.step == "restock" else {"on_hand": args.on_hand}
    _print_stock(args, [await api.call("POST", path, json=body)])
    return Exit.OK


def add_people_area(areas: Commands, shared: Parents) -> None:
    area = areas.add_parser("person", help="people, their roles and skills (admins; audited)")
    steps = area.add_subparsers(dest="step", metavar="STEP", required=True)
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("staff_id", type=keyword, metavar="STAFF_ID")
    shared.command(
        steps, "show", "a person", ["admin person show S-101"], handler=person_show, parents=[who]
    )
    sub = shared.command(
        steps,
        "add",
        "a new person (R7.1)",
        [
            "admin person add S-201 --name 王五 --department KITCHEN-XH --role staff --capacity 3 "
            "--reason 入职"
        ],
        handler=person_add,
        parents=[who, REASON],
    )
    sub.add_argument("--name", required=True)
    sub.add_argument("--department", required=True, type=keyword)
    sub.add_argument("--role", required=True, choices=[r.value for r in Role])
    sub.add_argument("--capacity", required=True, type=int, help="orders at once")
    sub = shared.command(
        steps,
        "set",
        "move, re-role, re-load, disable or enable a person",
        ["admin person set S-201 --inactive --reason 离职"],
        handler=person_set,
        parents=[who, REASON],
    )
    sub.add_argument("--department", type=keyword)
    sub.add_argument("--role", choices=[r.value for r in Role])
    sub.add_argument("--capacity", type=int)
    sub.add_argument("--active", dest="active", action="store_true", default=None)
    sub.add_argument("--inactive", dest="active", action="store_false")
    sub = shared.command(
        steps,
        "skills",
        "a person's skills with levels 1-5 (the set replaces theirs)",
        ["admin person skills S-201 hot_dishes=3 cold_dishes=2 --reason 考核"],
        handler=person_skills,
        parents=[who, REASON],
    )
    sub.add_argument("skills", nargs="+", type=_skills, metavar="SKILL=LEVEL")


def add_stock_area(areas: Commands, shared: Parents) -> None:
    area = areas.add_parser("stock", help="a store's stock: restock, count (admins; audited)")
    steps = area.add_subparsers(dest="step", metavar="STEP", required=True)
    sub = shared.command(
        steps, "show", "a store's stock", ["admin stock show SH-XH-001"], handler=stock_show
    )
    sub.add_argument("store", type=keyword, metavar="STORE")
    for step, text, example in (
        ("restock", "goods arrived: on hand goes up", "restock SH-XH-001 G-HSR 20"),
        ("count", "a count: on hand is what was counted", "count SH-XH-001 G-HSR --on-hand 15"),
    ):
        sub = shared.command(
            steps,
            step,
            text,
            [f"admin stock {example} --reason ..."],
            handler=stock_move,
            parents=[REASON],
        )
        sub.add_argument("store", type=keyword, metavar="STORE")
        sub.add_argument("sku", type=keyword, metavar="SKU")
        if step == "restock":
            sub.add_argument("quantity", type=int, metavar="QUANTITY")
        else:
            sub.add_argument("--on-hand", type=int, required=True)


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise argparse.ArgumentTypeError(f"{text!r}: days are 1-7 (Monday is 1), e.g. 1-5")
        days += range(int(first), int(last or first) + 1)
    return days


def opening(value: str) -> list[dict[str, Any]]:
    """`1-5=10:00-14:00,17:00-22:00`: days, then their ranges."""
    days, sep, ranges = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{value!r}: hours are DAYS=HH:MM-HH:MM[,...]")
    out = []
    for span in ranges.split(","):
        opens, dash, closes = span.partition("-")
        if not dash:
            raise argparse.ArgumentTypeError(f"{span!r}: a range is HH:MM-HH:MM")
        out += [{"weekday": d, "opens": opens, "closes": closes} for d in _days(days)]
    return out


def term(value: str) -> tuple[list[str], Any]:
    """`deadlines.prepare.minutes=20`: a path into the type's terms, and its value (JSON)."""
    path, sep, raw = value.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"{value!r}: a term is PATH=VALUE")
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    return path.split("."), parsed


def _nested(pairs: list[tuple[list[str], Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in pairs:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def _print_store(args: argparse.Namespace, answer: Any) -> None:
    s = StoreView.model_validate(answer)
    if args.json:
        print(fmt.dumps(s.model_dump(mode="json")))
        return
    hours = ", ".join(f"{h.weekday} {h.opens:%H:%M}-{h.closes:%H:%M}" for h in s.hours)
    deadlines = s.effective.deadlines.model_dump(mode="json")
    print(
        fmt.pairs(
            [
                ("store", f"{s.store_code} {s.name} ({s.order_type})"),
                ("hours", hours or "always open"),
                ("own terms", json.dumps(s.terms, ensure_ascii=False) if s.terms else "none"),
                ("deadlines", json.dumps(deadlines, ensure_ascii=False)),
                *([("problem", s.problem)] if s.problem else []),
            ]
        )
    )


async def store_show(api: Api, args: argparse.Namespace) -> Exit:
    _print_store(args, await api.call("GET", f"/admin/stores/{args.store}"))
    return Exit.OK


async def store_hours(api: Api, args: argparse.Namespace) -> Exit:
    hours = [h for group in args.hours for h in group]
    path = f"/admin/stores/{args.store}/hours"
    _print_store(args, await api.call("PUT", path, json={"hours": hours, "reason": args.reason}))
    return Exit.OK


async def store_terms(api: Api, args: argparse.Namespace) -> Exit:
    body = {"terms": _nested(args.terms), "reason": args.reason}
    _print_store(args, await api.call("PUT", f"/admin/stores/{args.store}/terms", json=body))
    return Exit.OK


def add_store_area(areas: Commands, shared: Parents) -> None:
    area = areas.add_parser("store", help="a store's hours and own policy terms (admins)")
    steps = area.add_subparsers(dest="step", metavar="STEP", required=True)
    which = argparse.ArgumentParser(add_help=False)
    which.add_argument("store", type=keyword, metavar="STORE")
    shared.command(
        steps,
        "show",
        "the store's hours, own terms and the deadlines its orders take",
        ["admin store show SH-XH-001"],
        handler=store_show,
        parents=[which],
    )
    sub = shared.command(
        steps,
        "hours",
        "when the store is open (replaces its hours; none given: always open)",
        ["admin store hours SH-XH-001 1-5=10:00-14:00,17:00-22:00 6-7=10:00-22:00 --reason ..."],
        handler=store_hours,
        parents=[which, REASON],
    )
    sub.add_argument("hours", nargs="*", type=opening, metavar="DAYS=HH:MM-HH:MM[,...]")
    sub = shared.command(
        steps,
        "terms",
        "the store's own policy terms over its type's (none given: cleared)",
        ["admin store terms SH-XH-001 deadlines.prepare.minutes=20 --reason 午高峰"],
        handler=store_terms,
        parents=[which, REASON],
    )
    sub.add_argument("terms", nargs="*", type=term, metavar="PATH=VALUE")
