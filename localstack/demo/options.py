"""The demo's settings and its result, shared by the business day, the summary and the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import database as db
from schemas.order import Stage
from schemas.policy import Clause

POLICY_FILE = Path(__file__).parent.with_name("demo_policy.toml")
DEMO_DATABASE = "orderflow_demo"
ORDERS_QUERY = 'WorkflowType="OrderWorkflow"'
TERMINAL = (Stage.CLOSED, Stage.REJECTED, Stage.CANCELLED)
SHOWN_STAGES = (
    Stage.RECEIVED,
    Stage.REVIEWING,
    Stage.ACCEPTED,
    Stage.ASSIGNED,
    Stage.CONFIRMED,
    Stage.IN_PROGRESS,
    Stage.DELIVERING,
    Stage.DELIVERED,
    Stage.ON_HOLD,
    Stage.CLOSED,
    Stage.REJECTED,
    Stage.CANCELLED,
)
CLAUSES = tuple(clause.value for clause in Clause)  # in the order of the measures


@dataclass
class DemoOptions:
    orders: int = 50
    seed: int = 7
    data_dir: Path = field(default_factory=lambda: db.data_dir() / "demo")
    """Temporal's state and log; wiped at the start of every run."""
    database: str = DEMO_DATABASE
    server_dsn: str | None = None
    """A PostgreSQL server to use; None: `DATABASE_URL`'s, else the embedded one."""
    pgdata: Path | None = None
    temporal_port: int | None = 7233
    ui_port: int | None = 8233
    gateway_port: int | None = 8080
    api_port: int | None = 8082
    simulator_port: int | None = 8090
    spread_s: float | None = None
    """Seconds over which the orders arrive; default 1.5 s per order, at most 75 s."""
    limit_s: float = 240.0
    """The business day's time limit, after which the open orders are reported."""
    anomaly_rate: float = 0.15
    keep: bool = False
    """Keep the stack (and the Web UI) up after the summary until Ctrl-C."""

    @property
    def arrival_window_s(self) -> float:
        return self.spread_s if self.spread_s is not None else min(75.0, 1.5 * self.orders)


@dataclass
class DemoResult:
    ok: bool
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1
