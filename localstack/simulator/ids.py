"""Ids the simulated platform hands out, never the same twice across restarts.

The platform never reuses an order id, and the workflows rely on it: an order's workflow id is
made of it. A seeded generator alone starts over on every restart, so a simulator restarted
beside Temporal state it left running would hand out the ids of orders still in flight and a
"new" order would be merged into one of them. With a file (the stack's data folder keeps it),
ids follow the clock and never fall back to one already given out: the next id is the larger
of the clock's and the last one kept plus one, so neither a lost file nor a clock set back
repeats an id.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ORDER_ID_BASE: Final = 27 * 10**15
"""17 digits from 27…, as the platform's order ids (27938825606069694)."""
OTHER_ID_BASE: Final = 60_000_000_000
"""Refund and reminder ids: 11 digits, as the seeded ones."""
EPOCH_S: Final = 1_577_836_800  # 2020-01-01T00:00:00Z: room for the ranges above until ~2050


def order_id_floor(now: float) -> int:
    """A thousand order ids per millisecond since 2020, inside the platform's range."""
    return ORDER_ID_BASE + int((now - EPOCH_S) * 1000) * 1000


def view_id(order_id: int) -> int:
    """The id shown to the customer (`wm_order_id_view`), 10… like the platform's, as unique as
    the order id it follows."""
    return 10**16 + (order_id - ORDER_ID_BASE) % 10**15


def other_id_floor(now: float) -> int:
    """Ten refund or reminder ids per second since 2020."""
    return OTHER_ID_BASE + int(now - EPOCH_S) * 10


@dataclass
class KeptIds:
    """The last ids given out, kept in `path` (JSON) after each one."""

    path: Path
    last_order_id: int = 0
    last_other_id: int = 0

    @classmethod
    def load(cls, path: Path) -> KeptIds:
        """The file's ids; a missing or unreadable file starts from the clock alone."""
        kept = cls(path)
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            data = json.loads(path.read_text())
            kept.last_order_id = int(data.get("last_order_id", 0))
            kept.last_other_id = int(data.get("last_other_id", 0))
        return kept

    def next_order_id(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self.last_order_id = max(self.last_order_id + 1, order_id_floor(now))
        self._save()
        return self.last_order_id

    def next_other_id(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self.last_other_id = max(self.last_other_id + 1, other_id_floor(now))
        self._save()
        return self.last_other_id

    def _save(self) -> None:
        """Written whole then renamed: a crash leaves the old file or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(
            json.dumps({"last_order_id": self.last_order_id, "last_other_id": self.last_other_id})
        )
        partial.replace(self.path)
