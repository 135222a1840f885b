"""The doctor's round: workflows whose history no longer replays, found and repaired."""

from __future__ import annotations

from schemas.base import Model

OPEN = 'ExecutionStatus="Running"'


class DoctorRound(Model):
    query: str = OPEN  # which workflows to look at (a visibility query)
    repair: bool = True


class Unrepaired(Model):
    workflow_id: str
    error: str


class DoctorReport(Model):
    found: int  # stuck when the round looked
    repaired: list[str] = []  # workflow ids, each reset to a new run
    unrepaired: list[Unrepaired] = []
