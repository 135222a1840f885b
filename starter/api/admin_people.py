"""People through the staff API (R7.1): add a person, move them, change their role or load,
disable them, set their skills with levels. Admins only; each change audited. A person disabled
is refused by the API at once (`starter.api.tokens` reads the staff table on every request)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from infra.database import Conn
from schemas.admin import NewPerson, PersonChange, PersonView, SkillLevels
from schemas.people import Person
from starter.api.admin import audit, require_admin
from starter.failures import Exit, Failure

ADD, CHANGE, SKILLS = "person.add", "person.change", "person.skills"


async def view(conn: Conn | asyncpg.Pool, staff_id: str) -> PersonView:
    row = await conn.fetchrow(
        """
        SELECT staff_id, name, department, region, role, capacity, active_load, active,
               COALESCE((SELECT jsonb_object_agg(skill, level) FROM staff_skills k
                         WHERE k.staff_id = s.staff_id), '{}'::jsonb) AS skills
        FROM staff s WHERE staff_id = $1
        """,
        staff_id,
    )
    if row is None:
        raise Failure(f"no person {staff_id}", Exit.NOT_FOUND)
    return PersonView(**dict(row))


async def _region_of(conn: Conn, department: str) -> str:
    region: str | None = await conn.fetchval(
        "SELECT region FROM departments WHERE code = $1", department
    )
    if region is None:
        raise Failure(f"no department {department}", Exit.NOT_FOUND)
    return region


async def add(pool: asyncpg.Pool, person: Person, body: Mapping[str, Any]) -> PersonView:
    require_admin(person, "add people")
    new = NewPerson.model_validate(body)
    async with pool.acquire() as conn, conn.transaction():
        region = await _region_of(conn, new.department)
        done = await conn.fetchval(
            """
            INSERT INTO staff (staff_id, name, department, region, role, capacity)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (staff_id) DO NOTHING RETURNING 1
            """,
            new.staff_id,
            new.name,
            new.department,
            region,
            new.role.value,
            new.capacity,
        )
        if done is None:
            raise Failure(f"{new.staff_id} exists already", Exit.NOT_ALLOWED)
        after = new.model_dump(mode="json", exclude={"reason"})
        await audit(conn, person, ADD, f"person:{new.staff_id}", None, after, new.reason)
        return await view(conn, new.staff_id)


async def change(
    pool: asyncpg.Pool, person: Person, staff_id: str, body: Mapping[str, Any]
) -> PersonView:
    require_admin(person, "change people")
    wanted = PersonChange.model_validate(body)
    fields = wanted.model_dump(mode="json", exclude={"reason"}, exclude_none=True)
    if not fields:
        raise Failure("say what changes: department, role, capacity or active", Exit.USAGE)
    async with pool.acquire() as conn, conn.transaction():
        before = (await view(conn, staff_id)).model_dump(mode="json", include=set(fields))
        if wanted.department is not None:
            fields["region"] = await _region_of(conn, wanted.department)
        columns = ", ".join(f"{name} = ${n}" for n, name in enumerate(fields, start=2))
        await conn.execute(
            f"UPDATE staff SET {columns}, updated_at = now() WHERE staff_id = $1",
            staff_id,
            *fields.values(),
        )  # the column names are PersonChange's fields, never a request's words
        await audit(conn, person, CHANGE, f"person:{staff_id}", before, fields, wanted.reason)
        return await view(conn, staff_id)


async def set_skills(
    pool: asyncpg.Pool, person: Person, staff_id: str, body: Mapping[str, Any]
) -> PersonView:
    require_admin(person, "set people's skills")
    wanted = SkillLevels.model_validate(body)
    async with pool.acquire() as conn, conn.transaction():
        before = (await view(conn, staff_id)).skills
        await conn.execute("DELETE FROM staff_skills WHERE staff_id = $1", staff_id)
        await conn.executemany(
            "INSERT INTO staff_skills (staff_id, skill, level) VALUES ($1, $2, $3)",
            [(staff_id, skill, level) for skill, level in wanted.skills.items()],
        )
        await audit(
            conn, person, SKILLS, f"person:{staff_id}", before, wanted.skills, wanted.reason
        )
        return await view(conn, staff_id)
