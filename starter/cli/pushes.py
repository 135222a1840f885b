"""`pushes` (R6.3.2): what the gateway kept for a person to see, from PostgreSQL."""

from __future__ import annotations

import argparse
from datetime import datetime

from starter.cli import format as fmt
from starter.cli.arguments import positive
from starter.cli.base import PROG, Exit, business_zone
from starter.cli.commands import Commands, offline
from starter.cli.stats import day


async def pushes(args: argparse.Namespace) -> Exit:
    """R6.3.2 what the gateway kept for a person; reads PostgreSQL, not Temporal."""
    from starter import kept_pushes

    zone = business_zone()
    first = args.since or datetime.now(zone).date()
    if args.counts:
        counts = await kept_pushes.refused_counts(first)
        print(
            fmt.dumps([c.as_json() for c in counts])
            if args.json
            else kept_pushes.render_counts(counts)
        )
        return Exit.OK
    since = datetime.combine(first, datetime.min.time(), zone)
    kept = await kept_pushes.recent(since, args.limit)
    if args.json:
        print(fmt.dumps([push.as_json() for push in kept]))
    else:
        print(kept_pushes.render(kept, zone))
    return Exit.OK


def add_parser(commands: Commands) -> None:
    sub = commands.add_parser(
        "pushes",
        help="pushes the gateway kept for a person: refused, or taken by no workflow (R6.3.2)",
        description="The pushes kept in the database, newest first, each with its reason: "
        "refused ones (bad signature, malformed, too old) and accepted ones that no workflow "
        "took (an ended order, a refund step or a privacy-number downgrade). Reads PostgreSQL "
        "(DATABASE_URL), not Temporal.",
        epilog=f"""examples:
  {PROG} pushes
  {PROG} pushes --since yesterday --limit 200 --json
  {PROG} pushes --counts --since 2026-12-01""",
    )
    sub.add_argument(
        "--since", type=day, default=None, metavar="DATE", help="first day (default today)"
    )
    sub.add_argument("--limit", type=positive, default=50, help="at most this many (50)")
    sub.add_argument(
        "--counts",
        action="store_true",
        help="refused pushes counted by day, kind and cause, kept or not",
    )
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    offline(sub, pushes)
