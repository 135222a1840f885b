"""The names the figures speak of, taken from the schemas, and how the rollup's SQL spells them.

Stages, timeline events and deadline clauses are named once, in `schemas` (the workflows write
them from there); the statements here are built from those enums instead of retyping them, so a
rename reaches the figures. They go in as quoted literals, not query parameters: the planner
matches a partial index's predicate (`stage NOT IN ('closed', ...)`, migration 0008) only
against literals, and a statement with the names in place still reads as SQL. Every value
quoted is one of our own enums, never a person's input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from schemas.contract import DEADLINE_CASE_SEPARATOR, deadline_key, deadline_key_prefix
from schemas.order import Stage
from schemas.policy import Clause

# --- the figures' names (plain strings: they are JSON keys and match the rows read back) -------

TERMINAL: Final = tuple(stage.value for stage in Stage if stage.terminal)
"""Stages of a finished order: what the rollup holds."""
OPEN: Final = "open"
"""The outcome of an order still running."""
OUTCOMES: Final = (*TERMINAL, OPEN)
STAGES: Final = tuple(stage.value for stage in Stage if not stage.terminal)
"""Stages timed per order, in the contract's order."""
CLAUSES: Final = tuple(clause.value for clause in Clause)
"""Deadline clauses, in the order of the measures."""
SYSTEM_CLAUSES: Final = (Clause.RECEIVE, Clause.REVIEW, Clause.ACCEPT, Clause.ASSIGN)
"""Deadlines the system meets, nobody's: they stay off a person's scorecard."""

# Duration histograms, one per metric (the rollup's `durations.metric`).
STAGE_METRIC: Final = "stage:"
"""Prefix of a stage's metric: `stage:in_progress`."""
HANDLING: Final = "handling"
"""From the first assignment to delivery, the holder's."""
FIRST_RESPONSE: Final = "first_response"
"""R4.2.2 from a feedback case's opening to its first response."""


def stage_metric(stage: str) -> str:
    return f"{STAGE_METRIC}{stage}"


# --- spelling them in SQL ----------------------------------------------------------------------


def lit(value: str) -> str:
    """One of our own names (an enum value) as a SQL literal."""
    return "'" + str(value).replace("'", "''") + "'"


def lits(values: Iterable[str]) -> str:
    """Names as the list of an `IN (...)`."""
    return ", ".join(lit(value) for value in values)


def key_of(clause: Clause) -> str:
    """SQL: the key of a clause opened once per order (`'confirm'`)."""
    return lit(deadline_key(clause))


def case_key(clause: Clause) -> str:
    """SQL: the start of a per-case key (`'refund#'`), for the statement to append the case."""
    return lit(deadline_key_prefix(clause) + DEADLINE_CASE_SEPARATOR)


def clause_of_key(key: str) -> str:
    """SQL: the clause a deadline key (the column `key`) counts under: its prefix, except where
    the prefix names the case's thing (`refund#R1` counts under `refund_decision`)."""
    prefix = f"split_part({key}, {lit(DEADLINE_CASE_SEPARATOR)}, 1)"
    renamed = "".join(
        f"\n           WHEN {lit(deadline_key_prefix(clause))} THEN {lit(clause)}"
        for clause in Clause
        if deadline_key_prefix(clause) != clause.value
    )
    return f"CASE {prefix}{renamed}\n           ELSE {prefix}\n       END"
