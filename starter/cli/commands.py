"""How a command is declared: its parser with the shared options and examples, its handler, and
the pure builder of its message (so bad arguments fail before any connection).

Each command group (`starter/cli/orders.py`, `lifecycle.py`, ...) adds its parsers through
`Parents.command`, so every command gets the same `--timeout`/`--json` and help layout.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from pydantic import BaseModel
from rich.console import Console
from rich.style import StyleType
from rich_argparse import RawDescriptionRichHelpFormatter

from schemas.messages import UpdateResult
from starter.api.client import Api
from starter.cli import format as fmt
from starter.cli.arguments import order_id, seconds
from starter.cli.base import DEFAULT_TIMEOUT, PROG, Exit
from starter.cli.terminal import Palette

Handler = Callable[[Api, argparse.Namespace], Awaitable[Exit]]
Builder = Callable[[argparse.Namespace], BaseModel]
Offline = Callable[[argparse.Namespace], Awaitable[Exit]]
"""A command that reads PostgreSQL or runs the local stack: no staff API involved."""

ME = "me"
"""The actor a command's message is built with so it validates before any request; the staff
API replaces it with the signed-in person, whatever it says."""
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Formatter(RawDescriptionRichHelpFormatter):
    """Help as today's Python tools show it (rich-argparse): in colour on a terminal, plain
    when piped or under NO_COLOR; examples and epilogs keep their lines. In orderctl's own
    styles (`terminal.Style`), the only ones its output lets through."""

    styles: ClassVar[dict[str, StyleType]] = {
        "argparse.args": "green",
        "argparse.groups": "bold",
        "argparse.help": "",
        "argparse.metavar": "yellow",
        "argparse.syntax": "bold",
        "argparse.text": "",
        "argparse.prog": "bold",
        "argparse.default": "dim",
    }

    def __init__(self, prog: str, *args: Any, **kwargs: Any) -> None:
        """Styled exactly when orderctl's own output is (`Palette.on`: a terminal, no
        NO_COLOR); Rich's own choice would keep bold under NO_COLOR."""
        styled = Palette.on
        console = Console(force_terminal=styled, color_system="standard" if styled else None)
        super().__init__(prog, *args, console=console, **kwargs)


@dataclass(frozen=True)
class Parents:
    """The argument sets several commands share, made once per parser."""

    common: argparse.ArgumentParser
    """--timeout and --json, on every command that goes through the staff API."""
    order: argparse.ArgumentParser
    """ORDER, the platform's order_id."""

    @classmethod
    def make(cls) -> Parents:
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument(
            "--timeout",
            type=seconds,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"how long to wait for a worker's answer (default {DEFAULT_TIMEOUT:g})",
        )
        common.add_argument("--json", action="store_true", help="machine-readable output")
        order = argparse.ArgumentParser(add_help=False)
        order.add_argument("order", type=order_id, metavar="ORDER", help="the platform's order_id")
        return cls(common, order)

    def command(
        self,
        group: Commands,
        name: str,
        help_text: str,
        examples: Sequence[str],
        *,
        handler: Handler,
        build: Builder | None = None,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> argparse.ArgumentParser:
        """A command through the staff API, connected before `handler` runs."""
        sub = group.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[*parents, self.common],
            epilog="examples:\n" + "\n".join(f"  {PROG} {e}" for e in examples),
        )
        sub.set_defaults(handler=handler, build=build, parser=sub, offline=None)
        return sub


def offline(sub: argparse.ArgumentParser, run: Offline) -> None:
    """`sub` runs `run` without connecting to Temporal."""
    sub.set_defaults(handler=None, build=None, parser=sub, offline=run)


def say(args: argparse.Namespace, line: str, payload: Any) -> None:
    print(fmt.dumps(payload) if getattr(args, "json", False) else line)


def action(update: str) -> Handler:
    """An update on the order; the answer is the workflow's own message."""

    async def run(api: Api, args: argparse.Namespace) -> Exit:
        answer = await api.update(args.order, update, args.message)
        result = UpdateResult(stage=answer["stage"], message=answer["message"])
        say(
            args,
            f"order {args.order}: {result.message} (stage {result.stage.value})",
            {"order_id": args.order, "update": update, **result.model_dump(mode="json")},
        )
        return Exit.OK

    return run
