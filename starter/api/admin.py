"""Admin tasks through the staff API: a customer's credit profile, a ban and its lifting
(R5.3.3); people (`admin_people`) and stock (`admin_stock`) beside it. Admins only; every
change is audited in `admin_audit` (migration 0017) in the same transaction as the change
itself, so no change goes unrecorded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from infra.database import Conn
from infra.settings import settings
from schemas.admin import AuditEntry, CreditLine, CustomerProfile, Standing
from schemas.people import Person, Role
from starter.failures import Exit, Failure, forbidden

BAN, LIFT = "customer.ban", "customer.lift"
BY_ORDER = "by-order"
"""In place of a customer id: the customer of the order named by `?order=`."""


def require_admin(person: Person, what: str) -> None:
    if person.role is not Role.ADMIN:
        raise forbidden(f"{person.staff_id} is {person.role.value}: only admin may {what}")


async def customer_of_order(pool: asyncpg.Pool, order_id: str) -> str:
    found: str | None = await pool.fetchval(
        "SELECT customer_id FROM orders WHERE order_id = $1", order_id
    )
    if found is None:
        raise Failure(f"order {order_id} not found", Exit.NOT_FOUND)
    return found


async def profile(conn: Conn | asyncpg.Pool, customer_id: str) -> CustomerProfile:
    row = await conn.fetchrow(
        """
        SELECT customer_id, credit_score, status, first_seen_at, last_order_at
        FROM customers WHERE customer_id = $1
        """,
        customer_id,
    )
    if row is None:
        raise Failure(f"customer {customer_id} not found", Exit.NOT_FOUND)
    credit = await conn.fetch(
        """
        SELECT order_id, kind, delta, score_after, at FROM credit_events
        WHERE customer_id = $1 ORDER BY at DESC LIMIT 50
        """,
        customer_id,
    )
    audit = await conn.fetch(
        """
        SELECT at, actor, action, target, before, after, reason FROM admin_audit
        WHERE target = $1 ORDER BY at DESC, audit_id DESC LIMIT 50
        """,
        f"customer:{customer_id}",
    )
    return CustomerProfile(
        **dict(row),
        credit=[CreditLine(**dict(c)) for c in credit],
        audit=[AuditEntry(**_decoded(a)) for a in audit],
    )


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    values = dict(row)
    for key in ("before", "after"):
        if isinstance(values[key], str):
            values[key] = json.loads(values[key])
    return values


async def change_standing(
    pool: asyncpg.Pool, person: Person, customer_id: str, action: str, body: Mapping[str, Any]
) -> CustomerProfile:
    """Ban, or lift a ban to what the score alone makes the customer."""
    require_admin(person, "ban customers or lift a ban")
    why = Standing.model_validate(body)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, credit_score FROM customers WHERE customer_id = $1 FOR UPDATE",
            customer_id,
        )
        if row is None:
            raise Failure(f"customer {customer_id} not found", Exit.NOT_FOUND)
        if action == LIFT and row["status"] != "banned":
            raise Failure(f"customer {customer_id} is not banned", Exit.NOT_ALLOWED)
        before = {"status": row["status"], "credit_score": row["credit_score"]}
        after = banned(before) if action == BAN else lifted(before)
        if after != before:
            await conn.execute(
                """
                UPDATE customers SET status = $2, credit_score = $3, updated_at = now()
                WHERE customer_id = $1
                """,
                customer_id,
                after["status"],
                after["credit_score"],
            )
            target = f"customer:{customer_id}"
            await audit(conn, person, action, target, before, after, why.reason)
        return await profile(conn, customer_id)


def banned(before: dict[str, Any]) -> dict[str, Any]:
    return {**before, "status": "banned"}


def lifted(before: dict[str, Any]) -> dict[str, Any]:
    """What the score alone makes the customer, the score raised to the ban's threshold first:
    below it, the next credit event would ban them again (`activities.credit.status_for`)."""
    rules = settings().credit
    score = max(before["credit_score"], rules.banned_below)
    status = "restricted" if score < rules.restricted_below else "good"
    return {"status": status, "credit_score": score}


async def audit(
    conn: Conn,
    person: Person,
    action: str,
    target: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    why: str,
) -> None:
    """On record in the transaction of the change itself."""
    await conn.execute(
        """
        INSERT INTO admin_audit (actor, action, target, before, after, reason)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        person.staff_id,
        action,
        target,
        dict(before) if before is not None else None,  # jsonb through the pool's codec
        dict(after) if after is not None else None,
        why,
    )
