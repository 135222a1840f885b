"""What a person may see, from the system of record: listings narrowed to their reach (the
permission table's READS), an order's detail, the anomaly inbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from schemas.people import ASSIGNEE, DEPARTMENT, READS, REGION, Person
from schemas.reads import OrderFilter, OrderScope
from starter import order_reads
from starter.failures import Exit, Failure

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000


def _limit(params: Mapping[str, str], default: int = DEFAULT_LIMIT) -> int:
    raw = params.get("limit", str(default))
    if not raw.isdigit() or not 0 < int(raw) <= MAX_LIMIT:
        raise Failure(f"limit must be a whole number from 1 to {MAX_LIMIT}", Exit.USAGE)
    return int(raw)


def _flag(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "").lower() in ("1", "true", "yes")


def reach(person: Person) -> dict[str, Any]:
    """The filter that keeps a listing inside what the person may see."""
    scope = READS[person.role]
    if scope == ASSIGNEE:
        return {"assignee": person.staff_id}
    if scope == DEPARTMENT:
        return {"departments": list(person.departments)}
    if scope == REGION:
        return {"region": person.region}
    return {}


async def orders(pool: asyncpg.Pool, person: Person, params: Mapping[str, str]) -> Any:
    asked = {
        "stage": params.get("stage"),
        "store_code": params.get("store"),
        "order_type": params.get("type"),
        "assignee": params.get("assignee"),
        "breached": _flag(params, "breached") or None,
        "anomaly_open": _flag(params, "anomaly_open") or None,
        "open_only": _flag(params, "running"),
    }
    mine = reach(person)
    if "assignee" in mine and asked["assignee"] not in (None, person.staff_id):
        return []  # another person's orders: none of them are within reach
    wanted = OrderFilter(**{k: v for k, v in asked.items() if v is not None}, **mine)
    rows = await order_reads.list_orders(pool, wanted, _limit(params))
    return [row.model_dump(mode="json") for row in rows]


async def order(pool: asyncpg.Pool, order_id: str) -> Any:
    view = await order_reads.order_view(pool, order_id)
    if view is None:
        raise Failure(f"order {order_id} not found", Exit.NOT_FOUND)
    return view.model_dump(mode="json")


async def anomalies(pool: asyncpg.Pool, person: Person, params: Mapping[str, str]) -> Any:
    within = OrderFilter(**reach(person))
    rows = await order_reads.open_anomalies(
        pool, params.get("store"), _limit(params, 200), reach=within
    )
    return [row.model_dump(mode="json") for row in rows]


async def scope(pool: asyncpg.Pool, order_id: str) -> OrderScope:
    """Whose the order is, for the permission table; 404 for an order not on record."""
    found = await order_reads.order_scope(pool, order_id)
    if found is None:
        raise Failure(f"order {order_id} not found", Exit.NOT_FOUND)
    return found


async def open_anomaly_number(pool: asyncpg.Pool, order_id: str) -> int:
    """The number of the order's latest open anomaly (its child is `anomaly-<order>-<n>`)."""
    found: str | None = await pool.fetchval(
        "SELECT anomaly_id FROM anomalies WHERE order_id = $1 AND closed_at IS NULL "
        "ORDER BY opened_at DESC LIMIT 1",
        order_id,
    )
    if found is None:
        raise Failure(f"order {order_id} has no open anomaly", Exit.NOT_ALLOWED)
    return int(found.rsplit("-", 1)[1])
