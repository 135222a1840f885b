"""The record check's round: orders whose record is ahead of their history, found and written
again (`activities/record_check.py`)."""

from __future__ import annotations

from schemas.base import Model


class RecordCheckRound(Model):
    quiet_s: float = 60.0
    """Only records unwritten this long: a task in flight, or attempted again after its worker
    died, has written by then."""
    limit: int = 500
    """Orders looked at in one round, the longest quiet first; the next round takes the rest."""


class RecordAhead(Model):
    order_id: str
    task: int  # the newest task that wrote the record, which the history holds no completion of
    rewritten: bool  # the order was asked to write again; False: it has ended (`error`)
    error: str = ""


class RecordCheckReport(Model):
    checked: int
    ahead: list[RecordAhead] = []
    waiting: int = 0
    """Ahead, but with a workflow task pending, which writes itself: looked at again."""
