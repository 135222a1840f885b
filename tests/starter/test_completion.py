"""`orderctl completion bash` completes in a real bash: commands, nested commands, options and
their choices, from the parser itself, so every command orderctl has is offered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.order import Stage
from starter.cli.completion import _subcommands, _walk
from starter.cli.entry import build_parser

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed")


def _made(shell: str) -> str:
    """`orderctl completion <shell>`, run as a person runs it."""
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", "completion", shell],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "orderctl.bash"
    path.write_text(_made("bash"))
    return path


def _complete(script: Path, *typed: str) -> list[str]:
    """What bash offers for `orderctl <typed>`, the last word being completed."""
    words = " ".join(f"'{w}'" for w in ("orderctl", *typed))
    program = (
        f"source '{script}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); "
        '_orderctl; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    run = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return [line for line in run.stdout.splitlines() if line]


def test_commands_nested_commands_options_and_choices(script: Path) -> None:
    assert _complete(script, "adm") == ["admin"]
    assert "token" in _complete(script, "admin", "")
    assert sorted(_complete(script, "admin", "token", "")) == ["--help", "-h", "issue", "revoke"]
    assert _complete(script, "list", "--st") == ["--stage", "--store"]
    assert _complete(script, "list", "--stage", "") == [s.value for s in Stage]
    assert _complete(script, "list", "--stage", "in") == ["in_progress"]
    assert _complete(script, "completion", "") == ["bash", "zsh", "--help", "-h"]
    assert _complete(script, "show", "123", "--js") == ["--json"]


def test_every_command_is_offered_where_it_belongs(script: Path) -> None:
    for path, parser in _walk(build_parser()):
        typed = [w for w in path.split("/") if w]
        offered = set(_complete(script, *typed, ""))
        assert set(_subcommands(parser)) <= offered, path


def test_zsh_gets_the_same_through_bashcompinit() -> None:
    made = _made("zsh")
    assert made.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -F _orderctl orderctl" in made
