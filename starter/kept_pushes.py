"""The pushes the gateway kept for a person (R6.3.2): refused ones with the reason, and accepted
ones no workflow took (an ended order, a refund step or a privacy-number downgrade).

Listed by `orderctl pushes`; the bodies stay in the database (`rejected_pushes`), since a
push carries the customer's name, phone and address: the list names the order, not them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg

from infra import database as db


@dataclass(frozen=True)
class KeptPush:
    push_id: int
    received_at: datetime
    route: str
    method: str
    order_id: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "push_id": self.push_id,
            "received_at": self.received_at.isoformat(),
            "route": self.route,
            "method": self.method,
            "order_id": self.order_id,
            "reason": self.reason,
        }


def _order_id(query: str, body: str) -> str | None:
    for text in (body, query):
        value = dict(parse_qsl(text, keep_blank_values=True)).get("order_id")
        if value:
            return value
    return None


async def recent(since: datetime, limit: int, pool: asyncpg.Pool | None = None) -> list[KeptPush]:
    """The newest first, received at or after `since`."""
    own = pool is None
    pool = pool or await db.connect(max_size=1)
    try:
        rows = await pool.fetch(
            """
            SELECT push_id, received_at, route, method, query, raw_body, reason
            FROM rejected_pushes WHERE received_at >= $1
            ORDER BY received_at DESC, push_id DESC LIMIT $2
            """,
            since,
            limit,
        )
    finally:
        if own:
            await pool.close()
    return [
        KeptPush(
            push_id=r["push_id"],
            received_at=r["received_at"],
            route=r["route"],
            method=r["method"],
            order_id=_order_id(r["query"], r["raw_body"]),
            reason=r["reason"],
        )
        for r in rows
    ]


def render(pushes: list[KeptPush], zone: Any) -> str:
    if not pushes:
        return "No pushes kept in this period."
    lines = []
    for push in pushes:
        at = push.received_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        kind = push.route.rsplit("/", 1)[-1]
        lines.append(f"{at}  #{push.push_id}  {kind:<17} order {push.order_id or '-':<19}")
        lines.append(f"    {push.reason}")
    return "\n".join(lines)
