"""orderctl writes control characters in the data it shows as `\\uNNNN`: a customer's remark
cannot drive the person's terminal, and `--json` output stays JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from starter.cli.terminal import printable

REPO = Path(__file__).resolve().parents[2]


def test_control_characters_are_shown_not_obeyed() -> None:
    remark = "请快点\x1b]0;pwned\x07\x1b[2J\x9b31m\x7f\u202edone"
    shown = "请快点\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u007f\\u202edone"
    assert printable(remark) == shown
    assert printable("line one\n\tline two") == "line one\n\tline two"


def test_json_output_stays_json_with_the_same_text() -> None:
    """`--json` dumps with ensure_ascii=False, so DEL and C1 reach the stream raw."""
    remark = "快\x7f点\x9b31m\u202e"
    written = printable(json.dumps({"remarks": remark}, ensure_ascii=False))
    assert json.loads(written) == {"remarks": remark}
    assert not any(c in written for c in "\x7f\x9b\u202e")


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
    assert run.stdout.splitlines()[-1] == "remark: \\u001b[31mred\\u0007"
    assert "\x1b" not in run.stdout
