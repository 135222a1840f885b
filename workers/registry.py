"""What a worker of the `orders` task queue runs: the workflows and every activity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from temporalio.client import Client

from activities.assignment import Assignment
from activities.booking import Bookings
from activities.credit import Credit
from activities.doctor import Doctor
from activities.notify import Notifier
from activities.orders import OrderRecords
from activities.patrol import Patrol
from activities.platform_calls import PlatformCalls
from activities.policy import load_policy
from activities.record_check import RecordCheck
from activities.review import Review
from activities.stock import Stock
from analytics.delivery import Reports
from analytics.refreshing import Refreshing
from meituan.client import MeituanClient
from workflows.activity_options import runs_locally
from workflows.anomaly import AnomalyWorkflow
from workflows.doctor import DoctorWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow
from workflows.record_check import RecordCheckWorkflow
from workflows.reports import ReportWorkflow, StatsRefreshWorkflow

WORKFLOWS: list[type] = [
    OrderWorkflow,
    AnomalyWorkflow,
    PatrolWorkflow,
    DoctorWorkflow,
    RecordCheckWorkflow,
    ReportWorkflow,
    StatsRefreshWorkflow,
]


def build_activities(
    pool: asyncpg.Pool,
    platform: MeituanClient,
    *,
    platform_calls: bool = True,
    temporal: Client | None = None,
) -> list[Callable[..., Any]]:
    """Every activity; `platform_calls=False` leaves out the merchant API calls, for when
    they run on workers of their own (`platform_activities`); the doctor's and the record
    check's rounds need the worker's Temporal client (`temporal`)."""
    patrol = Patrol(pool, platform)
    return [
        load_policy,
        *order_steps(pool),
        patrol.patrol_stores,
        patrol.patrol_store,
        patrol.record_patrol,
        Reports(pool).send_reports,
        Refreshing(pool).refresh_stats,
        *([Doctor(temporal).doctor_round] if temporal is not None else []),
        *([RecordCheck(temporal, pool).check_records] if temporal is not None else []),
        *(platform_activities(pool, platform) if platform_calls else []),
    ]


def order_steps(pool: asyncpg.Pool) -> list[Callable[..., Any]]:
    """The database steps of an order and its anomaly."""
    records = OrderRecords(pool)
    assignment = Assignment(pool)
    stock = Stock(pool)
    bookings = Bookings(pool)
    return [
        records.record_order,
        records.record_event,
        records.record_events,
        records.record_view,
        records.record_feedback,
        records.record_refund,
        records.record_summary,
        records.record_anomaly,
        Review(pool).review_order,
        assignment.assign_order,
        assignment.release_assignment,
        stock.reserve_stock,
        stock.commit_stock,
        stock.release_stock,
        bookings.book_service,
        bookings.release_booking,
        Credit(pool).record_credit_event,
        Notifier(pool).notify,
    ]


def local_steps(pool: asyncpg.Pool) -> list[Callable[..., Any]]:
    """The steps an order runs as local activities of the worker that runs it (LOCAL_WRITES,
    chosen by `activity_options.runs_locally`), so a workflow worker registers them; server
    activities for the anomaly and orders started before that patch."""
    return [step for step in order_steps(pool) if runs_locally(step)]


def platform_activities(pool: asyncpg.Pool, platform: MeituanClient) -> list[Callable[..., Any]]:
    """The merchant API calls (and the report to the platform liaison)."""
    calls = PlatformCalls(platform, pool)
    return [
        calls.platform_receive,
        calls.platform_confirm,
        calls.platform_cancel_order,
        calls.platform_meal_ready,
        calls.platform_delivering,
        calls.platform_arrived,
        calls.platform_answer_refund,
        calls.platform_reply_reminder,
        calls.report_to_platform,
    ]
