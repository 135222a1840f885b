"""How a variable's text becomes a setting's value: each parser raises ValueError saying what
is wrong, and `infra.settings` puts the variable's name in front."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SHIFT_MODES: Final = ("require", "prefer", "ignore")


def text(raw: str) -> str:
    return raw


def integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("is not an integer") from None


def number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("is not a number") from None


def flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not 1/true/yes or 0/false/no")


def positive_int(raw: str) -> int:
    value = integer(raw)
    if value < 1:
        raise ValueError("is not a positive integer")
    return value


def positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError("is not a positive number")
    return value


def decimal(raw: str) -> Decimal:
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ValueError("is not a decimal number") from None


def minutes(raw: str) -> timedelta:
    return timedelta(minutes=integer(raw))


def zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not a known time zone") from None


def shifts(raw: str) -> str:
    if raw.lower() not in SHIFT_MODES:
        raise ValueError(f"must be one of {', '.join(SHIFT_MODES)}")
    return raw.lower()


def flavour(raw: str) -> str:
    flavour = raw.strip().lower()
    if flavour not in ("wecom", "dingtalk", "feishu", "webhook"):
        raise ValueError("is not wecom, dingtalk, feishu or webhook")
    return flavour


def language(raw: str) -> str:
    if raw not in ("zh-CN", "en"):
        raise ValueError("is not zh-CN or en")
    return raw


def names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(raw: str) -> tuple[Network, ...]:
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"has {part!r}, neither an address nor a CIDR network") from None
    return tuple(found)


def given(raw: str) -> bool:
    """no-color.org: set to anything but the empty string (unset, as blank) means yes."""
    return raw != ""


def http_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("is not an http:// or https:// URL")
    return raw.rstrip("/")
