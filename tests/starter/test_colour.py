"""orderctl colours on a terminal only (a real pseudo-terminal here), never with NO_COLOR, and
with FORCE_COLOR where output is piped; what it colours stays escaped, and JSON is never
coloured (issue "Fit the ecosystem")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pseudo_terminal import on_a_terminal

REPO = Path(__file__).resolve().parents[2]
BOLD, RED, RESET = "\x1b[1m", "\x1b[31m", "\x1b[0m"

SCRIPT = """
import sys
from starter.cli import entry, format as fmt
entry._Output.json = "--json" in sys.argv
entry._to_the_terminal()
rows = [["prepare", "breached"], ["confirm", "met"], ["remark", "\\x1b]0;pwned\\x07"]]
print(fmt.table(["KEY", "STATE"], rows, mark=fmt._by_state))
entry.say_failure("no such order", 3)
"""


def _environment(**given: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return kept | given


def _piped(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_terminal_gets_colour_and_the_data_stays_escaped() -> None:
    shown = on_a_terminal([sys.executable, "-c", SCRIPT], _environment())
    assert f"{BOLD}KEY" in shown  # the header
    assert f"{RED}prepare  breached{RESET}" in shown  # a breached deadline
    assert f"{RED}orderctl: no such order{RESET}" in shown  # the error, on stderr
    assert "confirm  met" in shown and f"{RED}confirm" not in shown
    assert "\\u001b]0;pwned\\u0007" in shown and "\x1b]0;" not in shown


@pytest.mark.parametrize(
    "given",
    [{"NO_COLOR": "1"}, {"NO_COLOR": "1", "FORCE_COLOR": "1"}],
    ids=["no-color", "no-color-wins"],
)
def test_no_color_takes_it_away_on_a_terminal(given: dict[str, str]) -> None:
    shown = on_a_terminal([sys.executable, "-c", SCRIPT], _environment(**given))
    assert "\x1b" not in shown
    assert "prepare  breached" in shown and "\\u001b]0;pwned\\u0007" in shown


def test_piped_output_is_plain_unless_forced_and_json_never_coloured() -> None:
    plain = _piped(_environment())
    assert "\x1b" not in plain.stdout + plain.stderr
    assert "prepare  breached" in plain.stdout
    forced = _piped(_environment(FORCE_COLOR="1"))
    assert f"{RED}prepare  breached{RESET}" in forced.stdout
    assert f"{RED}orderctl: no such order{RESET}" in forced.stderr
    json_forced = _piped(_environment(FORCE_COLOR="1"), "--json")
    assert "\x1b" not in json_forced.stdout


HELP = [sys.executable, "-m", "starter.cli", "show", "--help"]


def test_help_is_in_orderctl_styles_on_a_terminal_and_plain_otherwise() -> None:
    """rich-argparse's help in the styles orderctl's output lets through: none of it shows as
    an escaped `\\u001b`, which a style of its own would."""
    shown = on_a_terminal(HELP, _environment())
    assert f"{BOLD}Usage:{RESET}" in shown
    assert "\x1b[32m--json\x1b[0m" in shown  # an option, green
    assert "\\u001b" not in shown
    plain = on_a_terminal(HELP, _environment(NO_COLOR="1"))
    assert "Usage: orderctl show" in plain and "\x1b[" not in plain
    piped = subprocess.run(HELP, cwd=REPO, env=_environment(), capture_output=True, text=True)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout
    assert "--json" in piped.stdout
