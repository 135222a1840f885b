"""The statistics of a period (R4.3, R7.2): `stats` on the terminal and `report` as one HTML
file. Both read PostgreSQL only, so they work with Temporal down."""

from __future__ import annotations

import argparse
from datetime import date

import analytics as st
from starter.cli import format as fmt
from starter.cli.base import PROG, Exit, Failure
from starter.cli.commands import Commands, offline


async def stats(args: argparse.Namespace) -> Exit:
    """R4.3 the statistics of a period; reads PostgreSQL, not Temporal."""
    try:
        figures = await st.collect(period_of(args), args.by, refreshing=not args.no_refresh)
    except st.StatsError as err:
        raise Failure(str(err), Exit.FAILED) from None
    print(fmt.dumps(figures) if args.json else st.render(figures))
    return Exit.OK


async def report(args: argparse.Namespace) -> Exit:
    """R4.3 the statistics as one self-contained HTML file."""
    from analytics import report as html  # matplotlib only when a report is made

    try:
        written = await html.write(args.out, period_of(args))
    except st.StatsError as err:
        raise Failure(str(err), Exit.FAILED) from None
    except OSError as err:
        raise Failure(f"cannot write {args.out}: {err.strerror or err}", Exit.FAILED) from None
    print(f"report for {written.period.label()} written to {written.path}")
    return Exit.OK


def period_of(args: argparse.Namespace) -> st.Period:
    try:
        return st.period_of(args.start, args.end)
    except ValueError as err:
        raise Failure(str(err), Exit.USAGE) from None


def day(value: str) -> date:
    try:
        return st.parse_day(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_parsers(commands: Commands) -> None:
    """`stats` and `report`, which share --from and --to."""
    period = argparse.ArgumentParser(add_help=False)
    period.add_argument(
        "--from", dest="start", type=day, metavar="DATE", help="first day (default today)"
    )
    period.add_argument("--to", dest="end", type=day, metavar="DATE", help="last day, included")
    sub = commands.add_parser(
        "stats",
        help="statistics of a period, compared with the one before, with findings (R4.3)",
        description="Statistics of a period (business days in Asia/Shanghai), compared with the "
        "period of the same length before it, with what stands out and the staff scorecards "
        "(R4.3, R7.2). Reads PostgreSQL (DATABASE_URL), not Temporal.",
        epilog=f"""examples:
  {PROG} stats
  {PROG} stats --from 2025-06-01 --to 2025-06-30 --by store
  {PROG} stats --from yesterday --json""",
        parents=[period],
    )
    sub.add_argument("--by", choices=st.GROUPS, help="figures per store, region, type or hour")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument(
        "--no-refresh",
        action="store_true",
        help="read the rollup as the workers last refreshed it, even as a role that may write "
        "it (the reporting role never refreshes it)",
    )
    offline(sub, stats)

    sub = commands.add_parser(
        "report",
        help="the statistics as one self-contained HTML file with charts (R4.3)",
        description="The statistics of a period as one HTML file with its charts inline: "
        "readable offline, nothing loaded from the network.",
        epilog=f"""examples:
  {PROG} report --out today.html
  {PROG} report --out june.html --from 2025-06-01 --to 2025-06-30""",
        parents=[period],
    )
    sub.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    offline(sub, report)
