"""What a person may see, from the system of record: listings narrowed to their reach (the
permission table's READS), an order's detail, the anomaly inbox, their own inbox and work."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from schemas.people import ASSIGNEE, DEPARTMENT, READS, REGION, Duty, Person, Role, refusal
from schemas.reads import OrderFilter, OrderScope
from starter import order_reads, work_reads
from starter.failures import Exit, Failure, forbidden

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


def _moment(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Failure(f"after must be an ISO 8601 time, not {raw!r}", Exit.USAGE) from None
    if moment.tzinfo is None:
        raise Failure("after must carry its time zone (…Z or +08:00)", Exit.USAGE)
    return moment


async def inbox(pool: asyncpg.Pool, person: Person, params: Mapping[str, str]) -> Any:
    """Newest first; `unread`, `after` (ISO time: what came in since) and `limit` narrow it."""
    entries = await work_reads.inbox(
        pool,
        person.staff_id,
        unread=_flag(params, "unread"),
        after=_moment(params.get("after")),
        limit=_limit(params),
    )
    return [entry.model_dump(mode="json") for entry in entries]


async def mark_read(pool: asyncpg.Pool, person: Person, body: Mapping[str, Any]) -> Any:
    """`{"keys": [...]}` marks those, `{"all": true}` every unread one; only the person's own."""
    keys = body.get("keys")
    if body.get("all") is True:
        keys = None
    elif not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
        raise Failure('say which to mark: {"keys": ["..."]} or {"all": true}', Exit.USAGE)
    return {"read": await work_reads.mark_read(pool, person.staff_id, keys)}


async def my_work(pool: asyncpg.Pool, person: Person, params: Mapping[str, str]) -> Any:
    """The person's open orders, soonest due first; a manager's departments' orders and
    decision queues."""
    managing = person.role is Role.MANAGER
    departments = list(person.departments) if managing else None
    items = await work_reads.my_work(pool, person.staff_id, departments, limit=_limit(params, 200))
    answer: dict[str, Any] = {"items": [item.model_dump(mode="json") for item in items]}
    if departments is not None:
        queues = await work_reads.manager_queues(pool, departments)
        answer["queues"] = queues.model_dump(mode="json")
    return answer


async def sheet(
    pool: asyncpg.Pool, person: Person, scope: OrderScope, params: Mapping[str, str]
) -> Any:
    """The order as the people working on it need it; the address, notes and what people were
    told only to those who work the order or care for its customer; with `contact`, the
    customer's number, for those who work the order only (the assignee, its managers), each
    reveal recorded."""
    found = await order_reads.order_sheet(pool, scope.order_id)
    if found is None:
        raise Failure(f"order {scope.order_id} not found", Exit.NOT_FOUND)
    if all(refusal(person, duty, scope) for duty in (Duty.WORK, Duty.CARE)):
        # Reading is not working the order: where the customer lives and what they said stay
        # with those who work it or care for its customer.
        found = found.model_copy(update={"address": "", "caution": "", "told": []})
    if _flag(params, "contact"):
        why_not = refusal(person, Duty.WORK, scope)
        if why_not is not None:
            raise forbidden(f"the customer's number is for whoever works the order: {why_not}")
        async with pool.acquire() as conn, conn.transaction():
            found.contact = await order_reads.reveal_contact(conn, scope.order_id, person.staff_id)
    return found.model_dump(mode="json")
