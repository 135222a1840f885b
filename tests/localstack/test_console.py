"""The demo's status: one line rewritten in place on a terminal with the other lines above it,
plain lines now and then elsewhere (issue "Fit the ecosystem")."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from localstack.console import CLEAR_LINE, LiveConsole
from tests.pseudo_terminal import on_a_terminal

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_the_status_is_rewritten_and_lines_go_above_it() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = LiveConsole(out, live=True)
    console.status("t+1s  received 1")
    console.status("t+2s  received 2")
    console.say("gateway ready")
    console.above(err).write("WARN the platform answered slowly\n")
    console.close()
    written = out.getvalue()
    assert written == (
        f"{CLEAR_LINE}t+1s  received 1"
        f"{CLEAR_LINE}t+2s  received 2"
        f"{CLEAR_LINE}gateway ready\nt+2s  received 2"
        f"{CLEAR_LINE}t+2s  received 2"  # cleared for the log line, drawn again after it
        "\n"
    )
    assert err.getvalue() == "WARN the platform answered slowly\n"


def test_elsewhere_plain_lines_and_the_status_now_and_then() -> None:
    out, clock = io.StringIO(), Clock()
    console = LiveConsole(out, live=False, plain_every_s=10, clock=clock)
    for second in range(25):
        clock.now = second
        console.status(f"t+{second}s")
    console.say("collecting the summary")
    console.close()
    assert out.getvalue() == "t+0s\nt+10s\nt+20s\ncollecting the summary\n"
    assert "\x1b" not in out.getvalue()
    err = io.StringIO()
    assert console.above(err) is err


def test_live_only_on_a_terminal() -> None:
    script = (
        "import sys\n"
        "from localstack.console import LiveConsole\n"
        "print(LiveConsole.for_terminal(sys.stdout).live)\n"
    )
    piped = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert piped.stdout.strip() == "False"
    shown = on_a_terminal([sys.executable, "-c", script])
    assert shown.strip() == "True"
