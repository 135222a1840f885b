"""Assignment by rules and capacity (R2.3).

Who: the department for the order's type and region (else the store's region's), its active
non-manager staff whose skills cover the order's (else the best partial fit). Ranked by
coverage, then a score that weighs the person's free capacity, their skill level and their
department's workload (R2.3.2). A claim is a conditional `UPDATE staff SET active_load =
active_load + 1 WHERE active_load < capacity`, so concurrent claims never exceed anyone's
capacity; the next candidate is tried when one fills up in the meantime.

Settings (environment variable, default):

- `ORDERFLOW_SHIFTS` (`prefer`): `require` assigns only people on shift; `prefer` ranks people
  on shift first and falls back to off-shift people rather than leave the order unassigned;
  `ignore` disregards shifts. Shift times are local to `ORDERFLOW_TIMEZONE`.
- `ORDERFLOW_ASSIGN_LOAD_WEIGHT` (0.5), `ORDERFLOW_ASSIGN_SKILL_WEIGHT` (0.3),
  `ORDERFLOW_ASSIGN_DEPARTMENT_WEIGHT` (0.2): the score's weights.

They are read through `infra.settings.AssignmentSettings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.notify import write_to
from infra.database import Conn
from infra.settings import settings
from schemas.people import Role
from schemas.resources import Assignee, AssignInput, ReleaseAssignment

MAX_SKILL_LEVEL = 5
NOT_AUTO_ASSIGNED_ROLES = (Role.MANAGER, Role.LIAISON, Role.ADMIN)
"""Managers decide anomalies, liaisons and admins do no order's work: chosen only by name."""


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    department: str
    role: str
    capacity: int
    load: int
    skills: dict[str, int]
    on_shift: bool
    department_load: float  # the department's active load over its capacity


def on_shift(start: time | None, end: time | None, now_local: time) -> bool:
    if start is None or end is None:
        return True
    if start <= end:
        return start <= now_local < end
    return now_local >= start or now_local < end  # a shift across midnight


def coverage(candidate: Candidate, needed: Sequence[str]) -> float:
    if not needed:
        return 1.0
    return sum(1 for s in needed if s in candidate.skills) / len(needed)


def score(candidate: Candidate, needed: Sequence[str]) -> float:
    """Higher is better: free capacity, skill level on what is needed, a quieter department."""
    free = 1 - candidate.load / candidate.capacity if candidate.capacity else 0.0
    levels = [candidate.skills.get(s, 0) for s in needed] or [
        max(candidate.skills.values(), default=0)
    ]
    skill = sum(levels) / len(levels) / MAX_SKILL_LEVEL
    weights = settings().assignment
    return (
        weights.load_weight * free
        + weights.skill_weight * skill
        + weights.department_weight * (1 - candidate.department_load)
    )


def rank(candidates: Sequence[Candidate], needed: Sequence[str], shifts: str) -> list[Candidate]:
    """Full skill cover first, then the best partial fit; people covering none are left out."""
    usable = [
        c
        for c in candidates
        if c.role not in NOT_AUTO_ASSIGNED_ROLES
        and c.load < c.capacity
        and (coverage(c, needed) > 0 or not needed)
        and (c.on_shift or shifts != "require")
    ]

    def key(c: Candidate) -> tuple[bool, float, float, str]:
        shift_first = c.on_shift or shifts == "ignore"
        return (not shift_first, -coverage(c, needed), -score(c, needed), c.staff_id)

    return sorted(usable, key=key)


class Assignment:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Callable[[], datetime] | None = None,
        shifts: str | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock or (lambda: datetime.now(UTC))
        self._shifts = shifts or settings().assignment.shifts

    @activity.defn
    async def assign_order(self, inp: AssignInput) -> Assignee:
        """Claim capacity atomically; `ApplicationError(type="NoAssigneeAvailable")` when full.

        Idempotent: an order already held by someone not excluded keeps them, unless a
        preferred person with room is named. Taking the order from its holder releases their
        claim in the same transaction; if nobody else can take it, nothing changes.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"assign:{inp.order_id}"
            )
            current = await conn.fetchrow(
                "SELECT staff_id FROM assignments WHERE order_id = $1 AND active", inp.order_id
            )
            if current is not None:
                holder = current["staff_id"]
                if holder not in inp.exclude:
                    if inp.preferred in (None, holder):
                        return await self._told(conn, inp, holder)
                    if not await self._candidates(conn, None, inp.exclude, inp.preferred):
                        return await self._told(conn, inp, holder)  # the preferred one is full
                await release_claim(conn, inp.order_id, holder, "reassigned")

            departments = await self._departments(conn, inp)
            candidates = await self._candidates(conn, departments, inp.exclude)
            ordered = rank(candidates, inp.skills, self._shifts)
            if inp.preferred and inp.preferred not in inp.exclude:
                # R2.3 a supervisor's explicit choice wins when that person has room.
                chosen = await self._candidates(conn, None, inp.exclude, inp.preferred)
                ordered = chosen + ordered
            for c in ordered:
                claimed = await conn.fetchval(
                    """
                    UPDATE staff SET active_load = active_load + 1, updated_at = now()
                    WHERE staff_id = $1 AND active AND active_load < capacity
                    RETURNING staff_id
                    """,
                    c.staff_id,
                )
                if claimed is None:
                    continue  # filled up since we looked
                await conn.execute(
                    """
                    INSERT INTO assignments (order_id, staff_id, department, round)
                    VALUES ($1, $2, $3, $4)
                    """,
                    inp.order_id,
                    c.staff_id,
                    c.department,
                    inp.round,
                )
                return await self._told(conn, inp, c.staff_id)
            # Raised inside the transaction: a release of an excluded holder is rolled back.
            raise ApplicationError(
                f"nobody in {', '.join(departments) or 'any department'} can take order "
                f"{inp.order_id} (skills {', '.join(inp.skills) or 'none'})",
                type="NoAssigneeAvailable",
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,  # waiting, not failing: logged quietly
            )

    @activity.defn
    async def release_assignment(self, inp: ReleaseAssignment) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await release_claim(conn, inp.order_id, inp.staff_id, "released")

    async def _departments(self, conn: Conn, inp: AssignInput) -> list[str]:
        """R2.3.1 by order type and region; else the region of the order's store."""
        rows = await conn.fetch(
            "SELECT code FROM departments WHERE order_type = $1 AND region = $2 ORDER BY code",
            inp.order_type.value,
            inp.region,
        )
        if not rows:
            rows = await conn.fetch(
                """
                SELECT d.code FROM departments d JOIN stores s ON s.region = d.region
                WHERE d.order_type = $1 AND s.code = $2 ORDER BY d.code
                """,
                inp.order_type.value,
                inp.store_code,
            )
        return [r["code"] for r in rows]

    async def _candidates(
        self,
        conn: Conn,
        departments: list[str] | None,
        exclude: list[str],
        only: str | None = None,
    ) -> list[Candidate]:
        rows = await conn.fetch(
            """
            WITH dept_load AS (
                SELECT department,
                       SUM(active_load)::float / NULLIF(SUM(capacity), 0) AS ratio
                FROM staff WHERE active GROUP BY department
            )
            SELECT s.staff_id, s.department, s.role, s.capacity, s.active_load,
                   s.shift_start, s.shift_end, COALESCE(d.ratio, 1.0) AS department_load,
                   COALESCE(jsonb_object_agg(k.skill, k.level)
                            FILTER (WHERE k.skill IS NOT NULL), '{}') AS skills
            FROM staff s
            LEFT JOIN staff_skills k ON k.staff_id = s.staff_id
            LEFT JOIN dept_load d ON d.department = s.department
            WHERE s.active
              AND ($1::text[] IS NULL OR s.department = ANY($1::text[]))
              AND ($3::text IS NULL OR s.staff_id = $3)
              AND s.staff_id <> ALL($2::text[])
              AND s.active_load < s.capacity
            GROUP BY s.staff_id, d.ratio
            """,
            departments,
            exclude,
            only,
        )
        now_local = self._clock().astimezone(settings().business.timezone).time()
        return [
            Candidate(
                staff_id=r["staff_id"],
                department=r["department"],
                role=r["role"],
                capacity=r["capacity"],
                load=r["active_load"],
                skills={k: int(v) for k, v in r["skills"].items()},
                on_shift=on_shift(r["shift_start"], r["shift_end"], now_local),
                department_load=r["department_load"],
            )
            for r in rows
        ]

    @classmethod
    async def _told(cls, conn: Conn, inp: AssignInput, staff_id: str) -> Assignee:
        """The person holding the order, told in the same transaction (R2.3.3)."""
        await write_to(conn, inp.notice, staff_id)
        return await cls._assignee(conn, staff_id)

    @staticmethod
    async def _assignee(conn: Conn, staff_id: str) -> Assignee:
        row = await conn.fetchrow(
            """
            SELECT s.staff_id, s.name, s.department, COALESCE(d.manager_id, '') AS manager_id
            FROM staff s JOIN departments d ON d.code = s.department
            WHERE s.staff_id = $1
            """,
            staff_id,
        )
        assert row is not None
        return Assignee(
            staff_id=row["staff_id"],
            name=row["name"],
            department=row["department"],
            manager_id=row["manager_id"],
        )


async def release_claim(conn: Conn, order_id: str, staff_id: str, reason: str) -> None:
    """Give the claimed capacity back once; a second release finds nothing active."""
    released = await conn.fetchval(
        """
        UPDATE assignments SET active = false, released_at = now(), release_reason = $3
        WHERE order_id = $1 AND staff_id = $2 AND active
        RETURNING staff_id
        """,
        order_id,
        staff_id,
        reason,
    )
    if released is not None:
        await conn.execute(
            """
            UPDATE staff SET active_load = active_load - 1, updated_at = now()
            WHERE staff_id = $1 AND active_load > 0
            """,
            staff_id,
        )
