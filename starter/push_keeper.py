"""What the gateway keeps of the pushes it refused or that no workflow takes (R6.3.2), within
bounds: bad traffic must not fill the PostgreSQL server that Temporal shares.

- Kept whole and never pruned: a push accepted but reaching no workflow (the only record of
  what it says), and one refused because we could not take it then (Temporal or the platform
  away: answered 503, the platform sends it again).
- Bounded: a push refused for what it is (bad signature, malformed, too large, too old). At
  most `max_rows` of them are kept, for `keep_days`, and `per_source_per_minute` from one
  address; the rest are only counted.
- Only a push whose signature verifies keeps its body and query: anyone may have sent the
  others, so their metadata, parameter names and a SHA-256 of the body are kept instead.

Every refused push is counted in `refused_push_counts` by day, route and cause, kept or not,
so what was refused stays visible (`orderctl pushes --counts`) when its body is gone. The
counts are added up in memory and written at most once a second (`flush`), so a flood costs
one write a second, not one a push.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Final
from urllib.parse import parse_qsl

import asyncpg

from infra.rate import PerMinute
from infra.settings import PushGatewaySettings
from meituan.codes import ErrorCode

log = logging.getLogger("orderflow.gateway")

# Headers that could carry credentials of whoever called are not kept, nor more than a few.
_SECRET_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
_SECRET_HEADER_PARTS: Final = ("secret", "token", "password", "api-key", "apikey", "auth")
_HEADERS_KEPT: Final = 40
_HEADER_CHARS: Final = 512
STORED_BODY_BYTES: Final = 8192
"""What is kept of an oversized push's query: enough to see what it was."""
_FLUSH_EVERY_S: Final = 1.0
_PRUNE_EVERY_S: Final = 60.0


@dataclass(frozen=True)
class Bounds:
    """How much refused traffic is kept (`ORDERFLOW_REFUSED_PUSHES_*`)."""

    max_rows: int
    keep_days: float
    per_source_per_minute: int

    @classmethod
    def of(cls, gateway: PushGatewaySettings) -> Bounds:
        return cls(
            gateway.refused_max_rows,
            gateway.refused_keep_days,
            gateway.refused_per_source_per_minute,
        )


@dataclass(frozen=True)
class Push:
    """One push to keep, as received."""

    route: str
    method: str
    query: str
    body: bytes
    headers: dict[str, str]
    source: str
    received_at: datetime
    reason: str
    cause: ErrorCode | None
    """Why it was refused; None: accepted, and kept because no workflow takes it."""
    signed: bool
    """Whether its signature verifies: only then are its body and query kept."""

    @property
    def bounded(self) -> bool:
        """Refused for what it is, not because we were away."""
        return self.cause not in (None, ErrorCode.SYSTEM_ERROR)


class PushKeeper:
    def __init__(
        self,
        pool: asyncpg.Pool | None,
        bounds: Bounds,
        *,
        secret: str,
        zone: tzinfo,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.bounds = bounds
        self._secret = secret
        self._zone = zone  # the business day a refusal is counted in
        self._timeout_s = timeout_s
        self._clock = clock
        self._window = PerMinute(bounds.per_source_per_minute, clock)
        self._counts: Counter[tuple[date, str, str, bool]] = Counter()
        self._flushed_at = self._pruned_at = clock()
        self._writing = asyncio.Lock()  # the counts' writes, one at a time

    async def keep(self, push: Push) -> bool:
        """Keep `push` as its kind allows; True when it is on record. A failure is logged, not
        raised: for a refused push the platform's retry is the other safety net."""
        admitted = not push.bounded or self._admit(push.source)
        if push.cause is not None:
            day = push.received_at.astimezone(self._zone).date()
            self._counts[(day, push.route, push.cause.name.lower(), admitted)] += 1
        try:
            if self.pool is None:
                raise RuntimeError("no database configured")
            async with asyncio.timeout(self._timeout_s):
                if admitted:
                    await self._insert(push)
                await self._housekeeping()
            return admitted
        except Exception:
            log.exception(
                "could not keep a %s push (%s): %s", push.route, push.reason, self.scrub(push.query)
            )
            return False

    def scrub(self, text: str) -> str:
        """`text` with the app secret replaced: error texts can quote what was sent."""
        return text.replace(self._secret, "[secret]") if self._secret else text

    async def flush(self) -> None:
        """Write the counts added up since the last time. One write at a time, so what was
        counted before a call is on record when it returns; a write that fails puts its counts
        back for the next one: a slow database loses no count."""
        async with self._writing:
            counts, self._counts = self._counts, Counter()
            self._flushed_at = self._clock()
            if not counts or self.pool is None:
                return
            try:
                await self.pool.executemany(
                    """
                    INSERT INTO refused_push_counts AS c (day, route, cause, refused, not_kept)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (day, route, cause) DO UPDATE
                    SET refused = c.refused + EXCLUDED.refused,
                        not_kept = c.not_kept + EXCLUDED.not_kept
                    """,
                    [
                        (day, route, cause, n, 0 if kept else n)
                        for (day, route, cause, kept), n in counts.items()
                    ],
                )
            except BaseException:
                self._counts.update(counts)
                raise

    def _admit(self, source: str) -> bool:
        admitted = self._window.admit(source)
        if not admitted and self._window.just_over(source):
            log.warning(
                "refused pushes from %s over %d a minute: counted, not kept, until the minute ends",
                source,
                self.bounds.per_source_per_minute,
            )
        return admitted

    async def _housekeeping(self) -> None:
        now = self._clock()
        if now - self._flushed_at >= _FLUSH_EVERY_S:
            # Not cut short by the request's timeout: a write cancelled half way could count
            # twice or not at all.
            await asyncio.shield(self.flush())
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = now
            assert self.pool is not None
            await self.pool.execute(
                "DELETE FROM rejected_pushes WHERE refused AND received_at < $1",
                datetime.now(self._zone) - timedelta(days=self.bounds.keep_days),
            )

    async def _insert(self, push: Push) -> None:
        assert self.pool is not None
        if push.signed:
            raw, digest, names = _text(push.body.decode("utf-8", "backslashreplace")), None, None
        else:
            raw, digest, names = "", hashlib.sha256(push.body).hexdigest(), _names(push)
        row = (
            push.received_at,
            push.route,
            push.method,
            _text(push.query[:STORED_BODY_BYTES]) if push.signed else "",
            raw,
            self._headers(push.headers),
            _text(push.reason)[:2000],
            push.bounded,
            push.source,
            digest,
            names,
        )
        if not push.bounded:
            await self.pool.execute(_INSERT, *row)
        else:
            cutoff = push.received_at - timedelta(days=self.bounds.keep_days)
            await self.pool.execute(_INSERT_AND_PRUNE, *row, self.bounds.max_rows, cutoff)

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        secret = self._secret
        kept = {
            _text(k)[:64]: _text(v)[:_HEADER_CHARS]
            for k, v in headers.items()
            if k.lower() not in _SECRET_HEADERS
            and not any(part in k.lower() for part in _SECRET_HEADER_PARTS)
            and not (secret and secret in v)
        }
        return dict(list(kept.items())[:_HEADERS_KEPT])


_COLUMNS: Final = """rejected_pushes (received_at, route, method, query, raw_body, headers,
    reason, refused, source, body_sha256, field_names)"""
_INSERT: Final = f"INSERT INTO {_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# The cap counts push ids, other pushes' included: at most `max_rows` bounded ones stay.
_INSERT_AND_PRUNE: Final = f"""
    WITH new AS ({_INSERT} RETURNING push_id)
    DELETE FROM rejected_pushes AS r USING new
    WHERE r.refused AND (r.push_id <= new.push_id - $12 OR r.received_at < $13)
"""


def _names(push: Push) -> list[str]:
    """The parameter names of an unsigned push, without their values."""
    text = push.body.decode("utf-8", "replace") if push.method == "POST" else push.query
    return sorted({_text(k)[:64] for k, _ in parse_qsl(text, keep_blank_values=True)})[:64]


def _text(text: str) -> str:
    """PostgreSQL text and jsonb hold no NUL character; a push may carry one."""
    return text.replace("\x00", "\\x00")
