"""A store's hours and its own policy terms through the staff API. Admins only; each change
audited. The terms are checked against the policy before they are kept, so a store's next order
never meets terms that do not validate; the hours feed the review (`store_open`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from pydantic import ValidationError

from activities.policy import current_policy
from infra.database import Conn
from schemas.admin import OpeningRange, StoreHours, StoreTerms, StoreView
from schemas.order import OrderType
from schemas.people import Person
from schemas.policy import OrderPolicy, store_terms
from starter.api.admin import audit, require_admin
from starter.failures import Exit, Failure, invalid

HOURS, TERMS = "store.hours", "store.terms"


async def view(conn: Conn | asyncpg.Pool, code: str) -> StoreView:
    store = await conn.fetchrow("SELECT code, name, order_type FROM stores WHERE code = $1", code)
    if store is None:
        raise Failure(f"no store {code}", Exit.NOT_FOUND)
    hours = await conn.fetch(
        "SELECT weekday, opens, closes FROM store_hours WHERE store_code = $1 "
        "ORDER BY weekday, opens",
        code,
    )
    terms = await conn.fetchval("SELECT terms FROM store_policies WHERE store_code = $1", code)
    terms = dict(terms or {})
    try:
        effective, problem = _effective(OrderType(store["order_type"]), terms), None
    except Failure as failure:  # the policy moved since: shown, so that an admin can fix it
        effective = current_policy().for_type(OrderType(store["order_type"]))
        problem = f"{failure}; its orders take the type's terms until they are set again"
    return StoreView(
        store_code=code,
        name=store["name"],
        order_type=store["order_type"],
        hours=[OpeningRange(**dict(h)) for h in hours],
        terms=terms,
        effective=effective,
        problem=problem,
    )


def _effective(order_type: OrderType, terms: Mapping[str, Any]) -> OrderPolicy:
    """The type's terms with the store's on top, or why they do not validate."""
    try:
        return store_terms(current_policy().for_type(order_type), terms)
    except ValidationError as err:
        problems = invalid(err)
        raise Failure(f"the store's terms do not fit the policy: {problems}", Exit.USAGE) from None


async def set_hours(
    pool: asyncpg.Pool, person: Person, code: str, body: Mapping[str, Any]
) -> StoreView:
    require_admin(person, "set a store's hours")
    wanted = StoreHours.model_validate(body)
    async with pool.acquire() as conn, conn.transaction():
        before = await view(conn, code)
        await conn.execute("DELETE FROM store_hours WHERE store_code = $1", code)
        await conn.executemany(
            "INSERT INTO store_hours (store_code, weekday, opens, closes) VALUES ($1, $2, $3, $4)",
            [(code, h.weekday, h.opens, h.closes) for h in wanted.hours],
        )
        old = [h.model_dump(mode="json") for h in before.hours]
        new = [h.model_dump(mode="json") for h in wanted.hours]
        await audit(
            conn, person, HOURS, f"store:{code}", {"hours": old}, {"hours": new}, wanted.reason
        )
        return await view(conn, code)


async def set_terms(
    pool: asyncpg.Pool, person: Person, code: str, body: Mapping[str, Any]
) -> StoreView:
    require_admin(person, "set a store's terms")
    wanted = StoreTerms.model_validate(body)
    async with pool.acquire() as conn, conn.transaction():
        before = await view(conn, code)
        _effective(OrderType(before.order_type), wanted.terms)  # refused unless they fit
        await conn.execute(
            """
            INSERT INTO store_policies (store_code, terms) VALUES ($1, $2)
            ON CONFLICT (store_code) DO UPDATE SET terms = EXCLUDED.terms, updated_at = now()
            """,
            code,
            wanted.terms,
        )
        await audit(
            conn,
            person,
            TERMS,
            f"store:{code}",
            {"terms": before.terms},
            {"terms": wanted.terms},
            wanted.reason,
        )
        return await view(conn, code)
