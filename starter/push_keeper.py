"""What the gateway keeps of the pushes it refused or that no workflow takes (R6.3.2), within
bounds: bad traffic must not fill the PostgreSQL server that Temporal shares.

- A push accepted but reaching no workflow (an ended order, a kind no workflow consumes) is the
  only record of what it says: kept whole, never pruned.
- A refused push is kept for a person to see why, at most `max_rows` of them and for
  `keep_days`; each source may have `per_source_per_minute` kept, the rest only counted.
- A push whose signature did not verify may come from anyone: its metadata, the names of its
  parameters and a SHA-256 of its body are kept, not the body. Of one too large to read, what
  was read is kept, up to STORED_BODY_BYTES.

Every refused push is counted in `refused_push_counts` by day, route and cause, kept or not,
so what was refused stays visible (`orderctl pushes`) when its body is gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl

import asyncpg
from starlette.requests import Request

from infra.rate import PerMinute
from infra.settings import settings
from meituan.codes import ErrorCode

log = logging.getLogger("orderflow.gateway")

# Headers that could carry credentials of whoever called are not kept.
_SECRET_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
_SECRET_HEADER_PARTS: Final = ("secret", "token", "password", "api-key", "apikey", "auth")
STORED_BODY_BYTES: Final = 8192
"""What is kept of an oversized push: enough to see what it was."""


@dataclass(frozen=True)
class Bounds:
    """How much refused traffic is kept (`ORDERFLOW_REFUSED_PUSHES_*`)."""

    max_rows: int
    keep_days: float
    per_source_per_minute: int


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
    cause: ErrorCode | None = None
    """Why it was refused; None: accepted, and kept because no workflow takes it."""
    keep_body: bool = True
    """False: its signature did not verify, so anyone may have sent anything in it."""

    @classmethod
    def of(cls, request: Request, route: str, body: bytes, query: str, **kw: Any) -> Push:
        """`kw`: received_at, reason, cause and keep_body."""
        source = request.client.host if request.client else ""
        headers = dict(request.headers.items())
        return cls(route, request.method, query, body, headers, source, **kw)


class PushKeeper:
    def __init__(
        self, pool: asyncpg.Pool | None, bounds: Bounds, secret: str, timeout_s: float
    ) -> None:
        self._zone = settings().business.timezone  # the day a refusal is counted in
        self.pool = pool
        self.bounds = bounds
        self._secret = secret
        self._timeout_s = timeout_s
        self._window = PerMinute(bounds.per_source_per_minute)

    async def keep(self, push: Push) -> bool:
        """Keep `push` as its kind allows; True when it is on record. A failure is logged, not
        raised: for a refused push the platform's retry is the other safety net."""
        refused = push.cause is not None
        admitted = not refused or self._window.admit(push.source)
        if refused and not admitted and self._window.just_over(push.source):
            log.warning(
                "refused pushes from %s over %d a minute: counted, not kept, until the minute ends",
                push.source,
                self.bounds.per_source_per_minute,
            )
        try:
            if self.pool is None:
                raise RuntimeError("no database configured")
            async with asyncio.timeout(self._timeout_s):
                if refused:
                    await self._count(push, kept=admitted)
                if admitted:
                    await self._insert(push)
            return admitted
        except Exception:
            log.exception(
                "could not keep a %s push (%s): %s",
                push.route,
                push.reason,
                self.scrub(push.query),
            )
            return False

    def scrub(self, text: str) -> str:
        """`text` with the app secret replaced: error texts can quote what was sent."""
        return text.replace(self._secret, "[secret]") if self._secret else text

    async def _insert(self, push: Push) -> None:
        assert self.pool is not None
        if push.keep_body:
            raw, digest, names = _text(push.body.decode("utf-8", "backslashreplace")), None, None
        else:
            raw, digest, names = "", hashlib.sha256(push.body).hexdigest(), _names(push)
        row = (
            push.received_at,
            push.route,
            push.method,
            _text(push.query if push.keep_body else ""),
            raw,
            self._headers(push.headers),
            _text(push.reason)[:2000],
            push.cause is not None,
            push.source,
            digest,
            names,
        )
        if push.cause is None:
            await self.pool.execute(_INSERT, *row)
        else:
            cutoff = push.received_at - timedelta(days=self.bounds.keep_days)
            await self.pool.execute(_INSERT_AND_PRUNE, *row, self.bounds.max_rows, cutoff)

    async def _count(self, push: Push, *, kept: bool) -> None:
        assert self.pool is not None and push.cause is not None
        await self.pool.execute(
            """
            INSERT INTO refused_push_counts AS c (day, route, cause, refused, not_kept)
            VALUES ($1, $2, $3, 1, $4)
            ON CONFLICT (day, route, cause) DO UPDATE
            SET refused = c.refused + 1, not_kept = c.not_kept + EXCLUDED.not_kept
            """,
            push.received_at.astimezone(self._zone).date(),
            push.route,
            push.cause.name.lower(),
            0 if kept else 1,
        )

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        secret = self._secret
        return {
            k: _text(v)
            for k, v in headers.items()
            if k.lower() not in _SECRET_HEADERS
            and not any(part in k.lower() for part in _SECRET_HEADER_PARTS)
            and not (secret and secret in v)
        }


_COLUMNS: Final = """rejected_pushes (received_at, route, method, query, raw_body, headers,
    reason, refused, source, body_sha256, field_names)"""
_INSERT: Final = f"INSERT INTO {_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# The cap counts push ids, kept pushes' included: at most `max_rows` refused ones stay.
_INSERT_AND_PRUNE: Final = f"""
    WITH new AS ({_INSERT} RETURNING push_id)
    DELETE FROM rejected_pushes AS r USING new
    WHERE r.refused AND (r.push_id <= new.push_id - $12 OR r.received_at < $13)
"""


def _names(push: Push) -> list[str]:
    """The parameter names of an unverified push, without their values."""
    text = push.body.decode("utf-8", "replace") if push.method == "POST" else push.query
    return sorted({_text(k)[:64] for k, _ in parse_qsl(text, keep_blank_values=True)})[:64]


def _text(text: str) -> str:
    """PostgreSQL text and jsonb hold no NUL character; a push may carry one."""
    return text.replace("\x00", "\\x00")
