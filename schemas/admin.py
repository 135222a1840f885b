"""What an admin sees and changes outside an order: a customer's credit profile, a ban and its
lifting (R5.3.3), people and their skills (R7.1), stock (R2.2.1), a store's hours and its own
policy terms; each change on record with who, when, before, after and why."""

from __future__ import annotations

from datetime import date, datetime, time
from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import Model
from schemas.people import Role
from schemas.policy import OrderPolicy


class CreditLine(Model):
    order_id: str
    kind: str
    delta: int
    score_after: int
    at: datetime


class CustomerProfile(Model):
    """The customer's standing; never their name or number."""

    customer_id: str
    credit_score: int
    status: str  # good | restricted | banned
    first_seen_at: datetime
    last_order_at: datetime | None
    credit: list[CreditLine]  # newest first
    audit: list[AuditEntry]  # bans and lifts, newest first


class Standing(Model):
    """A ban or its lifting: the reason is required, it goes on record."""

    reason: str = Field(min_length=1, max_length=500)


class AuditEntry(Model):
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str


CustomerProfile.model_rebuild()


class NewPerson(Model):
    """R7.1 a person joins: their department sets their region and their manager."""

    staff_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=64)
    department: str
    role: Role
    capacity: int = Field(ge=0, le=100)
    reason: str = Field(min_length=1, max_length=500)


class PersonChange(Model):
    """What changes about a person; what is left out stays."""

    department: str | None = None
    role: Role | None = None
    capacity: int | None = Field(default=None, ge=0, le=100)
    active: bool | None = None
    reason: str = Field(min_length=1, max_length=500)


class SkillLevels(Model):
    """R7.1 the skills assignment matches on, each with its level (1-5); the set replaces the
    person's skills."""

    skills: dict[str, int]
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("skills")
    @classmethod
    def _levels(cls, value: dict[str, int]) -> dict[str, int]:
        for skill, level in value.items():
            if not skill or not 1 <= level <= 5:
                raise ValueError(f"{skill or '(empty)'}: a skill's level is 1 to 5, not {level}")
        return value


class PersonView(Model):
    staff_id: str
    name: str
    department: str
    region: str
    role: Role
    capacity: int
    active_load: int
    active: bool
    skills: dict[str, int]


class Restock(Model):
    """R2.2.1 goods arrived: on hand goes up by `quantity`."""

    quantity: int = Field(gt=0, le=100_000)
    reason: str = Field(min_length=1, max_length=500)


class StockCount(Model):
    """R2.2.1 a count: on hand is set to what was counted (never below what orders hold)."""

    on_hand: int = Field(ge=0, le=1_000_000)
    reason: str = Field(min_length=1, max_length=500)


class StockLine(Model):
    store_code: str
    sku: str
    name: str
    on_hand: int
    reserved: int
    low_water: int


class OpeningRange(Model):
    weekday: int = Field(ge=1, le=7)  # ISO: 1 Monday .. 7 Sunday
    opens: time
    closes: time

    @model_validator(mode="after")
    def _ordered(self) -> OpeningRange:
        if self.opens >= self.closes:
            raise ValueError(f"opens {self.opens} is not before closes {self.closes}")
        return self


class StoreHours(Model):
    """The store's hours, all of them (they replace what was set); none: always open."""

    hours: list[OpeningRange]
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _apart(self) -> StoreHours:
        ranges = sorted((h.weekday, h.opens, h.closes) for h in self.hours)
        for (day, _, closes), (next_day, opens, _) in pairwise(ranges):
            if day == next_day and opens < closes:
                raise ValueError(f"two ranges on day {day} overlap at {opens}")
        return self


class StoreTerms(Model):
    """The store's own policy terms over its type's (e.g. `{"deadlines": {"prepare":
    {"minutes": 20}}}`); `{}` clears them."""

    terms: dict[str, Any]
    reason: str = Field(min_length=1, max_length=500)


class StoreView(Model):
    store_code: str
    name: str
    order_type: str
    hours: list[OpeningRange]
    terms: dict[str, Any]
    effective: OrderPolicy  # the terms its next order takes
    problem: str | None = None  # its own terms no longer fit the policy


class NewMeasure(Model):
    """R4.3.3 a measure taken on a finding (its kind and subject, as `orderctl stats` gives
    them): what will change, who owns it, by when."""

    finding_kind: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=1, max_length=64)
    what: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=32)
    due: date


class MeasureEnd(Model):
    state: Literal["done", "dropped"]
