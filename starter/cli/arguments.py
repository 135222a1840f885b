"""Arguments as a person types them, and pydantic's findings put back in the words of the
command line.

Every type here raises `argparse.ArgumentTypeError`, so a bad value is a usage error (exit 2)
before anything is sent to Temporal.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from schemas.contract import order_id_in
from starter.cli.base import business_zone

_RELATIVE = re.compile(r"\+(?:\d+(?:\.\d+)?[smhd])+")
_RELATIVE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
WHEN_HELP = "+90m, +2h, +1d (from now) or ISO 8601; without a zone it is Asia/Shanghai time"


def when(value: str, now: datetime | None = None) -> datetime:
    """A moment as a person types it: relative to now, or ISO 8601 (naive = business zone)."""
    text = value.strip()
    if _RELATIVE.fullmatch(text):
        delta = timedelta()
        for amount, unit in _RELATIVE_PART.findall(text):
            delta += timedelta(**{_UNITS[unit]: float(amount)})
        return (now or datetime.now(UTC)) + delta
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected +90m, +2h, +1d or ISO 8601 such as 2025-06-01T18:30, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=business_zone())
    return moment


def order_id(value: str) -> str:
    """The platform's order_id; `order-<id>` (the workflow ID) is accepted too."""
    text = order_id_in(value)
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(f"not an order id: {value!r}")
    return text


def keyword(value: str) -> str:
    """A search-attribute value; control characters could only ever be a mistake."""
    if not value or any(not c.isprintable() for c in value):
        raise argparse.ArgumentTypeError(f"not a usable value: {value!r}")
    return value


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {value!r}")
    return number


def cancel_code(value: str) -> int:
    """Merchant cancel codes are 2001-2016 on the platform."""
    try:
        code = int(value)
    except ValueError:
        code = 0
    if not 2001 <= code <= 2016:
        raise argparse.ArgumentTypeError(f"a merchant cancel code is 2001-2016, got {value!r}")
    return code


def money(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"expected an amount such as 58.00, got {value!r}"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"expected an amount such as 58.00, got {value!r}")
    return amount


CORRECTABLE = ("name", "phone", "address", "latitude", "longitude", "expected_at", "remarks")


def correction(value: str) -> tuple[str, Any]:
    """`field=value` of a corrected order detail."""
    field, sep, raw = value.partition("=")
    field = field.strip().replace("-", "_")
    if not sep or field not in CORRECTABLE:
        raise argparse.ArgumentTypeError(
            f"expected field=value with field one of {', '.join(CORRECTABLE)}, got {value!r}"
        )
    if field == "expected_at":
        return field, when(raw)
    if field in ("latitude", "longitude"):
        try:
            return field, float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field} is a number, got {raw!r}") from None
    return field, raw


# Model fields as the person typed them, for validation messages.
OPTION_OF = {
    "promised_delivery_at": "--delivery-at",
    "promised_ready_at": "--ready-at",
    "promises": "--promises",
    "channel": "--channel",
    "note": "--note",
    "percent": "--percent",
    "detail": "--detail",
    "new_promised_at": "--new-time",
    "cancel_code": "--code",
    "reason_code": "--code",
    "proof": "--proof",
    "score": "--score",
    "comment": "--comment",
    "reason": "--reason",
    "to": "--to",
    "case": "CASE",
    "response": "--response",
    "resolution": "--resolution",
    "refund_id": "REFUND_ID",
    "remind_id": "REMIND_ID",
    "text": "--text",
    "cause": "--cause",
    "responsibility": "--responsibility",
    "new_total": "--new-total",
    "corrections": "--correct",
    "changes": "the changed fields",
}
_SNAKE_FIELDS = re.compile(r"\b(" + "|".join(k for k in OPTION_OF if "_" in k) + r")\b")


def explain_invalid(err: ValidationError) -> str:
    """Pydantic's findings in the words of the command line."""
    findings = []
    for item in err.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        message = _SNAKE_FIELDS.sub(lambda m: OPTION_OF[m.group(1)], message)
        loc = [str(part) for part in item["loc"]]
        if loc:
            name = OPTION_OF.get(loc[0], "--" + loc[0].replace("_", "-"))
            if loc[0] == "changes" and len(loc) > 1:
                name = "--" + loc[1].replace("_", "-")
            findings.append(f"argument {name}: {message}")
        else:
            findings.append(message)
    return "; ".join(findings)
