"""The staff API's rules, through the running API: who may act on which order, the actor on
record is the token's person, a retried action is applied once, and tokens end.

A real Temporal test server with the real activities on PostgreSQL (the demo company), the API
served over HTTP on loopback, and one token per person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from localstack.simulator import BackgroundServer
from schemas.contract import Event
from schemas.messages import PlatformRefund
from schemas.order import Stage
from starter.api import tokens
from starter.api.app import create_app
from starter.api.protocol import IDEMPOTENCY_KEY
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import anomaly_open, at_stage
from tests.real_stack import Handle, one, place, reaches
from tests.real_stack import platform as platform
from tests.real_stack import real_worker as real_worker
from workflows.order import OrderWorkflow

PEOPLE = ("S-101", "S-102", "S-103", "M-001", "M-002", "L-401", "A-901")
DECIDE = ("cancel_order", "reassign", "decide_refund")


@dataclass
class Api:
    url: str
    tokens: dict[str, str]

    async def call(
        self,
        method: str,
        path: str,
        who: str | None,
        body: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {}
        if who is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.tokens[str(who)]}"
        if key is not None:
            headers[IDEMPOTENCY_KEY] = key
        async with httpx.AsyncClient(base_url=self.url, timeout=30, trust_env=False) as http:
            return await http.request(method, path, json=body, headers=headers)

    async def update(
        self, who: str, order: str, name: str, body: dict[str, Any], key: str | None = None
    ) -> httpx.Response:
        return await self.call("POST", f"/orders/{order}/updates/{name}", who, body, key=key)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool
) -> AsyncIterator[Api]:
    issued = {person: await tokens.issue(demo_pool, person) for person in PEOPLE}
    async with BackgroundServer(create_app(own_env.client, demo_pool)) as server:
        yield Api(server.url, issued)


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == 7 and words in response.json()["error"], response.json()


async def in_progress(env: WorkflowEnvironment, sim: Any) -> tuple[Handle, str, str]:
    """A goods order of Xuhui's kitchen, being prepared; its id and its assignee."""
    handle = await place(env, sim, "SH-XH-001")
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert current.assignee is not None
    return handle, handle.id.removeprefix("order-"), current.assignee.staff_id


async def events(pool: asyncpg.Pool, order: str, event: Event) -> list[str]:
    actors: list[str] = await one(
        pool,
        "SELECT coalesce(array_agg(actor ORDER BY seq), '{}') FROM order_events "
        "WHERE order_id = $1 AND event = $2",
        order,
        event.value,
    )
    return actors


async def test_no_token_a_bad_one_a_revoked_one_and_an_expired_one_get_401(
    api: Api, demo_pool: asyncpg.Pool
) -> None:
    refused(await api.call("GET", "/me", None), 401, "sign in first")
    refused(await api.call("GET", "/me", None, token="oft_not-a-token"), 401, "unknown")
    assert (await api.call("GET", "/me", "M-001")).json()["departments"] == ["KITCHEN-XH"]

    revoked = await tokens.issue(demo_pool, "S-202")
    assert (await api.call("GET", "/me", None, token=revoked)).status_code == 200
    assert await tokens.revoke(demo_pool, "S-202") == 1
    refused(await api.call("GET", "/me", None, token=revoked), 401, "revoked")

    expired = await tokens.issue(demo_pool, "S-201")
    await demo_pool.execute(
        "UPDATE staff_tokens SET issued_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 day' WHERE token_hash = $1",
        tokens.token_hash(expired),
    )
    refused(await api.call("GET", "/me", None, token=expired), 401, "expired")


async def test_staff_act_on_their_own_orders_and_managers_alone_decide(
    api: Api, own_env: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle, order, assignee = await in_progress(own_env, platform.sim)
    other = next(p for p in ("S-101", "S-102", "S-103") if p != assignee)
    stage = "SELECT stage FROM orders WHERE order_id = $1"

    refused(await api.update(other, order, "mark_ready", {}), 403, f"not assigned to {other}")
    refused(await api.update("L-401", order, "mark_ready", {}), 403, "liaison")
    for name in DECIDE:  # refused before the body is even read
        refused(await api.update(assignee, order, name, {}), 403, "only manager may decide")
    decide = f"/orders/{order}/anomaly/decide"
    refused(await api.call("POST", decide, assignee, {}), 403, "only manager may decide")
    reassign = {"reason": "went home ill"}
    refused(await api.update("M-002", order, "reassign", reassign), 403, "not in the departments")
    assert await one(demo_pool, stage, order) == "in_progress"  # nothing changed
    assert await events(demo_pool, order, Event.READY) == []

    # the body names the manager; the record names the token's person
    ready = await api.update(assignee, order, "mark_ready", {"by": "M-001"}, key="once")
    assert ready.status_code == 200, ready.text
    again = await api.update(assignee, order, "mark_ready", {"by": "M-001"}, key="once")
    assert again.status_code == 200 and again.json() == ready.json()  # the same update
    assert await events(demo_pool, order, Event.READY) == [assignee]

    cancel = {"reason_code": 2006, "reason": "customer phoned to cancel", "by": assignee}
    cancelled = await api.update("M-001", order, "cancel_order", cancel)
    assert cancelled.status_code == 200, cancelled.text
    assert await events(demo_pool, order, Event.CANCEL_REQUESTED) == ["M-001"]
    assert (await handle.result()).stage is Stage.CANCELLED
    assert await reaches(demo_pool, stage, order, value="cancelled") == "cancelled"


async def test_a_refund_answered_twice_differently_is_refused_the_second_time(
    api: Api, own_env: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    """The same request sent again is the same update; a different answer to the same refund
    is not handed the first one's result: the workflow refuses it with what stands."""
    handle, order, _ = await in_progress(own_env, platform.sim)
    asked = platform.sim.apply_refund(int(order), reason="少送可乐")  # on the platform
    refund_id = str(asked.refund_id)
    refund = PlatformRefund(refund_id=refund_id, notify_type="apply", reason="少送可乐")
    await handle.signal(OrderWorkflow.platform_refund, refund)  # its push, as the gateway sends
    state = "SELECT state FROM refunds WHERE order_id = $1 AND refund_id = $2"
    awaiting = await reaches(demo_pool, state, order, refund_id, value="awaiting_decision")
    assert awaiting == "awaiting_decision"

    agree = {"refund_id": refund_id, "agree": True, "reason": "未出餐，同意退款"}
    first = await api.update("M-001", order, "decide_refund", agree)
    assert first.status_code == 200 and first.json()["message"] == "refund agreed", first.text
    again = await api.update("M-001", order, "decide_refund", agree)
    assert again.status_code == 200 and again.json() == first.json()  # the same update
    reject = {"refund_id": refund_id, "agree": False, "reason": "已送达"}
    second = await api.update("M-001", order, "decide_refund", reject)
    assert second.status_code == 409, second.text
    assert f"refund {refund_id} is already agreed" in second.json()["error"]
    assert await reaches(demo_pool, state, order, refund_id, value="agreed") == "agreed"
    assert (await handle.result()).stage is Stage.CANCELLED  # a full refund agreed ends it


async def test_an_anomaly_is_decided_by_a_manager_of_the_order_as_themselves(
    api: Api, own_env: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-XH-001", anomaly="wrong_price")
    order = handle.id.removeprefix("order-")
    await anomaly_open(handle)
    decide = f"/orders/{order}/anomaly/decide"
    body = {
        "by": "S-101",
        "decision": "cancel",
        "cause": "the price cannot be honoured",
        "responsibility": "store",
        "cancel_code": 2007,
    }
    refused(await api.call("POST", decide, "S-101", body), 403, "only manager may decide")
    refused(await api.call("POST", decide, "M-002", body), 403, "not in the departments")
    decided = await api.call("POST", decide, "M-001", body)
    assert decided.status_code == 200, decided.text
    assert decided.json()["decided_by"] == "M-001"
    assert (await handle.result()).stage is Stage.CANCELLED
    decided_by = "SELECT outcome->>'decided_by' FROM anomalies WHERE order_id = $1"
    assert await reaches(demo_pool, decided_by, order, value="M-001") == "M-001"


async def test_bad_requests_say_what_is_wrong(api: Api) -> None:
    unknown = await api.update("M-001", "123", "launch_rockets", {})
    assert unknown.status_code == 404 and "no update 'launch_rockets'" in unknown.json()["error"]
    missing = await api.update("M-001", "4040404040", "reassign", {"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == 3
