"""`orderctl ... --json` answers a failure in JSON too, where the caller reads the answer:
`{"error", "code", "kind"}` on stdout with the exit code; without `--json`, one line on stderr."""

from __future__ import annotations

import json

import pytest

from starter.cli import entry
from starter.failures import Exit

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing answers


def _run(argv: list[str]) -> int:
    try:
        return entry.main(argv, hard_exit=False)
    except SystemExit as leaving:  # argparse leaves on a usage error
        return int(leaving.code or 0)


def test_an_unreachable_api_is_a_json_error_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDERFLOW_API_URL", NOWHERE)
    monkeypatch.setenv("ORDERFLOW_TOKEN", "t")
    assert _run(["show", "123", "--json"]) == Exit.UNREACHABLE
    out, err = capsys.readouterr()
    answer = json.loads(out)
    assert answer["code"] == Exit.UNREACHABLE and answer["kind"] == "unreachable"
    assert answer["error"].startswith("cannot reach the staff API") and err == ""


def test_a_usage_mistake_is_a_json_error_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["show", "--json"]) == Exit.USAGE
    answer = json.loads(capsys.readouterr().out)
    assert answer["code"] == Exit.USAGE and "ORDER" in answer["error"]


def test_without_json_a_person_gets_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDERFLOW_API_URL", NOWHERE)
    monkeypatch.setenv("ORDERFLOW_TOKEN", "t")
    assert _run(["show", "123"]) == Exit.UNREACHABLE
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("orderctl: cannot reach the staff API")
    assert err.count("\n") == 1
