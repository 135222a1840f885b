"""The kitchen or service ticket: what to make or do, laid out for a receipt printer.

58 mm paper takes 32 columns of the printer's font, 80 mm paper 48; a Chinese character takes
two. The plain text is what a person reads on a screen; `escpos` wraps it for a printer (GB18030,
the character set Chinese thermal printers take, then a cut), sent to a device file or to a
network printer's raw port (9100).
"""

from __future__ import annotations

import socket
from datetime import tzinfo
from pathlib import Path

from schemas.order import DeliveryMode, OrderType
from schemas.sheet import OrderSheet, SheetLine
from starter.cli.format import display_width
from starter.cli.terminal import printable

PAPER = {"58": 32, "80": 48}
"""Columns per paper width, in the printers' standard 12x24 font."""

MODES = {
    DeliveryMode.SELF_DELIVERY: "商家自配送",
    DeliveryMode.PLATFORM_COURIER: "美团配送",
    DeliveryMode.PICKUP: "到店自取",
    DeliveryMode.ON_SITE: "上门服务",
}
TYPES = {OrderType.GOODS: "外卖", OrderType.SERVICE: "服务"}


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` columns, a wide character counting two."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line, used = "", 0
        for char in paragraph:
            w = display_width(char)
            if used + w > width:
                lines.append(line)
                line, used = "", 0
            line += char
            used += w
        lines.append(line)
    return lines


def _centred(text: str, width: int) -> str:
    pad = max(width - display_width(text), 0)
    return " " * (pad // 2) + text


def _spread(left: str, right: str, width: int) -> list[str]:
    """`left` then `right` flush to the right edge, `left` wrapped when both do not fit."""
    room = width - display_width(right) - 1
    head, *rest = wrap(left, room)
    return [head + " " * (width - display_width(head) - display_width(right)) + right, *rest]


def _line(item: SheetLine, width: int) -> list[str]:
    lines = _spread(printable(item.name), f"x{item.quantity}", width)
    if item.spec:
        lines += wrap(f"  规格: {printable(item.spec)}", width)
    if item.boxes:
        lines += wrap(f"  餐盒: {item.boxes}", width)
    return lines


def render_ticket(sheet: OrderSheet, width: int, zone: tzinfo) -> str:
    s = sheet
    number = f"#{s.day_seq}" if s.day_seq is not None else f"订单 {s.order_id}"
    when = s.promised_at or s.expected_at
    out = ["=" * width, *wrap(_centred(f"{number} {s.store_name or s.store_code}", width), width)]
    out += ["=" * width, *_spread(TYPES[s.order_type], MODES[s.delivery_mode], width)]
    out += wrap(f"订单号 {s.view_id or s.order_id}", width)
    if when is not None:
        label = "上门时间" if s.order_type is OrderType.SERVICE else "送达时间"
        out += wrap(f"{label} {when.astimezone(zone):%m-%d %H:%M}", width)
    out.append("-" * width)
    for item in s.items:
        out += _line(item, width)
    out.append("-" * width)
    if s.caution:
        out += wrap(f"备注: {printable(s.caution)}", width)
    if s.address and s.delivery_mode is not DeliveryMode.PICKUP:
        out += wrap(f"地址: {printable(s.address)}", width)
    out += _spread("合计", f"¥{s.total}", width)
    out.append("=" * width)
    return "\n".join(line.rstrip() for line in out) + "\n"


ESC_INIT = b"\x1b\x40"  # ESC @: reset
CHINESE = b"\x1c\x26"  # FS &: the printer's Chinese character mode
FEED_AND_CUT = b"\n\n\n\x1d\x56\x42\x00"  # GS V 66 0: feed and cut


def escpos(text: str) -> bytes:
    return ESC_INIT + CHINESE + text.encode("gb18030", errors="replace") + FEED_AND_CUT


def send(data: bytes, target: str, timeout_s: float = 10.0) -> None:
    """To a device file (`/dev/usb/lp0`) or a network printer (`host:9100`)."""
    host, sep, port = target.rpartition(":")
    if sep and port.isdigit() and not target.startswith("/"):
        with socket.create_connection((host, int(port)), timeout=timeout_s) as printer:
            printer.sendall(data)
        return
    with Path(target).open("wb") as device:
        device.write(data)
