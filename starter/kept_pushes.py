"""The pushes the gateway kept for a person (R6.3.2): refused ones with the reason, and accepted
ones no workflow took (an ended order, a refund step or a privacy-number downgrade).

Listed by `orderctl pushes` (`--counts`: every refused push counted, kept or not); the bodies
stay in the database (`rejected_pushes`), since a push carries the customer's name, phone and
address: the list names the order, not them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
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


async def _fetch(sql: str, *args: object) -> list[asyncpg.Record]:
    """On a connection of its own for this one command (`orderctl pushes`)."""
    own = await db.connect(max_size=1)
    try:
        return await own.fetch(sql, *args)
    finally:
        await own.close()


async def recent(since: datetime, limit: int) -> list[KeptPush]:
    """The newest first, received at or after `since`."""
    rows = await _fetch(
        """
        SELECT push_id, received_at, route, method, query, raw_body, reason
        FROM rejected_pushes WHERE received_at >= $1
        ORDER BY received_at DESC, push_id DESC LIMIT $2
        """,
        since,
        limit,
    )
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


@dataclass(frozen=True)
class RefusedCount:
    """Refused pushes of a day, route and cause: all of them, kept or not (starter.push_keeper)."""

    day: date
    route: str
    cause: str
    refused: int
    not_kept: int

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "day": self.day.isoformat()}


async def refused_counts(since: date) -> list[RefusedCount]:
    """By day (newest first), route and cause, from `since` on."""
    rows = await _fetch(
        """
        SELECT day, route, cause, refused, not_kept FROM refused_push_counts
        WHERE day >= $1 ORDER BY day DESC, refused DESC, route, cause
        """,
        since,
    )
    return [RefusedCount(**dict(r)) for r in rows]


def render_counts(counts: list[RefusedCount]) -> str:
    if not counts:
        return "No pushes refused in this period."
    lines = [f"{'day':<10}  {'kind':<17}  {'cause':<22}  {'refused':>8}  {'not kept':>8}"]
    for c in counts:
        kind = c.route.rsplit("/", 1)[-1]
        lines.append(
            f"{c.day.isoformat():<10}  {kind:<17}  {c.cause:<22}  {c.refused:>8}  {c.not_kept:>8}"
        )
    lines.append("not kept: over a source's rate, so only counted (ORDERFLOW_REFUSED_PUSHES_*)")
    return "\n".join(lines)


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
