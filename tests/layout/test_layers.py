"""The layout's rules, checked on the source: imports run down the layers only, modules and
functions stay small, and the contract's names are spelled in the contract alone.

docs/architecture.md explains the layers; this is what keeps them true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.contract import Event, deadline_key_prefix
from schemas.order import Stage
from schemas.policy import Clause

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("schemas",),
    ("infra",),
    ("meituan",),
    ("activities",),
    ("workflows",),
    ("analytics",),
    ("workers",),
    ("starter",),
    ("localstack",),
    ("starter.cli",),
)
"""Lowest first. A module imports its own package and the layers below its own, never a peer
of its layer nor anything above. `starter.cli` is the outermost shell: `orderctl` reaches
everything, the local stack included; the rest of `starter/` is what production deploys."""

MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80


def _home(module: str) -> tuple[int, str] | None:
    found: tuple[int, str] | None = None
    for level, packages in enumerate(LAYERS):
        for package in packages:
            owns = module == package or module.startswith(f"{package}.")
            if owns and (found is None or len(package) > len(found[1])):
                found = (level, package)
    return found


def _production() -> Iterator[tuple[str, Path]]:
    for package in {p for layer in LAYERS for p in layer if "." not in p}:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts).removesuffix(".__init__"), path


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _upward(module: str, tree: ast.AST) -> list[str]:
    home = _home(module)
    assert home is not None
    wrong = []
    for line, imported in _imports(tree):
        target = _home(imported)
        if target is None or target[1] == home[1]:
            continue
        if target[0] >= home[0]:
            wrong.append(f"{module}:{line} imports {imported} ({target[1]} is not below {home[1]})")
    return wrong


def test_imports_run_down_the_layers_only() -> None:
    wrong = [
        w for module, path in _production() for w in _upward(module, ast.parse(path.read_text()))
    ]
    assert wrong == []


def test_the_check_sees_an_import_that_runs_up() -> None:
    tree = ast.parse("from starter.gateway import app\nfrom schemas.order import Stage\n")
    assert _upward("activities.orders", tree) == [
        "activities.orders:1 imports starter.gateway (starter is not below activities)",
        "activities.orders:1 imports starter.gateway.app (starter is not below activities)",
    ]
    assert _upward("analytics.stats", ast.parse("import workers.main\n")) != []  # peers
    assert _upward("starter.cli.main", ast.parse("import localstack.dev\n")) == []


def test_modules_and_functions_stay_small() -> None:
    large = []
    for module, path in _production():
        text = path.read_text()
        if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
            large.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    large.append(f"{module}.{node.name}: {length} lines")
    assert large == []


# Names that are the contract's alone: every event but a stage's (a stage's name is the
# stage's own, used wherever stages are), and the per-case deadline keys' prefixes.
_STAGES = {stage.value for stage in Stage}
_CONTRACT_NAMES = sorted(
    {event.value for event in Event if event.value not in _STAGES}
    | {f"{deadline_key_prefix(clause)}#" for clause in Clause}
)


def _spelled(text: str) -> set[str]:
    """Contract names a string literal spells: the whole literal, or quoted inside SQL. A
    one-word name ('ready', 'progress') is also plain English and a command's name, so only
    its quoted use counts."""
    found = {text} & {name for name in _CONTRACT_NAMES if "_" in name or "#" in name}
    found |= {name for name in _CONTRACT_NAMES if f"'{name}" in text}
    return found


@pytest.mark.parametrize(
    "package", ["workflows", "activities", "analytics", "starter", "localstack"]
)
def test_contract_names_are_spelled_in_the_contract_only(package: str) -> None:
    spelled = []
    for module, path in _production():
        if not module.startswith(f"{package}."):
            continue
        tree = ast.parse(path.read_text())
        prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in prose:
                continue
            if isinstance(node.value, str):
                spelled += [f"{module}:{node.lineno} {n!r}" for n in _spelled(node.value)]
    assert spelled == []


def test_the_spelling_check_sees_sql_and_plain_literals() -> None:
    assert _spelled("refund_decided") == {"refund_decided"}
    assert _spelled("WHEN 'reminder_replied' THEN 'reminder#' || ref") == {
        "reminder_replied",
        "reminder#",
    }
    assert _spelled("the order was received") == set()
    assert _spelled("ready") == set()
    assert _spelled("WHERE e.event = 'ready'") == {"ready"}
