"""The outbox's sender: delivers what `activities.notify` wrote, so that no order waits on a robot.

One dispatcher sends at a time (a PostgreSQL advisory lock; the others stand by), because a
robot's rate is the robot's, not a process's: the sends of the last window are counted from the
deliveries themselves, so the count survives a restart and a change of dispatcher. Each delivery
is locked while it is sent and marked sent in the same transaction, so it is posted once (a
crash between the robot's answer and the commit is the one case that posts it again). A failure
is retried with backoff; after the last try the delivery is dead, kept with its error for a
person to see (the inbox shows each route's state). A robot's own "too fast" answer (WeCom
45009) holds every delivery to that robot for its hold (DingTalk: ten minutes) and is not
counted as a try; the other deliveries to a robot that does not answer at all wait for its retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import httpx

from activities import notify_routes
from activities.channels import (
    HOLD,
    LIMITS,
    DeliveryError,
    Message,
    Throttled,
    Unreachable,
    WebhookChannel,
)
from activities.notify import WAKE
from infra.database import UNAVAILABLE, Conn
from infra.settings import settings

log = logging.getLogger("orderflow.dispatcher")

LEADER_LOCK = 0x6F75_7462  # "outb": one dispatcher at a time


def _max_attempts() -> int:
    return settings().notify.max_attempts


@dataclass(frozen=True)
class DispatchConfig:
    limits: Mapping[str, tuple[tuple[int, timedelta], ...]] = field(
        default_factory=lambda: dict(LIMITS)
    )
    """Per robot kind, at most so many messages in each span (`activities.channels.LIMITS`)."""
    holds: Mapping[str, timedelta] = field(default_factory=lambda: dict(HOLD))
    """How long a robot that answered "too fast" is left alone."""
    max_attempts: int = field(default_factory=_max_attempts)
    first_backoff: timedelta = timedelta(seconds=5)
    longest_backoff: timedelta = timedelta(minutes=10)
    batch: int = 50
    poll: float = 1.0
    """Seconds between looks when nothing woke the dispatcher."""

    def backoff(self, attempts: int) -> timedelta:
        doubled: timedelta = self.first_backoff * 2 ** max(attempts - 1, 0)
        return min(doubled, self.longest_backoff)


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: DispatchConfig | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._pool = pool
        self._config = config or DispatchConfig()
        self._client = client

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: stand by for the lead, then send whatever is due, woken by each write.
        A database that goes away ends the lead, not the dispatcher: it stands by again. One
        HTTP client serves every send: robots are few, their connections kept."""
        owned = self._client is None
        if owned:
            self._client = httpx.AsyncClient()
        try:
            while not stop.is_set():
                try:
                    await self._lead(stop)
                except UNAVAILABLE as err:
                    kind = type(err).__name__
                    log.warning("dispatcher lost the database (%s); standing by", kind)
                except Exception:
                    log.exception("dispatcher failed; standing by")
                await _sleep(stop, 5 * self._config.poll)
        finally:
            if owned and self._client is not None:
                await self._client.aclose()
                self._client = None

    async def _lead(self, stop: asyncio.Event) -> None:
        async with self._pool.acquire() as leader:
            while not await leader.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                if await _sleep(stop, 5 * self._config.poll):
                    return
            woken = asyncio.Event()

            def wake(*_: object) -> None:
                woken.set()

            await leader.add_listener(WAKE, wake)
            log.info("dispatcher sending notifications")
            try:
                while not stop.is_set() and await _still_leading(leader):
                    woken.clear()
                    await self.round()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_either(woken, stop), self._config.poll)
            finally:
                with contextlib.suppress(*UNAVAILABLE):
                    await leader.remove_listener(WAKE, wake)
                    await leader.execute("SELECT pg_advisory_unlock($1)", LEADER_LOCK)

    async def round(self) -> int:
        """Sends what is due, each robot within its rate; how many were sent."""
        due = await self._pool.fetch(
            """
            SELECT d.notification_key, d.route, d.kind, d.channel_key, d.mention, d.mobile,
                   d.attempts, n.order_id, n.subject, n.text
            FROM deliveries d JOIN notifications n ON n.key = d.notification_key
            WHERE d.state = 'pending' AND d.next_at <= now()
            ORDER BY d.next_at, d.created_at LIMIT $1
            """,
            self._config.batch,
        )
        held: dict[str, datetime] = {}
        sent = 0
        for row in due:
            channel = row["channel_key"]
            until = held.get(channel) or await self._full_until(channel, row["kind"])
            if until is not None:
                held[channel] = until
                await self._defer(row, until)
                continue
            outcome = await self._send(row)
            if isinstance(outcome, datetime):
                held[channel] = outcome
            else:
                sent += outcome
        return sent

    async def _full_until(self, channel: str, kind: str) -> datetime | None:
        """When the robot has room again under every limit of its kind, or None: room now."""
        room: datetime | None = None
        for limit, span in self._config.limits.get(kind, LIMITS["webhook"]):
            oldest: datetime | None = await self._pool.fetchval(
                """
                SELECT min(sent_at) FROM (
                    SELECT sent_at FROM deliveries
                    WHERE channel_key = $1 AND state = 'sent'
                      AND sent_at > clock_timestamp() - $2::interval
                    ORDER BY sent_at DESC LIMIT $3) AS recent
                HAVING count(*) >= $3
                """,
                channel,
                span,
                limit,
            )
            if oldest is not None and (room is None or oldest + span > room):
                room = oldest + span
        return room

    async def _defer(self, row: asyncpg.Record, until: datetime) -> None:
        await self._pool.execute(
            """
            UPDATE deliveries SET next_at = greatest(next_at, $3)
            WHERE notification_key = $1 AND route = $2 AND state = 'pending'
            """,
            row["notification_key"],
            row["route"],
            until,
        )

    async def _send(self, row: asyncpg.Record) -> int | datetime:
        """1 sent, 0 not; a time: the robot is left alone until then (it said "too fast", or
        did not answer at all)."""
        key, route = row["notification_key"], row["route"]
        async with self._pool.acquire() as conn, conn.transaction():
            state = await conn.fetchval(
                "SELECT state FROM deliveries WHERE notification_key = $1 AND route = $2 "
                "FOR UPDATE SKIP LOCKED",
                key,
                route,
            )
            if state != "pending":
                return 0
            target = await notify_routes.target(conn, route)
            if target is None:
                await _dead(conn, key, route, "the route was removed")
                return 0
            mobile = row["mobile"]
            if route == notify_routes.CUSTOMER:  # their number, never copied into the outbox
                mobile = await conn.fetchval(
                    "SELECT customer_phone FROM orders WHERE order_id = $1", row["order_id"]
                )
            message = Message(row["order_id"], row["subject"], row["text"], row["mention"], mobile)
            try:
                channel = WebhookChannel(
                    target.url, target.kind, secret=target.secret, client=self._client
                )
                await channel.send(message)
            except Throttled as exc:
                return await self._hold(conn, row, target.kind, str(exc))
            except Unreachable as exc:  # nothing more for this robot this round
                return await self._retry_or_dead(conn, row, str(exc)) or 0
            except DeliveryError as exc:
                await self._retry_or_dead(conn, row, str(exc))
                return 0
            except Exception as exc:  # a bad route must not stop the others; no URL in it
                await self._retry_or_dead(conn, row, f"{type(exc).__name__} while sending")
                return 0
            await _sent(conn, key, route, target.kind)
            return 1

    async def _hold(self, conn: Conn, row: asyncpg.Record, kind: str, error: str) -> datetime:
        """The robot said "too fast": none of its deliveries goes before its hold is over."""
        hold = self._config.holds.get(kind, HOLD["webhook"])
        until: datetime = await conn.fetchval("SELECT clock_timestamp() + $1::interval", hold)
        await _failed(conn, row["notification_key"], row["route"], error, until, counts=False)
        await conn.execute(
            """
            UPDATE deliveries SET next_at = greatest(next_at, $2)
            WHERE channel_key = $1 AND state = 'pending'
            """,
            row["channel_key"],
            until,
        )
        return until

    async def _retry_or_dead(self, conn: Conn, row: asyncpg.Record, error: str) -> datetime | None:
        """When it is tried again; None: it never will be."""
        attempts = row["attempts"] + 1
        key, route = row["notification_key"], row["route"]
        if attempts >= self._config.max_attempts:
            log.warning("notification %s to %s dead after %d tries", key, route, attempts)
            await _dead(conn, key, route, error)
            return None
        log.info("notification %s to %s not sent (try %d): %s", key, route, attempts, error)
        until: datetime = await conn.fetchval(
            "SELECT clock_timestamp() + $1::interval", self._config.backoff(attempts)
        )
        await _failed(conn, key, route, error, until, counts=True)
        return until


async def _sent(conn: Conn, key: str, route: str, kind: str) -> None:
    await conn.execute(
        """
        UPDATE deliveries SET state = 'sent', sent_at = clock_timestamp(),
               attempts = attempts + 1, last_error = NULL
        WHERE notification_key = $1 AND route = $2
        """,
        key,
        route,
    )
    await conn.execute(
        """
        UPDATE notifications SET sent_at = coalesce(sent_at, clock_timestamp()),
               attempts = attempts + 1, channel = $2, last_error = NULL
        WHERE key = $1
        """,
        key,
        f"webhook:{kind}",
    )


async def _failed(
    conn: Conn, key: str, route: str, error: str, until: datetime, *, counts: bool
) -> None:
    await conn.execute(
        """
        UPDATE deliveries SET attempts = attempts + $4::int, last_error = $3, next_at = $5
        WHERE notification_key = $1 AND route = $2
        """,
        key,
        route,
        error[:1000],
        1 if counts else 0,
        until,
    )
    await conn.execute(
        "UPDATE notifications SET attempts = attempts + $3::int, last_error = $2 WHERE key = $1",
        key,
        error[:1000],
        1 if counts else 0,
    )


async def _dead(conn: Conn, key: str, route: str, error: str) -> None:
    await conn.execute(
        """
        UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = $3
        WHERE notification_key = $1 AND route = $2
        """,
        key,
        route,
        error[:1000],
    )
    await conn.execute(
        "UPDATE notifications SET last_error = $2 WHERE key = $1", key, f"dead: {error}"[:1000]
    )


async def _still_leading(leader: Conn) -> bool:
    """The lock is the connection's: a connection ended by the server took it along, and
    another dispatcher may lead now."""
    held: bool = await leader.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                       AND pid = pg_backend_pid() AND objid::bigint = $1)
        """,
        LEADER_LOCK,
    )
    if not held:
        log.warning("dispatcher no longer holds the lead")
    return held


async def _either(woken: asyncio.Event, stop: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _sleep(stop: asyncio.Event, seconds: float) -> bool:
    """True when `stop` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
