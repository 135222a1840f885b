"""How `orderctl` shows orders to a person, and the rows its `--json` output is made of.

Kept apart from the command plumbing so the rendering can change without touching how
Temporal is called. Times are shown in the business's zone; JSON keeps ISO 8601 with offsets.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from schemas.reads import OpenAnomaly, OrderRow
from schemas.status import DeadlineState, OrderStatus, Promise
from starter.cli.terminal import Palette, Style, printable

DASH = "-"
OVERDUE = "overdue"


def dumps(value: Any) -> str:
    """Chinese names and addresses stay readable in JSON output."""
    return json.dumps(value, ensure_ascii=False, indent=2)


# --- primitives -----------------------------------------------------------------------------------


def display_width(text: str) -> int:
    """Columns a terminal uses: CJK characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


Mark = Callable[[Sequence[str]], Style | None]
"""A row's style, from its cells as shown."""


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    indent: str = "",
    mark: Mark | None = None,
) -> str:
    """Left-aligned columns; the last one is not padded, so long details don't widen the rest.
    Cells are measured as shown (escaped); the header is bold, a row as `mark` says."""
    lines = [[printable(c) for c in headers], *([printable(c) for c in row] for row in rows)]
    widths = [max(display_width(line[i]) for line in lines) for i in range(len(headers))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell + " " * (widths[i] - display_width(cell)) if i < len(line) - 1 else cell
            for i, cell in enumerate(line)
        ]
        style = Style.BOLD if n == 0 else mark(line) if mark else None
        shown = "  ".join(cells).rstrip()
        out.append(indent + Palette.styled(shown, style) if shown else "")
    return "\n".join(out)


def pairs(items: Sequence[tuple[str, str]], indent: str = "") -> str:
    """`label  value` lines with the values aligned."""
    width = max((display_width(label) for label, _ in items), default=0)
    return "\n".join(
        f"{indent}{label}{' ' * (width - display_width(label))}  {value}" for label, value in items
    )


def moment(value: datetime | None, zone: tzinfo) -> str:
    if value is None:
        return DASH
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def left(due: datetime, now: datetime) -> str:
    """How long until a due time, or how far past it."""
    seconds = (due - now).total_seconds()
    return f"in {span(seconds)}" if seconds >= 0 else f"{OVERDUE} {span(seconds)}"


def flag(value: bool) -> str:
    return "yes" if value else DASH


def text(value: object) -> str:
    return DASH if value is None or value == "" else str(value)


def details(values: Mapping[str, Any]) -> str:
    """`key=value` pairs of a timeline entry, leaving out what is empty."""
    parts = []
    for key, value in values.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            rendered = ",".join(str(v) for v in value)
        elif isinstance(value, dict | list):
            rendered = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        else:
            rendered = str(value)
        parts.append(f"{key}={rendered}")
    return " ".join(parts)


# --- read commands --------------------------------------------------------------------------------


def render_orders(rows: Sequence[OrderRow], zone: tzinfo) -> str:
    if not rows:
        return "no orders match"
    return table(
        ["ORDER", "STAGE", "TYPE", "STORE", "ASSIGNEE", "BREACHED", "ANOMALY", "STARTED"],
        [
            [
                r.order_id,
                text(r.stage),
                text(r.order_type),
                text(r.store_code),
                text(r.assignee),
                flag(r.breached),
                flag(r.anomaly_open),
                moment(r.started_at, zone),
            ]
            for r in rows
        ],
    )


def render_anomalies(rows: Sequence[OpenAnomaly], zone: tzinfo, now: datetime) -> str:
    if not rows:
        return "no open anomalies"
    return table(
        ["ORDER", "ANOMALY", "KIND", "STATE", "STORE", "OPENED", "DUE", "LEFT", "DETAIL"],
        [
            [
                r.order_id,
                r.anomaly_id,
                r.kind,
                r.state,
                r.store_code,
                moment(r.opened_at, zone),
                moment(r.due_at, zone),
                left(r.due_at, now),
                r.detail,
            ]
            for r in rows
        ],
    )


def render_status(status: OrderStatus, zone: tzinfo, now: datetime, sheet: str = "") -> str:
    """The whole picture of one order, in the order a person reads it; `sheet`: what to make
    or do (`orders.render_sheet`)."""
    s = status
    return "\n".join(
        [
            _heading(s),
            pairs(_facts(s, zone), "  "),
            *([_section("what", sheet)] if sheet else []),
            _section("deadlines", _deadlines(s, zone, now)),
            _section("breaches", _breaches(s, zone)),
            _section("anomalies", _anomalies(s, zone)),
            _section("feedback", _feedback(s, zone)),
            _section("refunds", _refunds(s, zone)),
            _section("timeline", _timeline(s, zone)),
        ]
    )


def _heading(s: OrderStatus) -> str:
    kind = ", ".join(
        v
        for v in (
            s.order_type.value if s.order_type else None,
            s.store_code,
            s.region,
            s.delivery_mode.value if s.delivery_mode else None,
        )
        if v
    )
    return f"order {s.order_id}  {s.stage.value}  ({kind})"


def _facts(s: OrderStatus, zone: tzinfo) -> list[tuple[str, str]]:
    """The labelled lines under the heading; only what applies to this order."""
    facts: list[tuple[str, str]] = []
    if s.paused_stage is not None:
        facts.append(("on hold", f"paused at {s.paused_stage.value} until the anomaly is decided"))
    if s.awaiting_reconfirmation:
        facts.append(("changed", "the customer changed the order; confirm with them again"))
    if s.assignee is not None:
        a = s.assignee
        facts.append(
            ("assignee", f"{a.staff_id} {a.name} ({a.department}, manager {a.manager_id})")
        )
    else:
        facts.append(("assignee", DASH))
    if s.promise is not None:
        facts.append(("promise", _promise(s.promise, zone)))
    if s.booking is not None:
        b = s.booking
        facts.append(
            ("booking", f"{b.staff_id} {moment(b.slot_start, zone)} - {moment(b.slot_end, zone)}")
        )
    if s.rating is not None:
        facts.append(("rating", f"{s.rating}/5"))
    facts.append(("times", getattr(zone, "key", str(zone))))
    return facts


def _promise(p: Promise, zone: tzinfo) -> str:
    promise = f"delivery {moment(p.delivery_at, zone)}"
    if p.ready_at is not None:
        promise += f", ready {moment(p.ready_at, zone)}"
    if p.promises:
        promise += f", {p.promises!r}"
    return promise + f"; by {p.confirmed_by} at {moment(p.confirmed_at, zone)}"


def _breaches(s: OrderStatus, zone: tzinfo) -> str:
    if not s.breaches:
        return ""
    return table(
        ["KEY", "CLAUSE", "AT", "HARD", "ACTION"],
        [
            [b.key, b.clause.value, moment(b.at, zone), flag(b.hard), text(b.action)]
            for b in s.breaches
        ],
        "  ",
    )


def _anomalies(s: OrderStatus, zone: tzinfo) -> str:
    if not s.anomalies:
        return ""
    return table(
        ["ID", "KIND", "OPENED", "PAUSED AT", "DECISION", "RESUMED", "CLOSED", "DETAIL"],
        [
            [
                a.anomaly_id,
                a.kind.value,
                moment(a.opened_at, zone),
                a.paused_stage.value,
                text(a.decision) if a.closed_at else "open",
                DASH if a.resumed is None else flag(a.resumed),
                moment(a.closed_at, zone),
                a.detail,
            ]
            for a in s.anomalies
        ],
        "  ",
    )


def _feedback(s: OrderStatus, zone: tzinfo) -> str:
    if not s.feedback:
        return ""
    return table(
        ["CASE", "KIND", "STATE", "ROUND", "OWNER", "OPENED", "TEXT"],
        [
            [
                str(c.case),
                c.kind.value,
                c.state.value,
                str(c.round),
                text(c.owner),
                moment(c.opened_at, zone),
                c.text,
            ]
            for c in s.feedback
        ],
        "  ",
    )


def _refunds(s: OrderStatus, zone: tzinfo) -> str:
    if not s.refunds:
        return ""
    return table(
        ["REFUND", "STATE", "PARTIAL", "AMOUNT", "REQUESTED", "DECIDED BY", "REASON"],
        [
            [
                r.refund_id,
                r.state.value,
                flag(r.partial),
                text(r.amount),
                moment(r.requested_at, zone),
                text(r.decided_by),
                r.reason,
            ]
            for r in s.refunds
        ],
        "  ",
    )


def _timeline(s: OrderStatus, zone: tzinfo) -> str:
    return table(
        ["AT", "EVENT", "ACTOR", "DETAILS"],
        [[moment(e.at, zone), e.event, e.actor, details(e.details)] for e in s.timeline],
        "  ",
    )


def _deadlines(s: OrderStatus, zone: tzinfo, now: datetime) -> str:
    if not s.deadlines:
        return ""
    rows = []
    for d in s.deadlines:
        running = d.state in (DeadlineState.OPEN, DeadlineState.BREACHED)
        ended = moment(d.ended_at, zone) if d.ended_at else DASH
        rows.append(
            [
                d.key,
                d.state.value,
                moment(d.due_at, zone),
                moment(d.hard_at, zone),
                left(d.due_at, now) if running else ended,
            ]
        )
    return table(["KEY", "STATE", "DUE", "HARD LIMIT", "LEFT / ENDED"], rows, "  ", _by_state)


DEADLINE_STYLES: dict[str, Style] = {
    DeadlineState.BREACHED.value: Style.RED,
    DeadlineState.HARD_BREACHED.value: Style.RED,
    DeadlineState.MET_LATE.value: Style.YELLOW,
    DeadlineState.VOID.value: Style.DIM,
}


def _by_state(row: Sequence[str]) -> Style | None:
    return DEADLINE_STYLES.get(row[1])


def _section(title: str, body: str) -> str:
    return f"\n{Palette.styled(title, Style.BOLD)}\n{body or '  none'}"
