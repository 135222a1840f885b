"""`completion`: a shell completion script made from the parser itself, so it knows every
command, option and choice the installed orderctl has and never goes stale.

bash: `eval "$(orderctl completion bash)"`; zsh the same with `zsh` (bash's completion through
`bashcompinit`). Completing runs no Python: the script holds the words.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

from starter.cli.base import PROG, Exit
from starter.cli.commands import Commands, offline

FUNCTION = "_orderctl"

BASH = """\
{function}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local path="" word words=""
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$path $word" in
{paths}
        esac
    done
    case "$path $prev" in
{choices}
    esac
    if [[ -z "$words" ]]; then
        case "$path" in
{commands}
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F {function} {prog}
"""

ZSH = "autoload -U +X bashcompinit && bashcompinit\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _walk(
    parser: argparse.ArgumentParser, path: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Each command's path (`/admin/token`) and its parser, the root (``) first."""
    yield path, parser
    for name, sub in _subcommands(parser).items():
        yield from _walk(sub, f"{path}/{name}")


def _words(parser: argparse.ArgumentParser) -> list[str]:
    """Its subcommands, the choices of its positional arguments, its options."""
    options = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    positional = [
        str(c)
        for a in parser._actions
        if not a.option_strings and a.choices and not isinstance(a, argparse._SubParsersAction)
        for c in a.choices
    ]
    return [*_subcommands(parser), *positional, *options, "-h"]


def _quoted(words: list[str]) -> str:
    return shlex.quote(" ".join(words))


def bash_script(root: argparse.ArgumentParser) -> str:
    """The bash function: it follows the words typed down the commands, then offers the
    choices of the option just typed, else the command's subcommands and options."""
    paths, choices, commands = [], [], []
    for path, parser in _walk(root):
        commands.append(f'            "{path}") words={_quoted(_words(parser))} ;;')
        for name in _subcommands(parser):
            paths.append(f'            "{path} {name}") path="{path}/{name}" ;;')
        for action in parser._actions:
            if action.choices is None or isinstance(action, argparse._SubParsersAction):
                continue
            values = [str(c) for c in action.choices]
            for option in action.option_strings:
                choices.append(f'        "{path} {option}") words={_quoted(values)} ;;')
    return BASH.format(
        function=FUNCTION,
        prog=PROG,
        paths="\n".join(paths),
        choices="\n".join(choices),
        commands="\n".join(commands),
    )


async def completion(args: argparse.Namespace) -> Exit:
    from starter.cli.entry import build_parser  # the whole parser, this command included

    script = bash_script(build_parser())
    print(ZSH + script if args.shell == "zsh" else script, end="")
    return Exit.OK


def add_parser(commands: Commands) -> None:
    sub = commands.add_parser(
        "completion",
        help="a shell completion script (bash or zsh)",
        description="Prints a script that completes orderctl's commands, options and choices.",
        epilog=f"""examples:
  eval "$({PROG} completion bash)"     # in ~/.bashrc
  eval "$({PROG} completion zsh)"      # in ~/.zshrc""",
    )
    sub.add_argument("shell", choices=["bash", "zsh"])
    offline(sub, completion)
