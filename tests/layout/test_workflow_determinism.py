"""Workflow code makes no call whose answer differs on replay: the wall clock, randomness, the
environment, files, the network. The sandbox refuses them only on the paths a run takes, and
only when `workflows` is not passed through (`ORDERFLOW_SANDBOX_PASSTHROUGH`); this reads every
path of every workflow module, whatever the worker's configuration."""

from __future__ import annotations

import ast
from pathlib import Path

WORKFLOWS = Path(__file__).parents[2] / "workflows"

# module -> names in it a workflow must not call or read (None: the whole module)
FORBIDDEN: dict[str, set[str] | None] = {
    "datetime": {"now", "utcnow", "today"},  # the module or its class: `datetime.now()`
    "date": {"today"},  # `from datetime import date`: `date.today()`
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "sleep"},
    "uuid": {"uuid1", "uuid4"},
    "os": {"environ", "getenv", "urandom"},
    "random": None,
    "secrets": None,
    "threading": None,
    "subprocess": None,
    "socket": None,
    "httpx": None,
    "asyncpg": None,
}
_BUILTINS = {"open", "input"}


def findings(source: str, name: str = "<source>") -> list[str]:
    """Each forbidden call, read or import in `source`, as `name:line: what`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        what = _forbidden(node)
        if what:
            found.append(f"{name}:{getattr(node, 'lineno', 0)}: {what}")
    return found


def _forbidden(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        banned = [a.name for a in node.names if FORBIDDEN.get(a.name.split(".")[0], ()) is None]
        return f"import {', '.join(banned)}" if banned else None
    if isinstance(node, ast.ImportFrom) and node.module:
        root = node.module.split(".")[0]
        names = FORBIDDEN.get(root, ())
        banned = [a.name for a in node.names if names is None or a.name in names]
        return f"from {node.module} import {', '.join(banned)}" if banned else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        owner, attr = node.value.id, node.attr
        names = FORBIDDEN.get(owner, ())
        if names is None or attr in names:
            return f"{owner}.{attr}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _BUILTINS:
        return f"{node.func.id}()"
    return None


def test_workflow_code_calls_nothing_that_differs_on_replay() -> None:
    found = [
        finding
        for path in sorted(WORKFLOWS.rglob("*.py"))
        for finding in findings(path.read_text(encoding="utf-8"), str(path.relative_to(WORKFLOWS)))
    ]
    assert found == []


def test_the_check_sees_what_it_forbids() -> None:
    source = """
import random
from datetime import datetime
from time import monotonic
import time, uuid, os
def f():
    datetime.now(); time.time(); uuid.uuid4(); os.environ["X"]; open("f"); random.random()
from workflows.order import patches  # allowed
def g(clock):
    return clock.now() + datetime(2026, 1, 1).timestamp()  # allowed: not the wall clock
"""
    found = sorted(f.split(": ", 1)[1] for f in findings(source))
    assert found == sorted(
        [
            "import random",
            "from time import monotonic",
            "datetime.now",
            "time.time",
            "uuid.uuid4",
            "os.environ",
            "random.random",
            "open()",
        ]
    )
