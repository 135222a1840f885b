"""Assignment by rules and capacity (R2.3)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.assignment import Assignment
from schemas.notices import Audience, Notification, Topic
from schemas.order import OrderType
from schemas.resources import AssignInput, ReleaseAssignment
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import order_id
from tests.db_fixtures import pg_dsn as pg_dsn

DAY = datetime(2030, 1, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, everyone on shift
NIGHT = datetime(2030, 1, 7, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai, nobody on shift


def _assigner(pool: asyncpg.Pool, at: datetime = DAY, shifts: str = "prefer") -> Assignment:
    return Assignment(pool, clock=lambda: at, shifts=shifts)


def _inp(
    skills: list[str],
    *,
    oid: str | None = None,
    region: str = "shanghai-xuhui",
    store: str = "SH-XH-001",
    exclude: list[str] | None = None,
    preferred: str | None = None,
) -> AssignInput:
    return AssignInput(
        order_id=oid or order_id(),
        order_type=OrderType.GOODS,
        store_code=store,
        region=region,
        skills=skills,
        exclude=exclude or [],
        preferred=preferred,
    )


@pytest.fixture(autouse=True)
async def _no_assignments(demo_pool: asyncpg.Pool) -> None:
    await demo_pool.execute(
        "UPDATE assignments SET active = false, released_at = now() WHERE active"
    )
    await demo_pool.execute("UPDATE staff SET active_load = 0")


async def _loads(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT staff_id, active_load FROM staff WHERE active_load > 0")
    return {r["staff_id"]: r["active_load"] for r in rows}


async def test_best_fit_by_skill_and_load(demo_pool: asyncpg.Pool) -> None:
    assign = _assigner(demo_pool)
    first = await assign.assign_order(_inp(["hot_dishes"]))
    assert first.staff_id == "S-101"  # more skilled than S-102, both idle
    assert first.department == "KITCHEN-XH" and first.manager_id == "M-001"
    assert first.name == "王芳"
    # Load counts: one order in, S-101's free share drops and S-102 scores higher.
    assert (await assign.assign_order(_inp(["hot_dishes"]))).staff_id == "S-102"
    assert (await assign.assign_order(_inp(["hot_dishes"]))).staff_id == "S-101"
    # S-101 and S-103 both cover dim_sum and soups; the idle, more skilled S-103 wins.
    assert (await assign.assign_order(_inp(["dim_sum", "soups"]))).staff_id == "S-103"
    # Staples + dim_sum: only S-101 covers both.
    assert (await assign.assign_order(_inp(["staples", "dim_sum"]))).staff_id == "S-101"


async def test_assign_twice_is_one_claim_and_release_twice_one_release(
    demo_pool: asyncpg.Pool,
) -> None:
    assign = _assigner(demo_pool)
    inp = _inp(["hot_dishes"])
    a = await assign.assign_order(inp)
    b = await assign.assign_order(inp)
    assert a == b
    assert await _loads(demo_pool) == {a.staff_id: 1}
    release = ReleaseAssignment(order_id=inp.order_id, staff_id=a.staff_id)
    await assign.release_assignment(release)
    await assign.release_assignment(release)
    assert await _loads(demo_pool) == {}
    rows = await demo_pool.fetch("SELECT active FROM assignments WHERE order_id = $1", inp.order_id)
    assert [r["active"] for r in rows] == [False]


async def test_exclude_moves_the_order_and_frees_the_old_claim(demo_pool: asyncpg.Pool) -> None:
    assign = _assigner(demo_pool)
    oid = order_id()
    first = await assign.assign_order(_inp(["hot_dishes"], oid=oid))
    moved = await assign.assign_order(_inp(["hot_dishes"], oid=oid, exclude=[first.staff_id]))
    assert moved.staff_id != first.staff_id
    assert await _loads(demo_pool) == {moved.staff_id: 1}
    # A retry of the reassignment keeps the new person.
    again = await assign.assign_order(_inp(["hot_dishes"], oid=oid, exclude=[first.staff_id]))
    assert again == moved and await _loads(demo_pool) == {moved.staff_id: 1}


async def test_reassignment_with_nobody_left_keeps_the_holder(demo_pool: asyncpg.Pool) -> None:
    assign = _assigner(demo_pool)
    oid = order_id()
    first = await assign.assign_order(_inp(["staples", "dim_sum"], oid=oid))
    assert first.staff_id == "S-101"
    with pytest.raises(ApplicationError):
        await assign.assign_order(_inp(["staples"], oid=oid, exclude=["S-101", "S-102", "S-103"]))
    assert await _loads(demo_pool) == {"S-101": 1}


async def test_preferred_person_is_forced_when_they_have_room(demo_pool: asyncpg.Pool) -> None:
    assign = _assigner(demo_pool)
    chosen = await assign.assign_order(_inp(["hot_dishes"], preferred="S-103"))
    assert chosen.staff_id == "S-103"  # a supervisor's choice, whatever the skills
    await demo_pool.execute("UPDATE staff SET active_load = capacity WHERE staff_id = 'S-102'")
    fallback = await assign.assign_order(_inp(["hot_dishes"], preferred="S-102"))
    assert fallback.staff_id == "S-101"
    # A supervisor moving an assigned order to someone else.
    oid = order_id()
    await assign.assign_order(_inp(["hot_dishes"], oid=oid))
    moved = await assign.assign_order(_inp(["hot_dishes"], oid=oid, preferred="S-103"))
    assert moved.staff_id == "S-103"
    # Moving it to someone without room leaves it where it is.
    kept = await assign.assign_order(_inp(["hot_dishes"], oid=oid, preferred="S-102"))
    assert kept.staff_id == "S-103"


async def test_department_falls_back_to_the_stores_region(demo_pool: asyncpg.Pool) -> None:
    got = await _assigner(demo_pool).assign_order(_inp(["dim_sum"], region="nowhere"))
    assert got.department == "KITCHEN-XH"
    pudong = await _assigner(demo_pool).assign_order(
        _inp(["dim_sum"], region="shanghai-pudong", store="SH-PD-002")
    )
    assert pudong.department == "KITCHEN-PD"


async def test_nobody_with_the_skills(demo_pool: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError) as caught:
        await _assigner(demo_pool).assign_order(_inp(["plumbing"]))
    assert caught.value.type == "NoAssigneeAvailable" and caught.value.non_retryable
    # Waiting, not failing: the worker logs it quietly, without a traceback.
    assert caught.value.category is ApplicationErrorCategory.BENIGN
    # Nobody covers both, so the best partial fit takes it: a staples cook.
    partial = await _assigner(demo_pool).assign_order(_inp(["staples", "plumbing"]))
    assert partial.staff_id in {"S-101", "S-102"}


async def test_shifts(demo_pool: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError):
        await _assigner(demo_pool, NIGHT, "require").assign_order(_inp(["hot_dishes"]))
    got = await _assigner(demo_pool, NIGHT, "prefer").assign_order(_inp(["hot_dishes"]))
    assert got.staff_id == "S-101"
    # Prefer: somebody on shift beats a better fit off shift.
    await demo_pool.execute(
        "UPDATE staff SET shift_start = '22:00', shift_end = '02:00' WHERE staff_id = 'S-102'"
    )
    try:
        got = await _assigner(demo_pool, NIGHT, "prefer").assign_order(_inp(["hot_dishes"]))
        assert got.staff_id == "S-102"  # on a night shift
    finally:
        await demo_pool.execute(
            "UPDATE staff SET shift_start = '08:00', shift_end = '22:00' WHERE staff_id = 'S-102'"
        )


async def test_100_concurrent_assignments_never_exceed_capacity(demo_pool: asyncpg.Pool) -> None:
    assign = _assigner(demo_pool)
    inputs = [_inp(["drinks"], region="shanghai-pudong", store="SH-PD-002") for _ in range(100)]

    async def one(inp: AssignInput) -> str | None:
        try:
            return (await assign.assign_order(inp)).staff_id
        except ApplicationError as exc:
            assert exc.type == "NoAssigneeAvailable"
            return None

    got = await asyncio.gather(*(one(i) for i in inputs))
    taken = [g for g in got if g]
    assert len(taken) == 10  # S-201 holds 6, S-202 holds 4
    assert taken.count("S-201") == 6 and taken.count("S-202") == 4
    rows = await demo_pool.fetch(
        """
        SELECT s.staff_id, s.capacity, s.active_load,
               (SELECT count(*) FROM assignments a WHERE a.staff_id = s.staff_id AND a.active)
                   AS held
        FROM staff s
        """
    )
    for r in rows:
        assert r["active_load"] <= r["capacity"]
        assert r["active_load"] == r["held"]


def _told(oid: str, n: int) -> Notification:
    return Notification(
        key=f"{oid}:{n}",
        order_id=oid,
        audience=Audience.STAFF,
        store_code="SH-XH-001",
        topic=Topic.ASSIGNED,
        facts={"brief": "红烧肉 x1"},
    )


async def test_the_person_claimed_is_told_in_the_claims_transaction(
    demo_pool: asyncpg.Pool,
) -> None:
    """R2.3.3 the notice an assignment carries goes to whoever it claims, once however often
    the claim is retried; a claim that finds nobody tells nobody."""
    assign = _assigner(demo_pool)
    oid = order_id()
    inp = _inp(["hot_dishes"], oid=oid).model_copy(update={"notice": _told(oid, 1)})
    first = await assign.assign_order(inp)
    assert await assign.assign_order(inp) == first  # a retry
    rows = await demo_pool.fetch(
        "SELECT key, recipient, topic, channel FROM notifications WHERE order_id = $1", oid
    )
    assert [(r["key"], r["recipient"], r["topic"]) for r in rows] == [
        (f"{oid}:1", first.staff_id, "assigned")
    ]
    assert rows[0]["channel"] in ("inbox", "outbox")

    nobody = _inp(["plumbing"], oid=oid, exclude=[first.staff_id])
    with pytest.raises(ApplicationError):
        await assign.assign_order(nobody.model_copy(update={"notice": _told(oid, 2)}))
    keys = await demo_pool.fetch("SELECT key FROM notifications WHERE order_id = $1", oid)
    assert [r["key"] for r in keys] == [f"{oid}:1"]
