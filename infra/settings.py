"""Reading thresholds from the environment, so the company tunes them without a code change.

A malformed value fails at import with the variable's name, not deep inside an activity.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def env_decimal(name: str, default: str) -> Decimal:
    raw = _raw(name) or default
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name}={raw!r} is not a decimal number") from None


def env_int(name: str, default: int) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def env_float(name: str, default: float) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (_raw(name) or default).lower()
    if raw not in choices:
        raise ValueError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return raw


def env_zone(name: str, default: str) -> ZoneInfo:
    raw = _raw(name) or default
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name}={raw!r} is not a known time zone") from None


# Shifts and service slots are written in the company's local time.
BUSINESS_TZ = env_zone("ORDERFLOW_TIMEZONE", "Asia/Shanghai")

# Salting the phone hash keeps customer ids from being reversed by hashing every number. The
# migration runner hands it to data migrations that compute ids (`infra.database.migrate`).
CUSTOMER_ID_SALT = os.environ.get("ORDERFLOW_CUSTOMER_SALT", "orderflow")
