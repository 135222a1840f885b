"""The `orderctl` console script: the parser assembled from the command groups, and the one
place where a failure becomes a line on stderr and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

from pydantic import ValidationError

from infra.logging import configure_logging
from infra.settings import settings
from starter.api import client as api_client
from starter.cli import (
    aftersales,
    anomalies,
    completion,
    customer,
    dev,
    doctor,
    lifecycle,
    measures,
    orders,
    people,
    pushes,
    stats,
    work,
)
from starter.cli.arguments import WHEN_HELP, explain_invalid
from starter.cli.base import PROG, Exit, Failure, business_zone
from starter.cli.commands import Builder, Formatter, Handler, Offline, Parents
from starter.cli.terminal import Palette, PrintableStream, Style, colour_wanted, printable

EPILOG = f"""\
examples:
  {PROG} list --stage in_progress --store SH-XH-001
  {PROG} show 27061900311184578
  {PROG} confirm 27061900311184578 --delivery-at +90m --promises "少放辣"
  {PROG} anomalies
  {PROG} anomaly decide 27061900311184578 --decision dismiss \\
      --cause "address checked by phone" --responsibility customer

times: {WHEN_HELP}.

sign in first: an admin runs `{PROG} admin token issue S-101`, then `{PROG} login`.
Every action is taken as the signed-in person (no --by): the staff API checks their role.

environment:
  ORDERFLOW_API_URL     the staff API (default http://127.0.0.1:8082)
  ORDERFLOW_TOKEN       the sign-in token (default: the one `{PROG} login` kept)
  DATABASE_URL          for `admin`, `stats` and `pushes`, which read PostgreSQL directly
  ORDERFLOW_TIMEZONE    the business's zone for naive times and display (Asia/Shanghai)
  NO_COLOR              any value: no colour (FORCE_COLOR: colour where output is piped)

exit codes:
  0 done  1 other failure  2 bad arguments  3 unknown order or anomaly
  4 not allowed now (the workflow's reason, or it already ended)
  5 the staff API or Temporal unreachable  6 no worker answered in time
  7 not signed in (no, a bad, an expired or a revoked token) or not allowed to
"""


class Parser(argparse.ArgumentParser):
    """A mistake in the arguments is a JSON error too when the caller asked for JSON. Every
    command's help in one layout (`Formatter`), its subcommands' included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if _Output.json:
            say_failure(f"{self.prog}: {message}", Exit.USAGE)
            sys.exit(Exit.USAGE)
        super().error(message)


class _Output:
    json = False  # `--json` among the arguments: failures are JSON as well


def say_failure(message: str, code: int) -> None:
    """One line for a person on stderr; with `--json`, `{"error", "code", "kind"}` on stdout,
    where the caller reads the answer, and the same exit code."""
    if not _Output.json:
        line = message if message.startswith(f"{PROG}:") else f"{PROG}: {message}"
        colour = isinstance(sys.stderr, PrintableStream) and sys.stderr.colour
        print(
            f"\x1b[{Style.RED.value}m{printable(line)}\x1b[0m" if colour else line, file=sys.stderr
        )
        return
    kind = Exit(code).name.lower() if code in Exit._value2member_map_ else "failed"
    text = message.removeprefix(f"{PROG}: ")
    print(json.dumps({"error": text, "code": int(code), "kind": kind}, ensure_ascii=False))


def version() -> str:
    try:
        return metadata.version("orderflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The commands in the order `orderctl -h` lists them: reading, the lifecycle, after-sales,
    anomalies, the customer's side, then what reads PostgreSQL or runs the local stack."""
    parser: argparse.ArgumentParser = Parser(
        prog=PROG,
        description="Act on orders and see where they stand (orderflow on Temporal).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = Parents.make()
    orders.add_parsers(commands, shared)
    work.add_parsers(commands, shared)
    anomalies.add_inbox_parser(commands, shared)
    lifecycle.add_parsers(commands, shared)
    aftersales.add_parsers(commands, shared)
    anomalies.add_decide_parser(commands, shared)
    customer.add_parsers(commands, shared)
    people.add_parsers(commands, shared)
    # statistics (R4.3, R7.2) and the gateway's kept pushes: PostgreSQL only
    stats.add_parsers(commands)
    measures.add_parsers(commands, shared)
    pushes.add_parser(commands)
    doctor.add_parser(commands)
    dev.add_parser(commands)
    completion.add_parser(commands)
    return parser


async def _run(args: argparse.Namespace) -> Exit:
    run_offline: Offline | None = args.offline
    if run_offline is not None:
        return await run_offline(args)  # the database, or the local stack: no staff API
    handler: Handler = args.handler
    async with api_client.connect(args.timeout) as api:
        return await handler(api, args)


def main(argv: Sequence[str] | None = None, *, hard_exit: bool = True) -> int:
    """The console script. Once Temporal was used the process leaves with `os._exit`: the SDK
    core's threads can crash CPython's finalization of a short-lived client process
    (temporalio/sdk-python#300, about one run in ten here), after the output was right."""
    _Output.json = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        business_zone()
    except ValueError as err:
        say_failure(str(err), Exit.USAGE)
        return Exit.USAGE
    _to_the_terminal()
    configure_logging("WARNING")
    parser = build_parser()
    args = parser.parse_args(argv)
    build: Builder | None = args.build
    if build is not None:
        try:
            args.message = build(args)
        except ValidationError as err:
            args.parser.error(explain_invalid(err))
    code = _execute(args)
    if hard_exit:
        _leave(code)
    return code


def _to_the_terminal() -> None:
    """Escaped output everywhere; colour on a terminal, never in JSON or with NO_COLOR."""
    terminal = settings().terminal
    if not isinstance(sys.stdout, PrintableStream):
        wanted = colour_wanted(sys.stdout, terminal) and not _Output.json
        sys.stdout = PrintableStream(sys.stdout, colour=wanted)
    if not isinstance(sys.stderr, PrintableStream):
        sys.stderr = PrintableStream(sys.stderr, colour=colour_wanted(sys.stderr, terminal))
    Palette.on = isinstance(sys.stdout, PrintableStream) and sys.stdout.colour


def _execute(args: argparse.Namespace) -> int:
    try:
        return int(asyncio.run(_run(args)))
    except Failure as failure:
        say_failure(failure.message, failure.code)
        return int(failure.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return Exit.OK
    except Exception as err:  # a person gets one line, not a traceback
        say_failure(f"unexpected {type(err).__name__}: {err}", Exit.FAILED)
        return Exit.FAILED


def _leave(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
