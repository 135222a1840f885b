"""`orderctl report` (R4.3): one self-contained HTML file with the charts and the findings in
words, readable offline, and rendered by a real browser (headless Chromium) into a screenshot
that is not blank.

Chromium is installed for the run when missing, with Debian's package (`apt-get install -y
chromium`, as root); where that is impossible the rendering test is skipped with the reason."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import analytics as st
from analytics import report
from analytics.totals import Histogram, Raw
from tests.analytics.test_stats import Day
from tests.analytics.test_stats import demo_day as demo_day
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
pytestmark = pytest.mark.timeout(300)  # the first test waits for the demo's business day
CHARTS = ("hours", "daily", "stages", "compliance", "ratings", "scorecards")


@pytest.fixture(scope="module")
def page(demo_day: Day, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the demo's day, written by the command line as a person would."""
    out = tmp_path_factory.mktemp("report") / "day.html"
    period = demo_day.period
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "starter.cli",
            "report",
            "--out",
            str(out),
            "--from",
            str(period.start),
            "--to",
            str(period.end),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DATABASE_URL": demo_day.dsn},
    )
    assert done.returncode == 0, done.stderr
    assert "written to" in done.stdout
    return out


def test_the_report_is_self_contained(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "url(" not in html.replace("url(#", "")  # only the SVGs' own clip paths
    for tag in re.findall(r"<(?:img|iframe|object|embed)\b[^>]*>", html):
        pytest.fail(f"an external resource: {tag}")


def test_the_report_has_its_charts_and_findings(page: Path, demo_day: Day) -> None:
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == len(CHARTS)
    for caption in (
        "Orders per hour of the day",
        "price anomalies per 1,000 orders",
        "Time per stage",
        "Deadline compliance per clause",
        "Ratings",
        "Staff: deadlines met on time",
    ):
        assert caption in html
    assert "Findings (R4.3.2)" in html
    stats = demo_day.stats
    for finding in stats["findings"]:
        assert finding["message"].replace("&", "&amp;") in html
    if not stats["findings"]:
        assert "Nothing stands out in this period." in html
    for line in stats["comparison"]:
        assert line["text"] in html
    for card in stats["staff"]:
        assert f'<td class="text">{card["staff_id"]}</td>' in html
    assert f"<b>{stats['orders']['count']}</b>" in html


def test_findings_are_in_words_and_escaped() -> None:
    stats: dict[str, Any] = _hand_made()
    stats["findings"] = [
        {
            "kind": "patrol_found",
            "subject": "x",
            "severity": "warning",
            "figures": {},
            "message": "2 order(s) <b>only</b> the patrol found (R6.3.2).",
        }
    ]
    html = report.render(stats)
    assert "2 order(s) &lt;b&gt;only&lt;/b&gt; the patrol found (R6.3.2)." in html
    assert "Nothing stands out" not in html
    quiet = report.render({**_hand_made(), "findings": []})
    assert "Nothing stands out in this period." in quiet


def test_a_period_with_nothing_says_so_instead_of_drawing_bare_axes() -> None:
    period = st.Period.today()
    html = report.render(st.compute(Raw(period, "Asia/Shanghai", None)))
    assert "<svg" not in html
    for sentence in (
        "No orders in this period: nothing to show by hour or by day.",
        "No ratings in this period.",
        "No deadline fell in this period.",
    ):
        assert sentence in html


def _hand_made() -> dict[str, Any]:
    """A whole stats answer without a database: the pure pipeline on hand-made rows."""
    period = st.Period.today()
    raw = Raw(period, "Asia/Shanghai", "store")
    row = {
        "period": "current",
        "store_code": "S-1",
        "order_type": "goods",
        "region": "r",
        "hour": 12,
        "outcome": "closed",
    }
    raw.rows["orders"] = [
        row
        | {
            "orders": 3,
            "gross": 100,
            "discounts": 10,
            "paid": 90,
            "refunded": 0,
            "rated": 1,
            "rating_sum": 5,
            "r1": 0,
            "r2": 0,
            "r3": 0,
            "r4": 0,
            "r5": 1,
            "complained": 0,
            "breached": 0,
            "hard": 0,
            "anomalous": 0,
            "patrol": 0,
        }
    ]
    raw.rows["durations"] = [
        row
        | {
            "metric": "stage:in_progress",
            "bucket": Histogram.bucket_of(600),
            "n": 3,
            "seconds": 1800.0,
        }
    ]
    raw.rows["deadlines"] = [row | {"clause": "prepare", "met": 2, "breached": 1, "hard": 0}]
    raw.rows["staff"] = [
        {
            "period": "current",
            "staff_id": "S-101",
            "orders": 3,
            "handled": 3,
            "handling_seconds": 1800.0,
            "rated": 1,
            "rating_sum": 5,
            "complaints": 0,
            "anomalies_decided": 0,
        }
    ]
    return st.compute(raw)


# --- a real browser -------------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    quiet = {"capture_output": True, "timeout": 900, "check": False}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], env=env, **quiet)  # type: ignore[call-overload]
    subprocess.run(  # type: ignore[call-overload]
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"], env=env, **quiet
    )
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[str]:
    found = _chromium()
    if found is None:
        pytest.skip("Chromium is missing and cannot be installed here (needs root and apt-get)")
    yield found


def png_pixels(data: bytes) -> tuple[int, int, set[tuple[int, ...]]]:
    """Width, height and the distinct colours of an 8-bit RGB or RGBA PNG (what Chromium
    writes): a tiny reader, so the check needs nothing but the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + best) & 0xFF
        if y % 4 == 0:  # every fourth row is plenty to tell a page from a blank one
            colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels * 2))
        previous = line
    return width, height, colours


@pytest.mark.timeout(900)  # installing Chromium on a fresh machine takes a few minutes
def test_the_report_renders_in_headless_chromium(page: Path, chromium: str, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 30_000, len(data)  # a blank page of that size compresses to ~10 kB
    width, height, colours = png_pixels(data)
    assert (width, height) == (1280, 2000)
    # Text, tables and the charts' colours: a blank or broken page has a handful.
    assert len(colours) > 200, len(colours)
    for colour in ((0x15, 0x65, 0xC0), (0x2E, 0x7D, 0x32)):  # the bars' blue, "met" green
        assert any(all(abs(a - b) <= 6 for a, b in zip(c, colour, strict=True)) for c in colours)
