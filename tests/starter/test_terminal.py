"""orderctl writes control characters in the data it shows as `\\xNN`: a customer's remark
cannot drive the person's terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from starter.cli.terminal import printable

REPO = Path(__file__).resolve().parents[2]


def test_control_characters_are_shown_not_obeyed() -> None:
    remark = "请快点\x1b]0;pwned\x07\x1b[2J\x9b31m\x7f done"
    assert printable(remark) == "请快点\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x7f done"
    assert printable("line one\n\tline two") == "line one\n\tline two"


def test_orderctl_writes_through_it() -> None:
    """The console script wraps its output before anything is printed."""
    script = (
        "import sys\n"
        "from starter.cli import entry\n"
        "try:\n"
        "    entry.main(['--help'], hard_exit=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('remark: \\x1b[31mred\\x07')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.stdout.splitlines()[-1] == "remark: \\x1b[31mred\\x07"
    assert "\x1b" not in run.stdout
