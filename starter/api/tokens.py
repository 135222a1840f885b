"""Sign-in tokens: issued to a person in the staff table, kept only as a hash, with an expiry;
revoked per person. Used by `orderctl admin token ...` and by the API to know who is asking."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg

from schemas.people import Person, Role
from starter.failures import Exit, Failure, unauthenticated

PREFIX = "oft_"
"""Marks an orderflow token, so a leaked one is recognisable (and scanners can look for it)."""
DEFAULT_TTL = timedelta(days=30)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue(pool: asyncpg.Pool, staff_id: str, ttl: timedelta = DEFAULT_TTL) -> str:
    """A new token for an active person; printed once by the caller, never stored."""
    if ttl <= timedelta(0):
        raise Failure("a token's lifetime must be positive", Exit.USAGE)
    token = PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        active = await conn.fetchval("SELECT active FROM staff WHERE staff_id = $1", staff_id)
        if active is None:
            raise Failure(f"no person {staff_id} in the staff table", Exit.NOT_FOUND)
        if not active:
            raise Failure(f"{staff_id} is not active", Exit.NOT_ALLOWED)
        await conn.execute(
            "INSERT INTO staff_tokens (staff_id, token_hash, expires_at) "
            "VALUES ($1, $2, now() + $3::interval)",
            staff_id,
            token_hash(token),
            ttl,
        )
    return token


async def revoke(pool: asyncpg.Pool, staff_id: str) -> int:
    """Every live token of the person; how many there were."""
    status: str = await pool.execute(
        "UPDATE staff_tokens SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL",
        staff_id,
    )
    return int(status.rsplit(" ", 1)[-1])


async def person_for(pool: asyncpg.Pool, token: str | None) -> Person:
    """The person a token belongs to, as the staff table has them now; 401 otherwise."""
    if not token:
        raise unauthenticated("sign in first: no token (orderctl login, or ORDERFLOW_TOKEN)")
    row = await pool.fetchrow(
        """
        UPDATE staff_tokens t SET last_used_at = now()
        FROM staff s
        WHERE t.token_hash = $1 AND s.staff_id = t.staff_id
          AND t.revoked_at IS NULL AND t.expires_at > now() AND s.active
        RETURNING s.staff_id, s.name, s.role, s.region,
            array(SELECT s.department UNION SELECT code FROM departments
                  WHERE manager_id = s.staff_id) AS departments
        """,
        token_hash(token),
    )
    if row is None:
        raise unauthenticated("the token is unknown, expired or revoked: sign in again")
    try:
        role = Role(row["role"])
    except ValueError:
        raise unauthenticated(f"{row['staff_id']} has no role the API knows") from None
    return Person(
        staff_id=row["staff_id"],
        name=row["name"],
        role=role,
        region=row["region"],
        departments=sorted(row["departments"]),
    )
