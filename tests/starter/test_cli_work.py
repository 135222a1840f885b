"""People see their work, through orderctl as a person runs it (the stack of test_cli: a real
Temporal dev server, the real activities on PostgreSQL, the staff API over HTTP): `my` with the
time left, `inbox` in Chinese with read marks and `--follow`, the ticket at 32 columns, the
customer's number to the assignee only, recorded; and orders that never wait on a robot that
is down, whose notifications arrive once each, @-mentioning their person, when it is back."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from activities.notify import Notifier
from infra.settings import settings
from schemas.messages import MarkDelivered, MarkReady
from schemas.notices import Audience, Notification, Topic
from schemas.order import Stage
from schemas.review import AnomalyKind
from starter.cli.format import display_width
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import until
from tests.real_stack import platform as platform
from tests.robot import Robot
from tests.starter.test_cli import GOODS_STORE, REPO, Stack, assignee_of, ok, poll, stage
from tests.starter.test_cli import stack as stack
from workers.dispatcher import Dispatcher
from workflows.order import OrderWorkflow

STAFF = ("S-101", "S-102", "S-103")


async def test_my_work_shows_the_next_action_and_the_time_left(stack: Stack) -> None:
    order, handle = await stack.place(GOODS_STORE)
    assignee = assignee_of(await stage(handle, Stage.IN_PROGRESS))

    def has_it(answer: Any) -> bool:
        return any(i["order_id"] == order for i in answer["items"])

    mine = await poll(stack, ["my"], has_it, "the order in my work", as_=assignee)
    item = next(i for i in mine["items"] if i["order_id"] == order)
    assert (item["next_action"], item["clause"]) == ("ready", "prepare")
    assert 0 < item["seconds_left"] <= 45 * 60 and item["store_name"] == "老弄堂小馆(徐汇店)"
    lines = ok(await stack.orderctl("my", as_=assignee)).out.splitlines()
    row = next(line for line in lines if order in line)
    assert "ready" in row and "prepare" in row and "m" in row.split()[-1]  # e.g. 44m
    managed = ok(await stack.orderctl("my", "--json", as_="M-001")).json()
    assert has_it(managed) and set(managed["queues"]) == {"anomalies", "refunds"}
    other = next(p for p in STAFF if p != assignee)
    assert not has_it(ok(await stack.orderctl("my", "--json", as_=other)).json())
    await handle.terminate("test ended")


async def test_the_inbox_in_chinese_with_read_marks_and_follow(stack: Stack) -> None:
    order, handle = await stack.place(GOODS_STORE)
    assignee = assignee_of(await stage(handle, Stage.IN_PROGRESS))

    def assigned(rows: Any) -> bool:
        return any(r["order_id"] == order and r["topic"] == "assigned" for r in rows)

    rows = await poll(stack, ["inbox"], assigned, "the assignment notice", as_=assignee)
    entry = next(r for r in rows if r["order_id"] == order and r["topic"] == "assigned")
    day_seq = await stack.pool.fetchval("SELECT day_seq FROM orders WHERE order_id=$1", order)
    assert entry["subject"] == "新订单分配给您" and entry["read_at"] is None
    assert entry["text"].splitlines()[0] == f"#{day_seq} 老弄堂小馆(徐汇店)"
    # takeout is confirmed without a call: the assignee's next clause (prepare) is not yet due
    assert "请于" not in entry["text"]
    assert "新订单分配给您" in ok(await stack.orderctl("inbox", "--unread", as_=assignee)).out

    refused_mark = ok(await stack.orderctl("inbox", "--read", entry["key"], as_="M-001"))
    assert refused_mark.out.strip() == "0 marked read"  # not theirs to mark
    assert ok(await stack.orderctl("inbox", "--read", entry["key"], as_=assignee)).out.startswith(
        "1 marked"
    )
    unread = ok(await stack.orderctl("inbox", "--unread", "--json", as_=assignee)).json()
    assert all(r["key"] != entry["key"] for r in unread)
    other = next(p for p in STAFF if p != assignee)
    theirs = ok(await stack.orderctl("inbox", "--json", as_=other)).json()
    assert all(r["order_id"] != order for r in theirs)

    follower = await _follow(stack, assignee)
    try:
        await Notifier(stack.pool).notify(
            Notification(
                key=f"follow-{order}",
                order_id=order,
                audience=Audience.STAFF,
                recipient=assignee,
                store_code=GOODS_STORE,
                topic=Topic.REMINDER,
                facts={"stage": "in_progress", "remind_id": "r-1"},
            )
        )
        assert follower.stdout is not None
        seen = ""
        while "顾客在催单" not in seen:
            seen += (await asyncio.wait_for(follower.stdout.readline(), 20)).decode()
    finally:
        follower.terminate()
        await follower.wait()
    await handle.terminate("test ended")


async def _follow(stack: Stack, person: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.cli",
        "inbox",
        "--follow",
        "--unread",
        "--every",
        "1",
        cwd=REPO,
        env=stack.environment(person),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_the_ticket_at_32_columns_and_the_number_to_the_assignee_only(
    stack: Stack,
) -> None:
    order, handle = await stack.place(GOODS_STORE)
    assignee = assignee_of(await stage(handle, Stage.IN_PROGRESS))
    items = await stack.pool.fetch(
        "SELECT name, quantity FROM order_items WHERE order_id = $1 ORDER BY line_no", order
    )
    lines = ok(await stack.orderctl("ticket", order, as_=assignee)).out.splitlines()
    assert max(display_width(line) for line in lines) == 32
    for item in items:  # names aligned left, quantities flush right, CJK counted double
        line = next(line for line in lines if line.startswith(item["name"][:4]))
        assert line.endswith(f"x{item['quantity']}") and display_width(line) == 32
    wide = ok(await stack.orderctl("ticket", order, "--paper", "80", as_=assignee)).out
    assert max(display_width(line) for line in wide.splitlines()) == 48

    shown = ok(await stack.orderctl("show", order, "--json", as_=assignee)).json()
    assert [i["name"] for i in shown["sheet"]["items"]] == [i["name"] for i in items]
    assert shown["sheet"]["contact"] is None  # not asked for: not shown, not recorded
    told = {(t["audience"], t["subject"]) for t in shown["sheet"]["told"]}
    assert ("staff", "新订单分配给您") in told  # and what the customer was told, on record
    assert any(audience == "customer" for audience, _ in told)
    revealed = ok(await stack.orderctl("show", order, "--contact", as_=assignee)).out
    phone = await stack.pool.fetchval("SELECT customer_phone FROM orders WHERE order_id=$1", order)
    assert f"contact  {phone}" in revealed and "what" in revealed
    refused = await stack.orderctl("show", order, "--contact", as_="A-901")
    assert refused.code == 7 and "whoever works the order" in refused.err
    read_only = ok(await stack.orderctl("show", order, "--json", as_="A-901")).json()["sheet"]
    assert (read_only["address"], read_only["caution"], read_only["told"]) == ("", "", [])
    reveals = await stack.pool.fetch(
        "SELECT staff_id FROM contact_reveals WHERE order_id = $1", order
    )
    assert [r["staff_id"] for r in reveals] == [assignee]
    await handle.terminate("test ended")


async def test_orders_never_wait_on_a_robot_that_is_down(stack: Stack) -> None:
    """A burst of orders completes within its deadlines with the robot down; back up, the
    robot gets each staff notification once, within WeCom's 20 a minute, @-mentioning its
    person."""
    robot = Robot(limit=20, window_s=60)
    robot.stop()
    pool = stack.pool
    placed: list[tuple[str, Any]] = []
    try:
        await pool.execute("DELETE FROM notify_routes; UPDATE deliveries SET state = 'dead'")
        await _routes(pool, robot.url)
        placed += [await stack.place(GOODS_STORE) for _ in range(4)]
        for _, handle in placed:
            await _deliver(handle)
        for _, handle in placed:
            done = await stage(handle, Stage.DELIVERED)
            assert done.breaches == []
        orders = [order for order, _ in placed]
        waiting = await _pending(pool, orders)
        assert len(waiting) >= 4  # each assignee's notice at least, none sent yet
        robot.start()
        stop = asyncio.Event()
        sending = asyncio.create_task(Dispatcher(pool).run(stop))
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while len(robot.received) < len(waiting):
                assert asyncio.get_running_loop().time() < deadline, robot.received
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # and nothing more
        finally:
            stop.set()
            await sending
        assert len(robot.received) == len(waiting) and robot.refused_for_rate == 0
        contents = [r["body"]["text"]["content"] for r in robot.received]
        assert len(set(contents)) == len(contents)  # none twice
        for row in waiting:
            sent = next(r for r in robot.received if row["text"] in r["body"]["text"]["content"])
            assert sent["body"]["text"]["mentioned_list"] == [f"wx-{row['recipient']}"]
    finally:
        robot.stop()
        await pool.execute("DELETE FROM notify_routes")
        for _, handle in placed:
            await handle.terminate("test ended")


async def _routes(pool: asyncpg.Pool, url: str) -> None:
    await pool.execute(
        "INSERT INTO notify_routes (scope, owner, kind, url) VALUES ('store', $1, 'wecom', $2)",
        GOODS_STORE,
        url,
    )
    people = await pool.fetch("SELECT staff_id FROM staff")
    await pool.executemany(
        "INSERT INTO notify_routes (scope, owner, kind, mention) "
        "VALUES ('person', $1, 'wecom', $2)",
        [(p["staff_id"], f"wx-{p['staff_id']}") for p in people],
    )


async def _deliver(handle: Any) -> None:
    status = await stage(handle, Stage.IN_PROGRESS)
    by = assignee_of(status)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by=by))
    await stage(handle, Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by=by, proof="photo://door")
    )


async def _pending(pool: asyncpg.Pool, orders: list[str]) -> list[asyncpg.Record]:
    rows = await pool.fetch(
        """
        SELECT n.key, n.recipient, n.text, d.state FROM deliveries d
        JOIN notifications n ON n.key = d.notification_key WHERE n.order_id = ANY($1::text[])
        """,
        orders,
    )
    assert {r["state"] for r in rows} == {"pending"}, [dict(r) for r in rows]
    return rows


async def test_a_ban_makes_the_next_order_a_fraud_anomaly_and_lifting_it_restores_review(
    stack: Stack,
) -> None:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    first, handle = await stack.place(GOODS_STORE, recipient_phone=phone)
    await stage(handle, Stage.IN_PROGRESS)
    refused = await stack.orderctl(
        "admin", "customer", "ban", "--order", first, "--reason", "x", as_="M-001"
    )
    assert refused.code == 7 and "only admin may" in refused.err
    banned = ok(
        await stack.orderctl(
            "admin",
            "customer",
            "ban",
            "--order",
            first,
            "--reason",
            "刷单，三次拒收",
            "--json",
            as_="A-901",
        )
    ).json()
    assert banned["status"] == "banned"
    assert [(a["actor"], a["action"], a["reason"]) for a in banned["audit"]] == [
        ("A-901", "customer.ban", "刷单，三次拒收")
    ]
    assert phone not in json.dumps(banned)  # the profile names nobody

    _, held = await stack.place(GOODS_STORE, recipient_phone=phone)
    paused = await until(held, lambda s: bool(s.anomalies), "the anomaly")
    assert paused.anomalies[0].kind is AnomalyKind.FRAUD
    assert "the customer is banned" in paused.anomalies[0].detail

    customer = banned["customer_id"]
    lifted = ok(
        await stack.orderctl(
            "admin", "customer", "lift", customer, "--reason", "申诉核实", as_="A-901"
        )
    ).out
    assert lifted.strip() == f"customer {customer}: good (credit 100)"
    shown = ok(await stack.orderctl("admin", "customer", "show", customer, as_="A-901")).out
    assert "customer.lift" in shown and "customer.ban" in shown and "申诉核实" in shown

    _, normal = await stack.place("SH-PD-002", recipient_phone=phone)
    reviewed = await until(
        normal, lambda s: s.stage not in (Stage.RECEIVED, Stage.REVIEWING), "the review"
    )
    assert all("banned" not in a.detail for a in reviewed.anomalies)
    for h in (handle, held, normal):
        await h.terminate("test ended")


async def test_admins_manage_people_and_stock_and_each_change_is_audited(stack: Stack) -> None:
    new = f"S-9{uuid.uuid4().int % 1000:03d}"
    add = ["admin", "person", "add", new, "--name", "王五", "--department", "KITCHEN-XH"]
    add += ["--role", "staff", "--capacity", "2", "--reason", "入职"]
    refused = await stack.orderctl(*add, as_="M-001")
    assert refused.code == 7 and "only admin may add people" in refused.err
    added = ok(await stack.orderctl(*add, "--json", as_="A-901")).json()
    assert (added["region"], added["active"], added["skills"]) == ("shanghai-xuhui", True, {})
    skills = ["admin", "person", "skills", new, "hot_dishes=4", "cold_dishes=2"]
    skilled = ok(await stack.orderctl(*skills, "--reason", "考核", "--json", as_="A-901")).json()
    assert skilled["skills"] == {"hot_dishes": 4, "cold_dishes": 2}
    bad = await stack.orderctl(*skills[:4], "wok=9", "--reason", "x", as_="A-901")
    assert bad.code == 2 and "wok: a skill's level is 1 to 5, not 9" in bad.err
    gone = ok(
        await stack.orderctl(
            "admin", "person", "set", new, "--inactive", "--reason", "离职", as_="A-901"
        )
    ).out
    assert "disabled" in gone

    line = "SELECT on_hand, reserved FROM stock WHERE store_code = 'SH-XH-001' AND sku = $1"
    before = await stack.pool.fetchrow(line, "G-HSR")
    restock = ["admin", "stock", "restock", GOODS_STORE, "G-HSR", "5", "--reason", "到货"]
    shown = ok(await stack.orderctl(*restock, "--json", as_="A-901")).json()
    assert shown[0]["on_hand"] == before["on_hand"] + 5
    count = ["admin", "stock", "count", GOODS_STORE, "G-HSR", "--reason", "盘点"]
    assert ok(await stack.orderctl(*count, "--on-hand", str(before["on_hand"]), as_="A-901"))
    hold = "UPDATE stock SET reserved = reserved + $1 WHERE store_code = 'SH-XH-001' AND sku = $2"
    await stack.pool.execute(hold, 1, "G-HSR")  # an open order holds one
    try:
        held = (await stack.pool.fetchrow(line, "G-HSR"))["reserved"]
        short = await stack.orderctl(*count, "--on-hand", str(held - 1), as_="A-901")
        assert short.code == 4 and "held for open orders" in short.err
    finally:
        await stack.pool.execute(hold, -1, "G-HSR")
    kinds = await stack.pool.fetch(
        "SELECT kind, quantity FROM stock_ledger WHERE order_id LIKE 'admin:%' AND sku = 'G-HSR'"
        " ORDER BY entry_id DESC LIMIT 2"
    )
    assert [(k["kind"], k["quantity"]) for k in kinds] == [("writeoff", 5), ("restock", 5)]
    audited = await stack.pool.fetch(
        "SELECT actor, action, reason FROM admin_audit"
        " WHERE target IN ($1, 'stock:SH-XH-001:G-HSR') ORDER BY audit_id",
        f"person:{new}",
    )
    assert [(a["action"], a["reason"]) for a in audited][-5:] == [
        ("person.add", "入职"),
        ("person.skills", "考核"),
        ("person.change", "离职"),
        ("stock.restock", "到货"),
        ("stock.adjust", "盘点"),
    ]
    assert {a["actor"] for a in audited} == {"A-901"}


async def test_a_stores_own_terms_and_hours_reach_its_next_order(stack: Stack) -> None:
    store = "SH-PD-002"
    terms = ["admin", "store", "terms", store]
    hours = ["admin", "store", "hours", store]
    try:
        wrong = await stack.orderctl(*terms, "max_feedback_rounds=0", "--reason", "x", as_="A-901")
        assert wrong.code == 2 and "do not fit the policy" in wrong.err
        shown = ok(
            await stack.orderctl(
                *terms,
                "auto_confirm=false",
                "--reason",
                "新店：每单电话确认",
                "--json",
                as_="A-901",
            )
        ).json()
        assert shown["terms"] == {"auto_confirm": False}
        assert shown["effective"]["auto_confirm"] is False
        _, handle = await stack.place(store)
        assigned = await until(
            handle, lambda s: any(d.clause.value == "confirm" for d in s.deadlines), "confirm"
        )
        assert assigned.promise is None  # a takeout store confirming by phone, as it asked

        today = datetime.now(settings().business.timezone).isoweekday()
        other = today % 7 + 1  # open tomorrow only: an order now is due while it is closed
        shut = ok(
            await stack.orderctl(
                *hours, f"{other}=10:00-22:00", "--reason", "装修", "--json", as_="A-901"
            )
        ).json()
        assert shut["hours"] == [{"weekday": other, "opens": "10:00:00", "closes": "22:00:00"}]
        _, closed = await stack.place(store)
        held = await until(closed, lambda s: bool(s.anomalies), "the anomaly")
        assert "outside the store's hours" in held.anomalies[0].detail
        for h in (handle, closed):
            await h.terminate("test ended")
    finally:
        ok(await stack.orderctl(*hours, "--reason", "恢复", as_="A-901"))
        ok(await stack.orderctl(*terms, "--reason", "恢复", as_="A-901"))
    audited = await stack.pool.fetch(
        "SELECT action FROM admin_audit WHERE target = $1 ORDER BY audit_id", f"store:{store}"
    )
    assert [a["action"] for a in audited][-4:] == [
        "store.terms",
        "store.hours",
        "store.hours",
        "store.terms",
    ]


async def test_a_measure_is_taken_on_a_finding_and_ended(stack: Stack) -> None:
    add = ["measure", "add", "clause_below_target:confirm", "--what", "两人接单"]
    add += ["--owner", "M-001", "--due", "2026-12-31"]
    refused = await stack.orderctl(*add, as_="S-101")
    assert refused.code == 7 and "only managers and admins" in refused.err
    unknown = await stack.orderctl("measure", "add", "patrol_found:x", *add[3:], as_="M-001")
    assert unknown.code == 2 and "no figure measures a 'patrol_found' finding" in unknown.err
    taken = ok(await stack.orderctl(*add, "--json", as_="M-001")).json()
    assert (taken["figure"], taken["state"], taken["created_by"]) == (
        "on_time:confirm",
        "open",
        "M-001",
    )
    listed = ok(await stack.orderctl("measure", "list", "--json", as_="A-901")).json()
    assert taken["measure_id"] in [m["measure_id"] for m in listed]
    ended = ok(await stack.orderctl("measure", "end", str(taken["measure_id"]), "--done"))
    assert ended.out.startswith(f"#{taken['measure_id']} done: 两人接单")
    again = await stack.orderctl("measure", "end", str(taken["measure_id"]), "--dropped")
    assert again.code == 3 and "no open measure" in again.err
