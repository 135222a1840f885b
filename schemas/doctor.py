"""The doctor's round: workflows whose history no longer replays, found and repaired."""

from __future__ import annotations

from schemas.base import Model

OPEN = 'ExecutionStatus="Running"'


class DoctorRound(Model):
    query: str = OPEN  # which workflows to look at (a visibility query)
    repair: bool = True
    # Describe every run of `query`, not only those the server reports failing: for a server
    # that does not report them, or reports them late (after five failures by default).
    thorough: bool = False


class Repaired(Model):
    workflow_id: str
    run_id: str  # the run that no longer replayed, closed by the reset
    new_run_id: str


class Unrepaired(Model):
    workflow_id: str
    error: str


class DoctorReport(Model):
    found: int  # stuck when the round looked
    repaired: list[Repaired] = []
    unrepaired: list[Unrepaired] = []
