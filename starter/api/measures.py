"""R4.3.3 improvement measures through the staff API: taken on a finding by a manager or an
admin, owned by a person, ended as done or dropped; the reports show each with the figure it
aims at before and after (`analytics.collect.measures_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from analytics.measures import UnknownFigure, figure_of
from schemas.admin import MeasureEnd, NewMeasure
from schemas.people import Person, Role
from starter.failures import Exit, Failure, forbidden

COLUMNS = (
    "measure_id, finding_kind, subject, figure, what, owner, due, state, created_by, "
    "created_at, closed_at"
)


def _may(person: Person) -> None:
    if person.role not in (Role.MANAGER, Role.ADMIN):
        raise forbidden(
            f"{person.staff_id} is {person.role.value}: only managers and admins "
            "take or end measures"
        )


async def add(pool: asyncpg.Pool, person: Person, body: Mapping[str, Any]) -> dict[str, Any]:
    _may(person)
    new = NewMeasure.model_validate(body)
    try:
        figure = figure_of(new.finding_kind, new.subject)
    except UnknownFigure as err:
        raise Failure(str(err), Exit.USAGE) from None
    try:
        row = await pool.fetchrow(
            f"""
            INSERT INTO measures (finding_kind, subject, figure, what, owner, due, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}
            """,
            new.finding_kind,
            new.subject,
            figure,
            new.what,
            new.owner,
            new.due,
            person.staff_id,
        )
    except asyncpg.ForeignKeyViolationError:
        raise Failure(f"no person {new.owner} to own it", Exit.NOT_FOUND) from None
    assert row is not None
    return _json(row)


async def listing(pool: asyncpg.Pool, person: Person) -> list[dict[str, Any]]:
    _may(person)
    rows = await pool.fetch(f"SELECT {COLUMNS} FROM measures ORDER BY measure_id DESC LIMIT 200")
    return [_json(r) for r in rows]


async def end(
    pool: asyncpg.Pool, person: Person, measure_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    _may(person)
    ended = MeasureEnd.model_validate(body)
    if not measure_id.isdigit():
        raise Failure(f"not a measure's number: {measure_id!r}", Exit.USAGE)
    row = await pool.fetchrow(
        f"""
        UPDATE measures SET state = $2, closed_at = now()
        WHERE measure_id = $1 AND state = 'open' RETURNING {COLUMNS}
        """,
        int(measure_id),
        ended.state,
    )
    if row is None:
        raise Failure(f"no open measure #{measure_id}", Exit.NOT_FOUND)
    return _json(row)


def _json(row: asyncpg.Record) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}
