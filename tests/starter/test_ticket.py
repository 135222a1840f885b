"""The kitchen ticket: laid out within the paper's columns with Chinese counted double, and sent
as ESC/POS to a network printer's raw port or a device file."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from schemas.order import DeliveryMode, OrderType, Stage
from schemas.sheet import OrderSheet, SheetLine
from starter.cli.format import display_width
from starter.cli.ticket import escpos, render_ticket, send, wrap

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sheet(**changes: object) -> OrderSheet:
    base = OrderSheet(
        order_id="27061900311184578",
        view_id="2706190031118",
        day_seq=17,
        store_code="SH-XH-001",
        store_name="老弄堂小馆(徐汇店)",
        order_type=OrderType.GOODS,
        delivery_mode=DeliveryMode.SELF_DELIVERY,
        stage=Stage.IN_PROGRESS,
        items=[
            SheetLine(name="红烧肉", spec="大份", quantity=1, boxes=1, unit_price=Decimal("38")),
            SheetLine(
                name="秘制葱油拌面加煎蛋加大排加青菜双拼超值套餐",
                spec="",
                quantity=12,
                boxes=0,
                unit_price=Decimal("26"),
            ),
            SheetLine(name="Cola 330ml", spec="", quantity=2, boxes=0, unit_price=Decimal("3")),
        ],
        caution="少放辣，不要香菜\x1b[2J",
        address="上海市徐汇区天钥桥路100号3栋1201室",
        expected_at=datetime(2026, 12, 5, 4, 30, tzinfo=UTC),
        promised_at=None,
        total=Decimal("356.00"),
    )
    return base.model_copy(update=changes)


def test_every_line_fits_and_quantities_are_flush_right() -> None:
    for width in (32, 48):
        lines = render_ticket(sheet(), width, SHANGHAI).splitlines()
        assert max(display_width(line) for line in lines) == width
        assert lines[1].strip() == "#17 老弄堂小馆(徐汇店)"
        assert "送达时间 12-05 12:30" in lines  # the store's time
        for name, quantity in (("红烧肉", 1), ("秘制葱油拌面", 12), ("Cola 330ml", 2)):
            line = next(line for line in lines if line.startswith(name))
            assert line.endswith(f"x{quantity}") and display_width(line) == width
        assert "  规格: 大份" in lines and "  餐盒: 1" in lines
        caution = next(line for line in lines if line.startswith("备注"))
        assert "\x1b" not in caution  # a customer's text moves no printer or terminal


def test_a_long_name_wraps_under_itself() -> None:
    lines = render_ticket(sheet(), 32, SHANGHAI).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("秘制"))
    assert lines[at].startswith("秘制葱油拌面加煎蛋加大排加青 ")  # 28 columns, then x12
    assert lines[at + 1] == "菜双拼超值套餐"
    assert wrap("一二三四五六七八九十", 7) == ["一二三", "四五六", "七八九", "十"]


def test_pickup_and_service_tickets_say_what_matters() -> None:
    pickup = render_ticket(sheet(delivery_mode=DeliveryMode.PICKUP), 32, SHANGHAI)
    assert "到店自取" in pickup and "地址" not in pickup
    service = render_ticket(
        sheet(order_type=OrderType.SERVICE, delivery_mode=DeliveryMode.ON_SITE), 32, SHANGHAI
    )
    assert "上门服务" in service and "上门时间" in service


def test_escpos_to_a_network_printer_and_a_device(tmp_path: Path) -> None:
    data = escpos(render_ticket(sheet(), 32, SHANGHAI))
    assert data.startswith(b"\x1b\x40\x1c\x26") and data.endswith(b"\x1d\x56\x42\x00")
    assert "红烧肉".encode("gb18030") in data
    received = bytearray()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def printer() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(4096):
                    received.extend(chunk)

        thread = threading.Thread(target=printer)
        thread.start()
        send(data, f"127.0.0.1:{server.getsockname()[1]}")
        thread.join(timeout=5)
    assert bytes(received) == data
    device = tmp_path / "lp0"
    send(data, str(device))
    assert device.read_bytes() == data
