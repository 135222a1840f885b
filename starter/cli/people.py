"""Signing in: `login`, `logout`, `whoami`, and `admin token issue|revoke`, which reads and
writes PostgreSQL directly (run where DATABASE_URL reaches it)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

from infra.settings import settings
from schemas.people import Person
from starter.api.client import Api
from starter.cli import admin as admin_cli
from starter.cli.base import PROG, Exit, Failure
from starter.cli.commands import Commands, Parents, offline, say

_TTL = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def ttl(value: str) -> timedelta:
    """`30d`, `12h` or `90m`."""
    found = _TTL.match(value.strip())
    if not found or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a lifetime like 30d, 12h or 90m: {value!r}")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def keep_token(token: str, path: Path) -> None:
    """Readable by its owner only (mode 0600), written so no other user ever can read it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    path.chmod(0o600)


async def whoami(api: Api, args: argparse.Namespace) -> Exit:
    person = Person.model_validate(await api.call("GET", "/me"))
    departments = ", ".join(person.departments)
    say(
        args,
        f"{person.staff_id} {person.name} ({person.role.value}; {departments})",
        person.model_dump(mode="json"),
    )
    return Exit.OK


async def login(args: argparse.Namespace) -> Exit:
    """The token is checked with the API before it is kept."""
    from starter.api import client as api_client

    token = args.token or sys.stdin.readline().strip()
    if not token:
        raise Failure("no token given (--token, or on standard input)", Exit.USAGE)
    async with api_client.connect(args.timeout, token=token) as api:
        person = Person.model_validate(await api.call("GET", "/me"))
    path = settings().api.token_file
    keep_token(token, path)
    print(f"signed in as {person.staff_id} {person.name} ({person.role.value}); token in {path}")
    return Exit.OK


async def logout(args: argparse.Namespace) -> Exit:
    path = settings().api.token_file
    path.unlink(missing_ok=True)
    print(f"signed out: {path} removed")
    return Exit.OK


async def issue_token(args: argparse.Namespace) -> Exit:
    from infra import database as db
    from starter.api import tokens

    pool = await db.connect(max_size=1)
    try:
        await db.migrate(pool)
        token = await tokens.issue(pool, args.staff_id, args.ttl)
    finally:
        await pool.close()
    days = args.ttl.total_seconds() / 86400
    print(f"token for {args.staff_id}, valid {days:g} days, shown once: {token}")
    return Exit.OK


async def revoke_tokens(args: argparse.Namespace) -> Exit:
    from infra import database as db
    from starter.api import tokens

    pool = await db.connect(max_size=1)
    try:
        count = await tokens.revoke(pool, args.staff_id)
    finally:
        await pool.close()
    print(f"{count} token(s) of {args.staff_id} revoked")
    return Exit.OK


def add_parsers(commands: Commands, shared: Parents) -> None:
    """`login`, `logout`, `whoami` and `admin token issue|revoke`."""
    sub = commands.add_parser(
        "login",
        help="sign in with a token from an admin (kept in your config directory, mode 0600)",
        description="Sign in: the token (from `orderctl admin token issue`) is checked with "
        "the staff API and kept for the next commands. ORDERFLOW_TOKEN overrides it.",
        epilog=f"examples:\n  {PROG} login --token oft_...\n  echo oft_... | {PROG} login",
    )
    sub.add_argument("--token", help="the token (default: read from standard input)")
    sub.add_argument("--timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    offline(sub, login)
    sub = commands.add_parser("logout", help="forget the kept token")
    offline(sub, logout)
    shared.command(commands, "whoami", "who the token signs in as", ["whoami"], handler=whoami)
    _add_admin(commands, shared)


def _add_admin(commands: Commands, shared: Parents) -> None:
    admin = commands.add_parser(
        "admin",
        help="people's tokens (on PostgreSQL: DATABASE_URL); customers' bans (staff API)",
        description="Administration: tokens where DATABASE_URL reaches the database; "
        "customers through the staff API, as a signed-in admin.",
        epilog=f"""examples:
  {PROG} admin token issue S-101 --ttl 30d
  {PROG} admin token revoke S-101
  {PROG} admin customer ban --order 27061900311184578 --reason '刷单'""",
    )
    areas = admin.add_subparsers(dest="area", metavar="AREA", required=True)
    token = areas.add_parser("token", help="issue or revoke sign-in tokens")
    steps = token.add_subparsers(dest="step", metavar="STEP", required=True)
    sub = steps.add_parser("issue", help="a new token for a person, printed once")
    sub.add_argument("staff_id", metavar="STAFF_ID")
    sub.add_argument("--ttl", type=ttl, default=timedelta(days=30), help="lifetime (30d)")
    offline(sub, issue_token)
    sub = steps.add_parser("revoke", help="every token of a person")
    sub.add_argument("staff_id", metavar="STAFF_ID")
    offline(sub, revoke_tokens)
    admin_cli.add_customer_area(areas, shared)
    admin_cli.add_people_area(areas, shared)
    admin_cli.add_stock_area(areas, shared)
    admin_cli.add_store_area(areas, shared)
