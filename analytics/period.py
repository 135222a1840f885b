"""What the figures are about: a period of business days, how figures are grouped, the zone.

Days are cut in the business zone (Asia/Shanghai), not UTC: an order at 01:00 local time is
the day's, as the store sees it. PostgreSQL cuts them with the zone's IANA name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from infra.settings import settings

Group = Literal["store", "region", "type", "hour"]
GROUPS: tuple[Group, ...] = ("store", "region", "type", "hour")


@dataclass(frozen=True)
class Period:
    """Business days `start`..`end`, both included, in the business zone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """R4.3.2 the same length just before, to compare with."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        start = datetime.combine(self.start, datetime.min.time(), zone)
        end = datetime.combine(self.end + timedelta(days=1), datetime.min.time(), zone)
        return start, end

    def label(self) -> str:
        return str(self.start) if self.days == 1 else f"{self.start} – {self.end}"

    @classmethod
    def today(cls, zone: tzinfo | None = None) -> Period:
        zone = zone or settings().business.timezone
        day = datetime.now(zone).date()
        return cls(day, day)


def zone_name(zone: tzinfo) -> str:
    """The IANA name PostgreSQL cuts days with."""
    return str(getattr(zone, "key", None) or zone)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str) -> date:
    """A business day as typed: 2025-06-01, or today / yesterday."""
    text = value.strip().lower()
    today = datetime.now(settings().business.timezone).date()
    if text in ("today", "yesterday"):
        return today - timedelta(days=1 if text == "yesterday" else 0)
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"expected a date such as 2025-06-01 (or today, yesterday), got {value!r}")


def period_of(start: date | None, end: date | None, zone: tzinfo | None = None) -> Period:
    """--from / --to as typed: either alone means that one day; neither means today."""
    zone = zone or settings().business.timezone
    if start is None and end is None:
        return Period.today(zone)
    first = start or end
    last = end or start
    assert first is not None and last is not None
    return Period(first, last)
