"""orderctl as a person runs it: a subprocess against a real Temporal dev server, with a worker
on `orders` running the workflows over the in-memory activity doubles.

Real time passes here, and the default policy's deadlines are minutes long, so nothing here
waits on a deadline. Subprocesses run concurrently where their order does not matter.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import load_policy
from schemas.messages import CustomerReminder, PlatformRefund, RefundNotice
from schemas.order import OrderInput, Stage
from schemas.review import AnomalyKind, Outcome, ReviewVerdict, RuleFailure
from schemas.status import FeedbackState, OrderStatus, RefundState
from starter.cli.arguments import when
from starter.cli.orders import quote, visibility_query
from tests import jitter
from tests.doubles import Business
from tests.orders import GOODS_STORE, SERVICE_STORE, Handle, platform_order, until
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
ORDER_KEYS = {
    "order_id",
    "workflow_id",
    "status",
    "stage",
    "order_type",
    "store_code",
    "region",
    "assignee",
    "breached",
    "anomaly_open",
    "started_at",
    "closed_at",
}
ANOMALY_KEYS = {
    "order_id",
    "anomaly_id",
    "kind",
    "state",
    "detail",
    "opened_at",
    "due_at",
    "escalations",
    "paused_stage",
    "store_code",
    "assignee",
}
STATUS_KEYS = set(OrderStatus.model_fields)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Stack:
    client: Client
    address: str
    business: Business

    async def orderctl(self, *args: str, address: str | None = None) -> Run:
        # The worker here speaks plaintext to its own server: no other connection settings.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TEMPORAL_") and k != "ORDERFLOW_CODEC_KEYS"
        }
        env["TEMPORAL_ADDRESS"] = address or self.address
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starter.cli",
            *args,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        run = Run(proc.returncode or 0, out.decode(), err.decode())
        assert "Traceback" not in run.err, run.err
        return run

    async def each(self, *commands: list[str]) -> list[Run]:
        return list(await asyncio.gather(*(self.orderctl(*c) for c in commands)))

    async def start(
        self, store: str, verdicts: list[ReviewVerdict] | None = None
    ) -> tuple[str, Handle]:
        order_id = str(uuid.uuid4().int % 10**15)
        if verdicts:
            self.business.verdicts[order_id] = verdicts
        handle: Handle = await self.client.start_workflow(
            OrderWorkflow.run,
            OrderInput(order=platform_order(order_id, store, datetime.now(UTC))),
            id=f"order-{order_id}",
            task_queue="orders",
        )
        return order_id, handle


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_server: WorkflowEnvironment) -> AsyncIterator[Stack]:
    business = Business()
    async with Worker(
        dev_server.client,
        task_queue="orders",
        workflows=[OrderWorkflow, AnomalyWorkflow],
        activities=[*business.activities(), load_policy],
        interceptors=jitter.interceptors(),
    ):
        address = dev_server.client.service_client.config.target_host
        yield Stack(dev_server.client, address, business)


def ok(run: Run) -> Run:
    assert run.code == 0, (run.code, run.out, run.err)
    return run


def refused(run: Run, code: int, message: str) -> None:
    assert run.code == code, (run.code, run.out, run.err)
    assert message in run.err, run.err
    assert run.out == ""


async def stage(handle: Handle, wanted: Stage) -> OrderStatus:
    return await until(handle, lambda s: s.stage is wanted, f"stage {wanted.value}")


async def event(handle: Handle, name: str) -> OrderStatus:
    return await until(handle, lambda s: any(e.event == name for e in s.timeline), name)


def last(status: OrderStatus, name: str) -> dict[str, Any]:
    return [e for e in status.timeline if e.event == name][-1].details


async def poll(
    stack: Stack, args: list[str], check: Callable[[Any], bool], what: str, patience: float = 15
) -> Any:
    """Visibility is eventually consistent: ask again until the listing shows it."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        rows = ok(await stack.orderctl(*args, "--json")).json()
        if check(rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {rows}")
        await asyncio.sleep(0.3)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- pure parts -----------------------------------------------------------------------------------


def test_times_are_relative_or_iso_and_naive_means_shanghai() -> None:
    now = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert when("+90m", now) == now + timedelta(minutes=90)
    assert when("+2h", now) == now + timedelta(hours=2)
    assert when("+1d", now) == now + timedelta(days=1)
    assert when("+1h30m", now) == now + timedelta(minutes=90)
    assert when("2025-06-01T18:30") == datetime(2025, 6, 1, 18, 30, tzinfo=SHANGHAI)
    assert when("2025-06-01T18:30Z") == datetime(2025, 6, 1, 18, 30, tzinfo=UTC)


def test_visibility_query_quotes_every_value() -> None:
    assert quote('a"b\\') == '"a\\"b\\\\"'
    assert visibility_query(stage="on_hold", store='x" OR "1"="1', breached=True) == (
        'WorkflowType="OrderWorkflow" AND OrderStage="on_hold" '
        'AND StoreCode="x\\" OR \\"1\\"=\\"1" AND SlaBreached=true'
    )


# --- no server needed -----------------------------------------------------------------------------


async def test_help_version_and_bad_arguments_exit_2_before_any_connection(stack: Stack) -> None:
    unreachable = f"127.0.0.1:{closed_port()}"
    bad = [
        ["rate", "1", "--score", "7"],
        ["confirm", "1", "--by", "S-101", "--delivery-at", "tomorrow"],
        ["confirm", "1", "--by", "S-101", "--delivery-at", "+1d", "--ready-at", "+2d"],
        ["exception", "1", "--by", "S-1", "--kind", "delay", "--detail", "x", "--remedy",
         "reschedule"],
        ["exception", "1", "--by", "S-1", "--kind", "late", "--detail", "x", "--remedy", "cancel"],
        ["refund", "1", "RF-1", "--by", "M-001", "--reason", "r"],
        ["feedback", "resolve", "1", "1", "--by", "S-1", "--resolution", "r"],
        ["list", "--stage", "nope"],
        ["progress", "1", "--note", "x"],
        ["progress", "1", "--by", "S-1", "--note", "x", "--percent", "101"],
        ["cancel", "1", "--by", "S-1", "--code", "1999", "--reason", "r"],
        ["change", "1", "--note", "nothing changed"],
        ["anomaly", "decide", "1", "--by", "M-1", "--decision", "adjust_price", "--cause", "c",
         "--responsibility", "store"],
        ["anomaly", "decide", "1", "--by", "M-1", "--decision", "correct_info", "--cause", "c",
         "--responsibility", "store", "--correct", "colour=red"],
    ]  # fmt: skip
    runs = await asyncio.gather(
        stack.orderctl("--version"),
        stack.orderctl("-h"),
        stack.orderctl("confirm", "-h"),
        stack.orderctl("anomaly", "decide", "-h"),
        *(stack.orderctl(*args, address=unreachable) for args in bad),
    )
    version, top, confirm, decide, *errors = runs
    assert ok(version).out.startswith("orderctl 0.")
    assert "examples:" in ok(top).out and "exit codes:" in ok(top).out
    assert "Asia/Shanghai" in ok(confirm).out and "+90m" in confirm.out
    assert "examples:" in ok(decide).out
    expected = [
        "argument --score: invalid choice: 7",
        "argument --delivery-at: expected +90m, +2h, +1d or ISO 8601",
        "--ready-at is after --delivery-at",
        "a reschedule remedy needs --new-time",
        "argument --kind: invalid choice: 'late'",
        "one of the arguments --agree --reject is required",
        "one of the arguments --satisfied --unsatisfied is required",
        "argument --stage: invalid choice: 'nope'",
        "the following arguments are required: --by",
        "argument --percent: Input should be less than or equal to 100",
        "a merchant cancel code is 2001-2016",
        "a customer change names at least one changed field",
        "adjust_price needs --new-total",
        "argument --correct: expected field=value",
    ]
    for run, message in zip(errors, expected, strict=True):
        assert run.code == 2, (run.code, run.err)
        assert "error:" in run.err and message in run.err, run.err
        assert "usage: orderctl" in run.err


async def test_temporal_unreachable_exits_5(stack: Stack) -> None:
    address = f"127.0.0.1:{closed_port()}"
    runs = await asyncio.gather(
        *(
            stack.orderctl(*args, address=address)
            for args in (["show", "1"], ["ready", "1", "--by", "S-101"], ["list"], ["anomalies"])
        )
    )
    for run in runs:
        refused(run, 5, f"cannot reach Temporal at {address}: ")


# --- against the stack ----------------------------------------------------------------------------


async def test_unknown_orders_exit_3(stack: Stack) -> None:
    missing = "404404404404"
    runs = await stack.each(
        ["show", missing],
        ["ready", missing, "--by", "S-101"],
        ["complain", missing, "--kind", "inquiry", "--text", "where is it?"],
        ["anomaly", "decide", missing, "--by", "M-001", "--decision", "dismiss", "--cause", "c",
         "--responsibility", "store"],
        ["anomaly", "decide", missing, "1", "--by", "M-001", "--decision", "dismiss", "--cause",
         "c", "--responsibility", "store"],
    )  # fmt: skip
    for run in runs[:4]:
        refused(run, 3, f"order {missing} not found")
    refused(runs[4], 3, f"anomaly 1 of order {missing} not found")


async def test_no_worker_answering_exits_6(stack: Stack) -> None:
    order_id = str(uuid.uuid4().int % 10**15)
    handle = await stack.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=platform_order(order_id, GOODS_STORE, datetime.now(UTC))),
        id=f"order-{order_id}",
        task_queue="orders-unserved",
    )
    run = await stack.orderctl("show", order_id, "--timeout", "1")
    refused(run, 6, "no worker answered within 1s")
    await handle.terminate()


async def test_a_goods_order_from_progress_to_after_sales(stack: Stack) -> None:
    order, handle = await stack.start(GOODS_STORE)  # goods confirm themselves by policy
    await stage(handle, Stage.IN_PROGRESS)
    by = ["--by", "S-101"]

    wrong = await stack.each(
        ["confirm", order, *by, "--delivery-at", "+2h"],
        ["delivered", order, *by, "--proof", "photo-1"],
        ["reconfirm", order, *by],
        ["rate", order, "--score", "5"],
    )
    refused(wrong[0], 4, "confirm_with_customer is for an assigned order or one the customer")
    refused(wrong[1], 4, "mark_delivered needs the order on its way; it is in_progress")
    refused(wrong[2], 4, "reconfirm_visit needs a booked visit; none is booked yet")
    refused(wrong[3], 4, "record_rating is allowed at delivered; the order is in_progress")

    done = ok(await stack.orderctl("progress", order, *by, "--note", "半成品", "--percent", "50"))
    assert done.out.strip() == f"order {order}: progress reported (stage in_progress)"
    assert last(await event(handle, "progress"), "progress") == {"note": "半成品", "percent": 50}

    run = ok(
        await stack.orderctl(
            "exception", order, *by, "--kind", "delay", "--detail", "oven is slow",
            "--remedy", "reschedule", "--new-time", "+2h", "--json",
        )
    )  # fmt: skip
    assert run.json() == {
        "order_id": order,
        "update": "report_exception",
        "stage": "in_progress",
        "message": "exception recorded, remedy reschedule",
    }
    rescheduled = await event(handle, "exception")
    assert rescheduled.promise is not None
    moved = rescheduled.promise.delivery_at - datetime.now(UTC)
    assert timedelta(minutes=110) < moved < timedelta(hours=2)

    ok(await stack.orderctl("ready", order, *by))
    await stage(handle, Stage.DELIVERING)
    refused(
        await stack.orderctl("ready", order, *by),
        4,
        "mark_ready is allowed at in_progress; the order is delivering",
    )
    ok(await stack.orderctl("delivered", order, *by, "--proof", "photo:IMG_1.jpg"))
    delivered = await stage(handle, Stage.DELIVERED)
    assert last(delivered, "delivered_with_proof")["proof"] == "photo:IMG_1.jpg"

    # A low rating opens a complaint, which is answered and resolved.
    ok(await stack.orderctl("rate", order, "--score", "2", "--comment", "arrived cold"))
    rated = await until(handle, lambda s: len(s.feedback) == 1, "a complaint from the rating")
    assert rated.rating == 2 and rated.feedback[0].text == "arrived cold"
    wrong = await stack.each(
        ["rate", order, "--score", "4"],
        ["feedback", "resolve", order, "1", *by, "--resolution", "r", "--satisfied"],
        ["feedback", "respond", order, "2", *by, "--response", "r"],
        ["progress", order, *by, "--note", "x"],
        ["reassign", order, "--by", "M-001", "--reason", "r"],
        ["cancel", order, *by, "--code", "2006", "--reason", "r"],
    )
    refused(wrong[0], 4, "the order is already rated (2)")
    refused(wrong[1], 4, "resolve_feedback: feedback #1 is awaiting_response")
    refused(wrong[2], 4, f"no feedback case #2 on order {order}")
    refused(wrong[3], 4, "report_progress is allowed at confirmed, in_progress, delivering; the")
    refused(wrong[4], 4, "reassign is allowed at assigned, confirmed, in_progress, delivering;")
    refused(wrong[5], 4, "an order that is delivered cannot be cancelled")

    ok(await stack.orderctl("feedback", "respond", order, "1", *by, "--response", "sorry"))
    answered = await until(
        handle, lambda s: s.feedback[0].state is FeedbackState.AWAITING_RESOLUTION, "answered"
    )
    assert answered.feedback[0].responses == ["sorry"]
    ok(
        await stack.orderctl(
            "feedback", "resolve", order, "1", *by, "--resolution", "a voucher", "--satisfied"
        )
    )
    resolved = await until(
        handle, lambda s: s.feedback[0].state is FeedbackState.SATISFIED, "satisfied"
    )
    assert resolved.feedback[0].resolutions == ["a voucher"]
    refused(
        await stack.orderctl("feedback", "respond", order, "1", *by, "--response", "again"),
        4,
        "respond_feedback: feedback #1 is satisfied",
    )

    # On the customer's behalf: feedback by phone opens a second case.
    ok(await stack.orderctl("complain", order, "--kind", "inquiry", "--text", "发票怎么开?"))
    asked = await until(handle, lambda s: len(s.feedback) == 2, "a second case")
    assert asked.feedback[1].kind.value == "inquiry" and asked.feedback[1].text == "发票怎么开?"

    # The platform's refund request and the customer's reminder, decided and answered.
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id="RF-1", notify_type=RefundNotice.APPLY, reason="cold"),
    )
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="RM-1"))
    await until(handle, lambda s: bool(s.refunds), "a refund request")
    await event(handle, "customer_reminded")
    decided = await stack.each(
        ["refund", order, "RF-1", "--by", "M-001", "--reject", "--reason", "eaten already"],
        ["reply-reminder", order, "RM-1", *by, "--text", "delivered at 12:05"],
        ["refund", order, "RF-9", "--by", "M-001", "--agree", "--reason", "r"],
        ["reply-reminder", order, "RM-9", *by, "--text", "t"],
    )
    assert ok(decided[0]).out.strip() == f"order {order}: refund rejected (stage delivered)"
    ok(decided[1])
    refused(decided[2], 4, f"no refund request RF-9 on order {order}")
    refused(decided[3], 4, f"no reminder RM-9 on order {order}")
    after = await event(handle, "reminder_replied")
    assert after.refunds[0].state is RefundState.REJECTED and after.refunds[0].decided_by == "M-001"
    again = await stack.each(
        ["refund", order, "RF-1", "--by", "M-001", "--agree", "--reason", "r"],
        ["reply-reminder", order, "RM-1", *by, "--text", "t"],
    )
    refused(again[0], 4, "refund RF-1 is already rejected")
    refused(again[1], 4, "reminder RM-1 is already answered")
    assert {"refund/reject", "remindReply"} <= set(stack.business.platform_calls(order))

    # The whole picture, for a person and for a script.
    text, as_json = await stack.each(["show", order], ["show", order, "--json"])
    picture = ok(text).out
    for part in ("delivered", "S-101", "deadlines", "breaches", "feedback", "RF-1", "timeline"):
        assert part in picture, picture
    assert "progress" in picture and "note=半成品 percent=50" in picture
    status = ok(as_json).json()
    assert set(status) == STATUS_KEYS
    assert status["order_id"] == order and status["stage"] == "delivered"
    assert status["timeline"][0]["event"] == "received"


async def test_a_service_order_confirmed_reassigned_changed_and_done(stack: Stack) -> None:
    order, handle = await stack.start(SERVICE_STORE)
    await stage(handle, Stage.ASSIGNED)

    wrong = await stack.each(
        ["reconfirm", order, "--by", "T-301"],
        ["confirm", order, "--by", "T-301", "--delivery-at", "2020-01-01T10:00"],
        ["progress", order, "--by", "T-301", "--note", "x"],
    )
    refused(wrong[0], 4, "reconfirm_visit is allowed at in_progress; the order is assigned")
    refused(wrong[1], 4, "promised_delivery_at must be in the future")
    refused(wrong[2], 4, "report_progress is allowed at confirmed, in_progress, delivering;")

    # A naive time is the business's (Shanghai) time.
    visit = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(second=0, microsecond=0)
    run = await stack.orderctl(
        "confirm", order, "--by", "T-301", "--delivery-at", visit.strftime("%Y-%m-%dT%H:%M"),
        "--promises", "自带拖把", "--channel", "wechat",
    )  # fmt: skip
    assert ok(run).out.startswith(f"order {order}: confirmed with the customer (stage ")
    booked = await event(handle, "booked")
    assert booked.promise is not None
    assert booked.promise.delivery_at == visit and booked.promise.promises == "自带拖把"
    assert last(booked, "confirmed_with_customer")["channel"] == "wechat"

    ok(await stack.orderctl("reassign", order, "--by", "M-003", "--reason", "ill", "--to", "T-302"))
    moved = await event(handle, "reassigned")
    assert moved.assignee is not None and moved.assignee.staff_id == "T-302"
    assert last(moved, "reassigned")["reason"] == "ill"
    refused(
        await stack.orderctl("reassign", order, "--by", "M-003", "--reason", "x", "--to", "T-302"),
        4,
        "T-302 already has this order",
    )

    ok(await stack.orderctl("reconfirm", order, "--by", "T-302", "--note", "on the phone"))
    await event(handle, "visit_reconfirmed")
    refused(
        await stack.orderctl("reconfirm", order, "--by", "T-302"),
        4,
        "the visit is already re-confirmed",
    )

    # The customer moved: reviewed again, then confirmed again before anything else.
    run = await stack.orderctl(
        "change", order, "--address", "上海市徐汇区宜山路1号", "--note", "搬家"
    )
    assert "change of address sent" in ok(run).out
    changed = await until(handle, lambda s: s.awaiting_reconfirmation, "re-confirmation")
    assert last(changed, "customer_changed") == {"fields": ["address"], "note": "搬家"}
    refused(
        await stack.orderctl("progress", order, "--by", "T-302", "--note", "x"),
        4,
        "report_progress: the customer changed the order; confirm_with_customer first",
    )
    ok(await stack.orderctl("confirm", order, "--by", "T-302", "--delivery-at", "+26h"))
    await until(handle, lambda s: not s.awaiting_reconfirmation, "re-confirmed")
    # The visit moved with it: booked again, and the technician re-confirms the new time.
    await event(handle, "rebooked")
    ok(await stack.orderctl("reconfirm", order, "--by", "T-302", "--note", "new time agreed"))

    ok(await stack.orderctl("delivered", order, "--by", "T-302", "--proof", "signed sheet"))
    await stage(handle, Stage.DELIVERED)
    ok(await stack.orderctl("rate", order, "--score", "5", "--by", "T-302"))
    rated = await event(handle, "rated")
    assert rated.rating == 5 and rated.feedback == []


async def test_cancel_and_an_order_that_already_ended(stack: Stack) -> None:
    order, handle = await stack.start(GOODS_STORE)
    await stage(handle, Stage.IN_PROGRESS)
    run = await stack.orderctl(
        "cancel", order, "--by", "S-101", "--code", "2006", "--reason", "customer phoned"
    )
    assert ok(run).out.strip() == f"order {order}: cancellation under way (stage in_progress)"
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2006

    runs = await stack.each(
        ["cancel", order, "--by", "S-101", "--code", "2006", "--reason", "again"],
        ["ready", order, "--by", "S-101"],
        ["complain", order, "--kind", "complaint", "--text", "too late"],
        ["show", order, "--json"],
    )
    for run in runs[:3]:
        refused(run, 4, f"order {order} already ended: cancelled")
    ended = ok(runs[3]).json()
    assert ended["stage"] == "cancelled"
    assert ended["timeline"][-1]["details"]["cancel_code"] == 2006


async def test_the_anomaly_inbox_and_a_decision(stack: Stack) -> None:
    verdict = ReviewVerdict(
        outcome=Outcome.ANOMALY,
        anomaly_kind=AnomalyKind.INFO,
        failures=[
            RuleFailure(rule="phone_valid", message="phone has 10 digits", anomaly=AnomalyKind.INFO)
        ],
    )
    order, handle = await stack.start(GOODS_STORE, [verdict])
    held = await until(  # the order shows the anomaly once its child exists
        handle, lambda s: s.stage is Stage.ON_HOLD and bool(s.anomalies), "an open anomaly"
    )
    anomaly_id = f"anomaly-{order}-1"
    assert held.anomalies[-1].anomaly_id == anomaly_id

    rows = await poll(
        stack, ["anomalies"], lambda rows: any(r["order_id"] == order for r in rows), "the inbox"
    )
    [row] = [r for r in rows if r["order_id"] == order]
    assert set(row) == ANOMALY_KEYS
    assert row["anomaly_id"] == anomaly_id and row["kind"] == "info" and row["state"] == "open"
    assert row["detail"] == "phone_valid: phone has 10 digits"
    assert row["paused_stage"] == "reviewing" and row["store_code"] == GOODS_STORE
    due = datetime.fromisoformat(row["due_at"]) - datetime.fromisoformat(row["opened_at"])
    assert timedelta(minutes=30) <= due < timedelta(minutes=31)  # the anomaly_decision clause

    inbox, listed = await stack.each(["anomalies"], ["list", "--anomaly-open", "--json"])
    assert anomaly_id in ok(inbox).out and "phone_valid" in inbox.out
    [mine] = [r for r in ok(listed).json() if r["order_id"] == order]
    assert set(mine) == ORDER_KEYS
    assert mine["anomaly_open"] is True and mine["stage"] == "on_hold"

    decide = ["--by", "M-001", "--cause", "customer mistyped", "--responsibility", "customer"]
    wrong = await stack.each(
        ["ready", order, "--by", "S-101"],
        ["anomaly", "decide", order, *decide, "--decision", "adjust_price", "--new-total", "58"],
        ["anomaly", "decide", order, "2", *decide, "--decision", "dismiss"],
    )
    refused(
        wrong[0], 4, f"mark_ready: the order is on hold until its anomaly is decided ({anomaly_id})"
    )
    refused(wrong[1], 4, "adjust_price does not apply to info anomalies")
    refused(wrong[2], 3, f"anomaly 2 of order {order} not found")

    run = await stack.orderctl(
        "anomaly", "decide", order, *decide, "--decision", "correct_info",
        "--correct", "phone=13900001111", "--correct", "address=上海市徐汇区宜山路1号", "--json",
    )  # fmt: skip
    outcome = ok(run).json()
    assert outcome["anomaly_id"] == anomaly_id and outcome["decision"] == "correct_info"
    assert outcome["resume"] is True and outcome["decided_by"] == "M-001"
    assert outcome["corrections"]["address"] == "上海市徐汇区宜山路1号"
    resumed = await stage(handle, Stage.IN_PROGRESS)
    assert resumed.anomalies[0].decision == "correct_info" and resumed.anomalies[0].resumed

    again = await stack.each(
        ["anomaly", "decide", order, *decide, "--decision", "dismiss"],
        ["anomaly", "decide", order, "1", *decide, "--decision", "dismiss"],
    )
    refused(again[0], 4, f"order {order} has no open anomaly")
    refused(again[1], 4, f"anomaly 1 of order {order} already ended: completed")
    await poll(
        stack,
        ["anomalies"],
        lambda rows: all(r["order_id"] != order for r in rows),
        "the inbox to drop the decided order",
    )


async def test_list_filters_by_the_search_attributes(stack: Stack) -> None:
    goods, goods_handle = await stack.start(GOODS_STORE)
    service, service_handle = await stack.start(SERVICE_STORE)
    await stage(goods_handle, Stage.IN_PROGRESS)
    await stage(service_handle, Stage.ASSIGNED)

    def has(order: str) -> Callable[[Any], bool]:
        return lambda rows: any(r["order_id"] == order for r in rows)

    rows = await poll(
        stack, ["list", "--stage", "in_progress", "--store", GOODS_STORE], has(goods), "goods"
    )
    assert all(r["stage"] == "in_progress" and r["store_code"] == GOODS_STORE for r in rows)
    [row] = [r for r in rows if r["order_id"] == goods]
    assert set(row) == ORDER_KEYS
    assert row["workflow_id"] == f"order-{goods}" and row["status"] == "running"
    assert row["order_type"] == "goods" and row["assignee"] == "S-101"
    assert row["breached"] is False and row["anomaly_open"] is False

    rows = await poll(
        stack,
        ["list", "--type", "service", "--assignee", "T-301", "--running"],
        has(service),
        "service",
    )
    assert all(r["order_type"] == "service" and r["assignee"] == "T-301" for r in rows)

    runs = await stack.each(
        ["list", "--store", 'x" OR WorkflowType="OrderWorkflow', "--json"],
        ["list", "--limit", "1", "--json"],
        ["list", "--breached", "--json"],
        ["list", "--store", GOODS_STORE],
    )
    assert ok(runs[0]).json() == []  # a value never escapes its quotes
    assert len(ok(runs[1]).json()) == 1
    assert all(r["breached"] for r in ok(runs[2]).json())
    table = ok(runs[3]).out.splitlines()
    assert table[0].split() == [
        "ORDER", "STAGE", "TYPE", "STORE", "ASSIGNEE", "BREACHED", "ANOMALY", "STARTED",
    ]  # fmt: skip
    assert any(line.startswith(goods) for line in table[1:])
