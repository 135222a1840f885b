"""orderctl as a person runs it: a subprocess, signed in with the person's own token, talking
to the staff API over HTTP; behind it a real Temporal dev server (real time) and a worker with
the real activities on PostgreSQL (the demo company) and the platform simulator.

Real time passes here, and the default policy's deadlines are minutes long, so nothing here
waits on a deadline. Subprocesses run concurrently where their order does not matter.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.orders import OrderRecords
from infra.settings import settings
from localstack.simulator import BackgroundServer
from localstack.simulator.engine import Simulator
from meituan.codes import OrderStatus as SimStatus
from meituan.intake import to_platform_order
from schemas.messages import CustomerReminder, PlatformRefund, RefundNotice
from schemas.order import OrderInput, Stage
from schemas.records import RecordOrder
from schemas.status import FeedbackState, OrderStatus, RefundState
from starter.api import tokens
from starter.api.app import create_app
from starter.cli.arguments import when
from starter.db_cli import generate_slots
from tests import jitter
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import Handle, until
from tests.real_stack import calls, one
from tests.real_stack import platform as platform
from workers.registry import WORKFLOWS, build_activities
from workflows.order import OrderWorkflow

REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
GOODS_STORE, SERVICE_STORE = "SH-XH-001", "SH-HS-100"
QUEUE = "orders-cli"
PEOPLE = ("S-101", "S-102", "S-103", "M-001", "M-003", "T-301", "T-302", "T-303", "A-901")
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
    "paused_stage",
    "store_code",
    "assignee",
}
STATUS_KEYS = set(OrderStatus.model_fields) | {"sheet"}  # and what to make, for whom, where


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Stack:
    env: WorkflowEnvironment
    sim: Simulator
    pool: asyncpg.Pool
    api_url: str
    tokens: dict[str, str]
    home: Path

    async def orderctl(
        self, *args: str, as_: str | None = "M-001", api_url: str | None = None
    ) -> Run:
        """`as_` is the person whose token the command runs with; None: nobody signed in."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starter.cli",
            *args,
            cwd=REPO,
            env=self.environment(as_, api_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        run = Run(proc.returncode or 0, out.decode(), err.decode())
        assert "Traceback" not in run.err, run.err
        return run

    def environment(self, as_: str | None, api_url: str | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TEMPORAL_", "ORDERFLOW_TOKEN", "ORDERFLOW_API_URL"))
        }
        env["ORDERFLOW_API_URL"] = api_url or self.api_url
        env["XDG_CONFIG_HOME"] = str(self.home)  # no token kept by a login elsewhere
        if as_ is not None:
            env["ORDERFLOW_TOKEN"] = self.tokens[as_]
        return env

    async def each(self, *commands: list[str], as_: str = "M-001") -> list[Run]:
        return list(await asyncio.gather(*(self.orderctl(*c, as_=as_) for c in commands)))

    async def place(
        self, store: str, anomaly: str | None = None, **fields: str
    ) -> tuple[str, Handle]:
        """An order as the platform holds it (`fields` over the simulator's), started as its
        push would start it."""
        overrides = {"app_poi_code": store, **fields}
        sim_order = self.sim.create_order(overrides, push=False, anomaly=anomaly)
        order = to_platform_order(sim_order.order)
        handle: Handle = await self.env.client.start_workflow(
            OrderWorkflow.run,
            OrderInput(order=order),
            id=f"order-{order.order_id}",
            task_queue=QUEUE,
        )
        return order.order_id, handle


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    dev_server: WorkflowEnvironment,
    demo_pool: asyncpg.Pool,
    platform: Any,
    tmp_path_factory: Any,
) -> AsyncIterator[Stack]:
    client = platform.client()
    async with demo_pool.acquire() as conn:  # bookable visits from today on
        await generate_slots(
            conn,
            SERVICE_STORE,
            days_ahead=3,
            slot_minutes=120,
            day_start="00:00",
            day_end="23:59",
            first_day=datetime.now(settings().business.timezone).date(),
        )
    issued = {person: await tokens.issue(demo_pool, person) for person in PEOPLE}
    async with (
        Worker(
            dev_server.client,
            task_queue=QUEUE,
            workflows=WORKFLOWS,
            activities=build_activities(demo_pool, client),
            interceptors=jitter.interceptors(),
        ),
        BackgroundServer(create_app(dev_server.client, demo_pool)) as api,
    ):
        yield Stack(
            dev_server, platform.sim, demo_pool, api.url, issued, tmp_path_factory.mktemp("home")
        )
    await client.aclose()


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


def assignee_of(status: OrderStatus) -> str:
    assert status.assignee is not None
    return status.assignee.staff_id


async def poll(
    stack: Stack,
    args: list[str],
    check: Callable[[Any], bool],
    what: str,
    patience: float = 15,
    as_: str = "M-001",
) -> Any:
    """The record follows the workflow a step behind: ask again until it shows it."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        rows = ok(await stack.orderctl(*args, "--json", as_=as_)).json()
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


# --- no server needed -----------------------------------------------------------------------------


async def test_help_version_and_bad_arguments_exit_2_before_any_request(stack: Stack) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}"
    bad = [
        ["rate", "1", "--score", "7"],
        ["confirm", "1", "--delivery-at", "tomorrow"],
        ["confirm", "1", "--delivery-at", "+1d", "--ready-at", "+2d"],
        ["exception", "1", "--kind", "delay", "--detail", "x", "--remedy", "reschedule"],
        ["exception", "1", "--kind", "late", "--detail", "x", "--remedy", "cancel"],
        ["refund", "1", "RF-1", "--reason", "r"],
        ["feedback", "resolve", "1", "1", "--resolution", "r"],
        ["list", "--stage", "nope"],
        ["progress", "1", "--by", "S-101", "--note", "x"],
        ["progress", "1", "--note", "x", "--percent", "101"],
        ["cancel", "1", "--code", "1999", "--reason", "r"],
        ["change", "1", "--note", "nothing changed"],
        ["anomaly", "decide", "1", "--decision", "adjust_price", "--cause", "c",
         "--responsibility", "store"],
        ["anomaly", "decide", "1", "--decision", "correct_info", "--cause", "c",
         "--responsibility", "store", "--correct", "colour=red"],
        ["admin", "token", "issue", "S-101", "--ttl", "forever"],
    ]  # fmt: skip
    runs = await asyncio.gather(
        stack.orderctl("--version"),
        stack.orderctl("-h"),
        stack.orderctl("confirm", "-h"),
        stack.orderctl("anomaly", "decide", "-h"),
        *(stack.orderctl(*args, api_url=unreachable) for args in bad),
    )
    version, top, confirm, decide, *errors = runs
    assert ok(version).out.startswith("orderctl 0.")
    assert "examples:" in ok(top).out and "exit codes:" in ok(top).out
    assert "orderctl login" in top.out and "7 not signed in" in top.out
    assert "Asia/Shanghai" in ok(confirm).out and "+90m" in confirm.out
    assert "--by" not in confirm.out  # the actor is the signed-in person
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
        "unrecognized arguments: --by S-101",
        "argument --percent: Input should be less than or equal to 100",
        "a merchant cancel code is 2001-2016",
        "a customer change names at least one changed field",
        "adjust_price needs --new-total",
        "argument --correct: expected field=value",
        "argument --ttl: not a lifetime like 30d",
    ]
    for run, message in zip(errors, expected, strict=True):
        assert run.code == 2, (run.code, run.err)
        assert "error:" in run.err and message in run.err, run.err
        assert "Usage: orderctl" in run.err


async def test_the_staff_api_unreachable_exits_5(stack: Stack) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    runs = await asyncio.gather(
        *(
            stack.orderctl(*args, api_url=url)
            for args in (["show", "1"], ["ready", "1"], ["list"], ["anomalies"])
        )
    )
    for run in runs:
        refused(run, 5, f"cannot reach the staff API at {url}: ")


# --- signed in, or not ----------------------------------------------------------------------------


async def test_sign_in_and_who_may_do_what_exit_7(stack: Stack, tmp_path: Path) -> None:
    nobody = await stack.orderctl("whoami", as_=None)
    refused(nobody, 7, "sign in first")
    # `login` checks the token with the API and keeps it for its owner only.
    env_home = tmp_path / "config"
    login = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starter.cli", "login",
        cwd=REPO,
        env={**os.environ, "ORDERFLOW_API_URL": stack.api_url, "XDG_CONFIG_HOME": str(env_home)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await login.communicate(stack.tokens["S-101"].encode() + b"\n")
    assert login.returncode == 0, err.decode()
    assert "signed in as S-101" in out.decode()
    kept = env_home / "orderflow" / "token"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept.read_text().strip() == stack.tokens["S-101"]

    me = ok(await stack.orderctl("whoami", "--json", as_="M-001")).json()
    assert me["staff_id"] == "M-001" and me["role"] == "manager"
    order, handle = await stack.place(GOODS_STORE)
    worker = assignee_of(await stage(handle, Stage.IN_PROGRESS))
    other = next(p for p in ("S-101", "S-102", "S-103") if p != worker)
    runs = await asyncio.gather(
        stack.orderctl("ready", order, as_=other),
        stack.orderctl("cancel", order, "--code", "2006", "--reason", "r", as_=worker),
        stack.orderctl("reassign", order, "--reason", "r", as_=worker),
        stack.orderctl("refund", order, "RF-1", "--agree", "--reason", "r", as_=worker),
    )
    refused(runs[0], 7, f"order {order} is not assigned to {other}")
    for run in runs[1:]:
        refused(run, 7, f"{worker} is staff: only manager may decide")
    assert (await handle.query(OrderWorkflow.status)).stage is Stage.IN_PROGRESS

    # A retried request is one action: the API answers it with the first outcome.
    ok(await stack.orderctl("ready", order, as_=worker))
    delivering = await stage(handle, Stage.DELIVERING)
    assert [e.actor for e in delivering.timeline if e.event == "ready"] == [worker]
    ok(await stack.orderctl("cancel", order, "--code", "2006", "--reason", "test over"))
    assert (await handle.result()).stage is Stage.CANCELLED

    # A revoked token ends the session at once.
    assert await tokens.revoke(stack.pool, "S-103") >= 1
    refused(await stack.orderctl("whoami", as_="S-103"), 7, "revoked")
    stack.tokens["S-103"] = await tokens.issue(stack.pool, "S-103")


# --- against the stack ----------------------------------------------------------------------------


async def test_unknown_orders_exit_3(stack: Stack) -> None:
    missing = "404404404404"
    decide = ["--decision", "dismiss", "--cause", "c", "--responsibility", "store"]
    runs = await stack.each(
        ["show", missing],
        ["ready", missing],
        ["complain", missing, "--kind", "inquiry", "--text", "where is it?"],
        ["anomaly", "decide", missing, *decide],
        ["anomaly", "decide", missing, "1", *decide],
    )
    for run in runs:
        refused(run, 3, f"order {missing} not found")


async def test_no_worker_answering_exits_6(stack: Stack) -> None:
    """An order on record whose workflow no worker serves."""
    sim_order = stack.sim.create_order({"app_poi_code": GOODS_STORE}, push=False)
    order = to_platform_order(sim_order.order)
    await OrderRecords(stack.pool).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="test")
    )
    handle = await stack.env.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order),
        id=f"order-{order.order_id}",
        task_queue="orders-unserved",
    )
    run = await stack.orderctl("ready", order.order_id, "--timeout", "1")
    refused(run, 6, "no worker answered within 1s")
    await handle.terminate()


async def test_a_goods_order_from_progress_to_after_sales(stack: Stack) -> None:
    order, handle = await stack.place(GOODS_STORE)  # goods confirm themselves by policy
    worker = assignee_of(await stage(handle, Stage.IN_PROGRESS))

    async def each(*commands: list[str]) -> list[Run]:
        return await stack.each(*commands, as_=worker)

    wrong = await each(
        ["confirm", order, "--delivery-at", "+2h"],
        ["delivered", order, "--proof", "photo-1"],
        ["reconfirm", order],
        ["rate", order, "--score", "5"],
    )
    refused(wrong[0], 4, "confirm_with_customer is for an assigned order or one the customer")
    refused(wrong[1], 4, "mark_delivered needs the order on its way; it is in_progress")
    refused(wrong[2], 4, "reconfirm_visit needs a booked visit; none is booked yet")
    refused(wrong[3], 4, "record_rating is allowed at delivered; the order is in_progress")

    [done] = await each(["progress", order, "--note", "半成品", "--percent", "50"])
    assert ok(done).out.strip() == f"order {order}: progress reported (stage in_progress)"
    assert last(await event(handle, "progress"), "progress") == {"note": "半成品", "percent": 50}

    [run] = await each(
        ["exception", order, "--kind", "delay", "--detail", "oven is slow",
         "--remedy", "reschedule", "--new-time", "+2h", "--json"],
    )  # fmt: skip
    assert ok(run).json() == {
        "order_id": order,
        "update": "report_exception",
        "stage": "in_progress",
        "message": "exception recorded, remedy reschedule",
    }
    rescheduled = await event(handle, "exception")
    assert rescheduled.promise is not None
    moved = rescheduled.promise.delivery_at - datetime.now(UTC)
    assert timedelta(minutes=110) < moved < timedelta(hours=2)

    ok((await each(["ready", order]))[0])
    await stage(handle, Stage.DELIVERING)
    refused(
        (await each(["ready", order]))[0],
        4,
        "mark_ready is allowed at in_progress; the order is delivering",
    )
    ok((await each(["delivered", order, "--proof", "photo:IMG_1.jpg"]))[0])
    delivered = await stage(handle, Stage.DELIVERED)
    assert last(delivered, "delivered_with_proof")["proof"] == "photo:IMG_1.jpg"

    # A low rating opens a complaint, which is answered and resolved.
    ok((await each(["rate", order, "--score", "2", "--comment", "arrived cold"]))[0])
    rated = await until(handle, lambda s: len(s.feedback) == 1, "a complaint from the rating")
    assert rated.rating == 2 and rated.feedback[0].text == "arrived cold"
    wrong = await each(
        ["rate", order, "--score", "4"],
        ["feedback", "resolve", order, "1", "--resolution", "r", "--satisfied"],
        ["feedback", "respond", order, "2", "--response", "r"],
        ["progress", order, "--note", "x"],
    )
    refused(wrong[0], 4, "the order is already rated (2)")
    refused(wrong[1], 4, "resolve_feedback: feedback #1 is awaiting_response")
    refused(wrong[2], 4, f"no feedback case #2 on order {order}")
    refused(wrong[3], 4, "report_progress is allowed at confirmed, in_progress, delivering; the")
    late = await stack.each(
        ["reassign", order, "--reason", "r"],
        ["cancel", order, "--code", "2006", "--reason", "r"],
    )
    refused(late[0], 4, "reassign is allowed at assigned, confirmed, in_progress, delivering;")
    refused(late[1], 4, "an order that is delivered cannot be cancelled")

    ok((await each(["feedback", "respond", order, "1", "--response", "sorry"]))[0])
    answered = await until(
        handle, lambda s: s.feedback[0].state is FeedbackState.AWAITING_RESOLUTION, "answered"
    )
    assert answered.feedback[0].responses == ["sorry"]
    resolve = ["feedback", "resolve", order, "1", "--resolution", "a voucher", "--satisfied"]
    ok((await each(resolve))[0])
    resolved = await until(
        handle, lambda s: s.feedback[0].state is FeedbackState.SATISFIED, "satisfied"
    )
    assert resolved.feedback[0].resolutions == ["a voucher"]
    refused(
        (await each(["feedback", "respond", order, "1", "--response", "again"]))[0],
        4,
        "respond_feedback: feedback #1 is satisfied",
    )

    # On the customer's behalf: feedback by phone opens a second case.
    ok((await each(["complain", order, "--kind", "inquiry", "--text", "发票怎么开?"]))[0])
    asked = await until(handle, lambda s: len(s.feedback) == 2, "a second case")
    assert asked.feedback[1].kind.value == "inquiry" and asked.feedback[1].text == "发票怎么开?"

    # The platform's refund request and the customer's reminder, decided and answered.
    refund = str(stack.sim.apply_refund(int(order), reason="cold").refund_id)
    remind = str(stack.sim.remind(int(order))["remind_id"])
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id=refund, notify_type=RefundNotice.APPLY, reason="cold"),
    )
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id=remind))
    await until(handle, lambda s: bool(s.refunds), "a refund request")
    await event(handle, "customer_reminded")
    decided = await asyncio.gather(
        stack.orderctl("refund", order, refund, "--reject", "--reason", "eaten already"),
        stack.orderctl("reply-reminder", order, remind, "--text", "at 12:05", as_=worker),
        stack.orderctl("refund", order, "9", "--agree", "--reason", "r"),
        stack.orderctl("reply-reminder", order, "9", "--text", "t", as_=worker),
    )
    assert ok(decided[0]).out.strip() == f"order {order}: refund rejected (stage delivered)"
    ok(decided[1])
    refused(decided[2], 4, f"no refund request 9 on order {order}")
    refused(decided[3], 4, f"no reminder 9 on order {order}")
    after = await event(handle, "reminder_replied")
    assert after.refunds[0].state is RefundState.REJECTED and after.refunds[0].decided_by == "M-001"
    # Sent again (a new command, so a new request), a decision or a reply is refused with what
    # stands, never carried out twice nor the other way; orderctl's own retries of one command
    # share its key and are one update (tests/starter/test_api.py).
    again = await asyncio.gather(
        stack.orderctl("refund", order, refund, "--agree", "--reason", "changed mind"),
        stack.orderctl("reply-reminder", order, remind, "--text", "again", as_=worker),
    )
    refused(again[0], 4, f"refund {refund} is already rejected")
    refused(again[1], 4, f"reminder {remind} is already answered")
    counted = "SELECT count(*) FROM order_events WHERE order_id = $1 AND event = $2"
    assert await one(stack.pool, counted, order, "refund_decided") == 1
    assert await one(stack.pool, counted, order, "reminder_replied") == 1
    assert {"refund/reject", "remindReply"} <= set(calls(stack.sim, handle))

    # The whole picture, for a person and for a script, from the system of record.
    await poll(stack, ["show", order], lambda s: s["stage"] == "delivered", "the record")
    text, as_json = await stack.each(["show", order], ["show", order, "--json"], as_=worker)
    picture = ok(text).out
    for part in ("delivered", worker, "deadlines", "breaches", "feedback", refund, "timeline"):
        assert part in picture, picture
    assert "progress" in picture and "note=半成品 percent=50" in picture
    status = ok(as_json).json()
    assert set(status) == STATUS_KEYS
    assert status["order_id"] == order and status["stage"] == "delivered"
    assert status["timeline"][0]["event"] == "received"


async def test_a_service_order_confirmed_reassigned_changed_and_done(stack: Stack) -> None:
    order, handle = await stack.place(SERVICE_STORE)
    first = assignee_of(await stage(handle, Stage.ASSIGNED))

    wrong = await stack.each(
        ["reconfirm", order],
        ["confirm", order, "--delivery-at", "2020-01-01T10:00"],
        ["progress", order, "--note", "x"],
        as_=first,
    )
    refused(wrong[0], 4, "reconfirm_visit is allowed at in_progress; the order is assigned")
    refused(wrong[1], 4, "promised_delivery_at must be in the future")
    refused(wrong[2], 4, "report_progress is allowed at confirmed, in_progress, delivering;")

    # A naive time is the business's (Shanghai) time.
    visit = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(second=0, microsecond=0)
    run = await stack.orderctl(
        "confirm", order, "--delivery-at", visit.strftime("%Y-%m-%dT%H:%M"),
        "--promises", "自带拖把", "--channel", "wechat", as_=first,
    )  # fmt: skip
    assert ok(run).out.startswith(f"order {order}: confirmed with the customer (stage ")
    booked = await event(handle, "booked")
    assert booked.promise is not None
    assert booked.promise.delivery_at == visit and booked.promise.promises == "自带拖把"
    assert last(booked, "confirmed_with_customer")["channel"] == "wechat"
    assert [e.actor for e in booked.timeline if e.event == "confirmed_with_customer"] == [first]

    ok(await stack.orderctl("reassign", order, "--reason", "ill", as_="M-003"))
    moved = await event(handle, "reassigned")
    second = assignee_of(moved)
    assert second != first and last(moved, "reassigned")["reason"] == "ill"
    refused(
        await stack.orderctl("reassign", order, "--reason", "x", "--to", second, as_="M-003"),
        4,
        f"{second} already has this order",
    )
    refused(await stack.orderctl("reconfirm", order, as_=first), 7, "not assigned to")

    ok(await stack.orderctl("reconfirm", order, "--note", "on the phone", as_=second))
    await event(handle, "visit_reconfirmed")
    refused(
        await stack.orderctl("reconfirm", order, as_=second),
        4,
        "the visit is already re-confirmed",
    )

    # The customer moved: reviewed again, then confirmed again before anything else.
    run = await stack.orderctl(
        "change", order, "--address", "上海市徐汇区宜山路1号", "--note", "搬家", as_=second
    )
    assert "change of address sent" in ok(run).out
    changed = await until(handle, lambda s: s.awaiting_reconfirmation, "re-confirmation")
    assert last(changed, "customer_changed") == {"fields": ["address"], "note": "搬家"}
    address = "SELECT customer_address FROM orders WHERE order_id = $1"
    assert await one(stack.pool, address, order) == "上海市徐汇区宜山路1号"  # on record
    refused(
        await stack.orderctl("progress", order, "--note", "x", as_=second),
        4,
        "report_progress: the customer changed the order; confirm_with_customer first",
    )
    ok(await stack.orderctl("confirm", order, "--delivery-at", "+26h", as_=second))
    await until(handle, lambda s: not s.awaiting_reconfirmation, "re-confirmed")
    # The visit moved with it: booked again, and the technician re-confirms the new time.
    await event(handle, "rebooked")
    ok(await stack.orderctl("reconfirm", order, "--note", "new time agreed", as_=second))

    ok(await stack.orderctl("delivered", order, "--proof", "signed sheet", as_=second))
    await stage(handle, Stage.DELIVERED)
    # R3.4.1 the platform shows the visit done, as it shows a delivered order
    assert stack.sim.orders[int(order)].status == SimStatus.COMPLETED
    ok(await stack.orderctl("rate", order, "--score", "5", as_=second))
    rated = await event(handle, "rated")
    assert rated.rating == 5 and rated.feedback == []


async def test_cancel_and_an_order_that_already_ended(stack: Stack) -> None:
    order, handle = await stack.place(GOODS_STORE)
    worker = assignee_of(await stage(handle, Stage.IN_PROGRESS))
    run = await stack.orderctl("cancel", order, "--code", "2006", "--reason", "customer phoned")
    assert ok(run).out.strip() == f"order {order}: cancellation under way (stage in_progress)"
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2006

    runs = await asyncio.gather(
        stack.orderctl("cancel", order, "--code", "2006", "--reason", "again"),
        stack.orderctl("ready", order, as_=worker),
        stack.orderctl("complain", order, "--kind", "complaint", "--text", "too late"),
    )
    for run in runs:
        refused(run, 4, f"order {order} already ended: cancelled")
    ended = await poll(stack, ["show", order], lambda s: s["stage"] == "cancelled", "cancelled")
    assert ended["timeline"][-1]["details"]["cancel_code"] == 2006


async def test_the_anomaly_inbox_and_a_decision(stack: Stack) -> None:
    order, handle = await stack.place(GOODS_STORE, anomaly="bad_phone")
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
    assert "phone" in row["detail"]
    assert row["paused_stage"] == "reviewing" and row["store_code"] == GOODS_STORE

    inbox, listed = await stack.each(["anomalies"], ["list", "--anomaly-open", "--json"])
    assert anomaly_id in ok(inbox).out
    [mine] = [r for r in ok(listed).json() if r["order_id"] == order]
    assert set(mine) >= ORDER_KEYS
    assert mine["anomaly_open"] is True and mine["stage"] == "on_hold"

    decide = ["--cause", "customer mistyped", "--responsibility", "customer"]
    wrong = await stack.each(
        ["ready", order],
        ["anomaly", "decide", order, *decide, "--decision", "adjust_price", "--new-total", "58"],
        ["anomaly", "decide", order, "2", *decide, "--decision", "dismiss"],
    )
    refused(
        wrong[0], 4, f"mark_ready: the order is on hold until its anomaly is decided ({anomaly_id})"
    )
    refused(wrong[1], 4, "adjust_price does not apply to info anomalies")
    refused(wrong[2], 3, f"anomaly 2 of order {order} not found")
    refused(
        await stack.orderctl("anomaly", "decide", order, *decide, "--decision", "dismiss",
                             as_="S-101"),
        7,
        "S-101 is staff: only manager may decide",
    )  # fmt: skip

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
    phone = "SELECT customer_phone FROM orders WHERE order_id = $1"
    assert await one(stack.pool, phone, order) == "13900001111"  # the record is corrected

    # Decided again: refused with the first decision while the child runs, "already ended"
    # once it has; never a second decision.
    again = await stack.orderctl("anomaly", "decide", order, "1", *decide, "--decision", "dismiss")
    assert again.code == 4, (again.code, again.out, again.err)
    assert (
        f"{anomaly_id} was already decided (correct_info)" in again.err
        or f"anomaly 1 of order {order} already ended: completed" in again.err
    ), again.err
    await poll(
        stack,
        ["anomalies"],
        lambda rows: all(r["order_id"] != order for r in rows),
        "the inbox to drop the decided order",
    )
    refused(
        await stack.orderctl("anomaly", "decide", order, *decide, "--decision", "dismiss"),
        4,
        f"order {order} has no open anomaly",
    )
    decisions = "SELECT count(*) FROM order_events WHERE order_id = $1 AND event = $2"
    assert await one(stack.pool, decisions, order, "anomaly_closed") == 1
    ok(await stack.orderctl("cancel", order, "--code", "2006", "--reason", "test over"))
    await handle.result()


async def test_list_filters_from_the_record(stack: Stack) -> None:
    goods, goods_handle = await stack.place(GOODS_STORE)
    service, service_handle = await stack.place(SERVICE_STORE)
    cook = assignee_of(await stage(goods_handle, Stage.IN_PROGRESS))
    technician = assignee_of(await stage(service_handle, Stage.ASSIGNED))

    def has(order: str) -> Callable[[Any], bool]:
        return lambda rows: any(r["order_id"] == order for r in rows)

    rows = await poll(
        stack, ["list", "--stage", "in_progress", "--store", GOODS_STORE], has(goods), "goods"
    )
    assert all(r["stage"] == "in_progress" and r["store_code"] == GOODS_STORE for r in rows)
    [row] = [r for r in rows if r["order_id"] == goods]
    assert set(row) >= ORDER_KEYS
    assert row["workflow_id"] == f"order-{goods}" and row["status"] == "running"
    assert row["order_type"] == "goods" and row["assignee"] == cook
    assert row["breached"] is False and row["anomaly_open"] is False

    rows = await poll(
        stack,
        ["list", "--type", "service", "--assignee", technician, "--running"],
        has(service),
        "service",
        as_="A-901",
    )
    assert all(r["order_type"] == "service" and r["assignee"] == technician for r in rows)

    # Each person sees what is theirs: a cook their own orders, a manager their departments'.
    mine = ok(await stack.orderctl("list", "--json", as_=cook)).json()
    assert mine and all(r["assignee"] == cook for r in mine)
    kitchen = ok(await stack.orderctl("list", "--running", "--json", as_="M-001")).json()
    assert service not in {r["order_id"] for r in kitchen}
    refused(await stack.orderctl("show", service, as_=cook), 7, "not assigned to")

    runs = await stack.each(
        ["list", "--store", 'x" OR WorkflowType="OrderWorkflow', "--json"],
        ["list", "--limit", "1", "--json"],
        ["list", "--breached", "--json"],
        ["list", "--store", GOODS_STORE],
    )
    assert ok(runs[0]).json() == []
    assert len(ok(runs[1]).json()) == 1
    assert all(r["breached"] for r in ok(runs[2]).json())
    table = ok(runs[3]).out.splitlines()
    assert table[0].split() == [
        "ORDER", "STAGE", "TYPE", "STORE", "ASSIGNEE", "BREACHED", "ANOMALY", "STARTED",
    ]  # fmt: skip
    assert any(line.startswith(goods) for line in table[1:])
    for handle in (goods_handle, service_handle):
        await handle.cancel()
