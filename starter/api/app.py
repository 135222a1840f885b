"""The staff API: people act on orders here, never on Temporal.

Each request names its person by a bearer token (`starter.api.tokens`); the permission table
(`schemas.people`) decides against the order as the system of record has it; the action goes to
the order's workflow with the person as its actor and an update ID derived from the action; and
every read comes from PostgreSQL, so looking at an order never touches its workflow.

Answers are JSON; a failure is `{"error": ..., "code": ...}` with the code `orderctl` exits with.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client

from infra.database import UNAVAILABLE
from infra.settings import settings
from schemas.anomaly import AnomalyOutcome
from schemas.messages import UpdateResult
from schemas.people import Person, read_refusal, refusal
from starter.api import admin, admin_people, admin_stock, admin_stores, measures, reads
from starter.api.actions import DECIDE_ANOMALY, SIGNALS, UPDATES, Act
from starter.api.protocol import ANSWER_WITHIN, IDEMPOTENCY_KEY
from starter.api.temporal_calls import Session, anomaly_target, order_target
from starter.api.tokens import person_for
from starter.failures import Exit, Failure, forbidden, invalid

log = structlog.get_logger("orderflow.api")
MAX_BODY_BYTES = 64 * 1024
Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Any]]
Change = Callable[..., Awaitable[BaseModel]]
"""An admin change: (pool, person, *path values, body) -> what it is now."""
Read = Callable[[asyncpg.Pool, str], Awaitable[BaseModel | list[Any]]]


def answer(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


def endpoint(handle: Callable[[Request], Awaitable[Any]]) -> Endpoint:
    """A failure becomes its JSON answer; a request the API cannot read is 422, and a
    database that does not answer is 503, never a 500 with a traceback."""

    async def run(request: Request) -> Response:
        try:
            return answer(await handle(request))
        except Failure as failure:
            return answer(failure.as_json(), failure.http_status)
        except ValidationError as err:
            return answer(Failure(invalid(err), Exit.USAGE).as_json(), 422)
        except UNAVAILABLE as err:
            log.warning("api.database_down", path=request.url.path, error=type(err).__name__)
            down = Failure("the database does not answer; try again shortly", Exit.UNREACHABLE)
            return answer(down.as_json(), down.http_status)

    return run


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Failure(f"the request is larger than {MAX_BODY_BYTES} bytes", Exit.USAGE)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise Failure("the request body is not JSON", Exit.USAGE) from None
    if not isinstance(body, dict):
        raise Failure("the request body is not a JSON object", Exit.USAGE)
    return body


def order_param(request: Request) -> str:
    order: str = request.path_params["order_id"]
    if not order or len(order) > 64 or not all(c.isalnum() or c in "-_" for c in order):
        raise Failure(f"not an order id: {order!r}", Exit.USAGE)
    return order


@dataclass(frozen=True)
class StaffApi:
    pool: asyncpg.Pool
    calls: Session

    async def person(self, request: Request) -> Person:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return await person_for(self.pool, token.strip() if scheme.lower() == "bearer" else None)

    def calls_for(self, request: Request) -> Session:
        """Temporal is given no longer than the client waits (ANSWER_WITHIN), so the API is
        the one to say that no worker answered."""
        raw = request.headers.get(ANSWER_WITHIN, "")
        try:
            wanted = timedelta(seconds=float(raw))
        except ValueError:
            return self.calls
        if timedelta(0) < wanted < self.calls.timeout:
            return replace(self.calls, timeout=wanted)
        return self.calls

    async def allowed(self, request: Request, act: Act) -> tuple[Person, str]:
        """The person and the order, once the permission table lets them act on it."""
        person = await self.person(request)
        order = order_param(request)
        why_not = refusal(person, act.duty, await reads.scope(self.pool, order))
        if why_not is not None:
            log.warning("refused", actor=person.staff_id, action=act.name, order_id=order)
            raise forbidden(why_not)
        return person, order

    async def me(self, request: Request) -> Any:
        return (await self.person(request)).model_dump(mode="json")

    async def update(self, request: Request) -> Any:
        act = _known(UPDATES, request.path_params["name"], "update")
        person, order = await self.allowed(request, act)
        message = act.parse(await body_of(request), person)
        update_id = act.update_id(order, message, request.headers.get(IDEMPOTENCY_KEY))
        result = await self.calls_for(request).update(
            order_target(order), act.name, message, UpdateResult, update_id=update_id
        )
        log.info("acted", actor=person.staff_id, action=act.name, order_id=order)
        return {"order_id": order, "update": act.name, **result.model_dump(mode="json")}

    async def signal(self, request: Request) -> Any:
        act = _known(SIGNALS, request.path_params["name"], "signal")
        person, order = await self.allowed(request, act)
        message = act.parse(await body_of(request), person)
        await self.calls_for(request).signal(order_target(order), act.name, message)
        log.info("acted", actor=person.staff_id, action=act.name, order_id=order)
        return {"order_id": order, "signal": act.name, "sent": True, "by": person.staff_id}

    async def decide(self, request: Request) -> Any:
        """R5.2.3 without a number, the order's latest open anomaly is the one meant."""
        person, order = await self.allowed(request, DECIDE_ANOMALY)
        message = DECIDE_ANOMALY.parse(await body_of(request), person)
        asked = request.query_params.get("number", "")
        if asked and not asked.isdigit():
            raise Failure(f"an anomaly's number is a whole number, not {asked!r}", Exit.USAGE)
        number = int(asked) if asked else await reads.open_anomaly_number(self.pool, order)
        target = anomaly_target(order, number)
        update_id = DECIDE_ANOMALY.update_id(
            target.workflow_id, message, request.headers.get(IDEMPOTENCY_KEY)
        )
        outcome = await self.calls_for(request).update(
            target, DECIDE_ANOMALY.name, message, AnomalyOutcome, update_id=update_id
        )
        log.info("acted", actor=person.staff_id, action="decide", order_id=order)
        return {"order_id": order, **outcome.model_dump(mode="json")}

    async def orders(self, request: Request) -> Any:
        person = await self.person(request)
        return await reads.orders(self.pool, person, request.query_params)

    async def order(self, request: Request) -> Any:
        person = await self.person(request)
        order = order_param(request)
        why_not = read_refusal(person, await reads.scope(self.pool, order))
        if why_not is not None:
            raise forbidden(why_not)
        return await reads.order(self.pool, order)

    async def sheet(self, request: Request) -> Any:
        person = await self.person(request)
        scope = await reads.scope(self.pool, order_param(request))
        why_not = read_refusal(person, scope)
        if why_not is not None:
            raise forbidden(why_not)
        answered = await reads.sheet(self.pool, person, scope, request.query_params)
        if answered.get("contact"):
            log.info("contact_revealed", actor=person.staff_id, order_id=scope.order_id)
        return answered

    async def anomalies(self, request: Request) -> Any:
        person = await self.person(request)
        return await reads.anomalies(self.pool, person, request.query_params)

    async def inbox(self, request: Request) -> Any:
        person = await self.person(request)
        return await reads.inbox(self.pool, person, request.query_params)

    async def mark_read(self, request: Request) -> Any:
        person = await self.person(request)
        return await reads.mark_read(self.pool, person, await body_of(request))

    async def my_work(self, request: Request) -> Any:
        person = await self.person(request)
        return await reads.my_work(self.pool, person, request.query_params)

    async def customer(self, request: Request) -> Any:
        """R5.3.3 a customer's credit profile: by id, or `?order=` for the customer of an order."""
        person = await self.person(request)
        admin.require_admin(person, "see customers' credit")
        found = await admin.profile(self.pool, await self._customer_id(request))
        return found.model_dump(mode="json")

    async def ban(self, request: Request) -> Any:
        return await self._standing(request, admin.BAN)

    async def lift(self, request: Request) -> Any:
        return await self._standing(request, admin.LIFT)

    async def _standing(self, request: Request, action: str) -> Any:
        person = await self.person(request)
        admin.require_admin(person, "ban customers or lift a ban")
        customer = await self._customer_id(request)
        changed = await admin.change_standing(
            self.pool, person, customer, action, await body_of(request)
        )
        log.info("administered", actor=person.staff_id, action=action)
        return changed.model_dump(mode="json")

    def administer(self, action: str, change: Change, *keys: str) -> Handler:
        """An admin's change: the path's `keys` and the body to `change`, which checks the
        person may and audits it; logged by its action, never by what it carried."""

        async def handle(request: Request) -> Any:
            person = await self.person(request)
            values = [request.path_params[key] for key in keys]
            done = await change(self.pool, person, *values, await body_of(request))
            log.info("administered", actor=person.staff_id, action=action)
            return done.model_dump(mode="json")

        return handle

    def admin_read(self, what: str, read: Read, key: str) -> Handler:
        """What only an admin may see, by the path's `key`."""

        async def handle(request: Request) -> Any:
            person = await self.person(request)
            admin.require_admin(person, what)
            found = await read(self.pool, request.path_params[key])
            if isinstance(found, list):
                return [item.model_dump(mode="json") for item in found]
            return found.model_dump(mode="json")

        return handle

    async def measures(self, request: Request) -> Any:
        person = await self.person(request)
        if request.method == "GET":
            return await measures.listing(self.pool, person)
        taken = await measures.add(self.pool, person, await body_of(request))
        log.info("measure.taken", actor=person.staff_id, measure=taken["measure_id"])
        return taken

    async def end_measure(self, request: Request) -> Any:
        person = await self.person(request)
        ended = await measures.end(
            self.pool, person, request.path_params["measure_id"], await body_of(request)
        )
        log.info("measure.ended", actor=person.staff_id, measure=ended["measure_id"])
        return ended

    async def _customer_id(self, request: Request) -> str:
        given: str = request.path_params.get("customer_id", "")
        if given and given != admin.BY_ORDER:
            return given
        order = request.query_params.get("order", "")
        if not order:
            raise Failure("name the customer, or the order with ?order=", Exit.USAGE)
        return await admin.customer_of_order(self.pool, order)

    async def healthz(self, request: Request) -> Any:
        try:
            await self.pool.fetchval("SELECT 1")
        except asyncpg.PostgresError:  # refusing connections, out of them: not healthy either
            raise Failure("the database does not answer", Exit.UNREACHABLE) from None
        return {"ok": True}


def _known(acts: dict[str, Act], name: str, what: str) -> Act:
    act = acts.get(name)
    if act is None:
        raise Failure(f"no {what} {name!r}; known: {', '.join(sorted(acts))}", Exit.NOT_FOUND)
    return act


def _admin_routes(api: StaffApi) -> list[Route]:
    """People (R7.1), stock (R2.2.1) and stores, each change audited by its module."""
    people, stock, stores = admin_people, admin_stock, admin_stores
    return [
        Route("/admin/people", endpoint(api.administer(people.ADD, people.add)), methods=["POST"]),
        Route(
            "/admin/people/{staff_id}",
            endpoint(api.admin_read("see people", people.view, "staff_id")),
            methods=["GET"],
        ),
        Route(
            "/admin/people/{staff_id}",
            endpoint(api.administer(people.CHANGE, people.change, "staff_id")),
            methods=["POST"],
        ),
        Route(
            "/admin/people/{staff_id}/skills",
            endpoint(api.administer(people.SKILLS, people.set_skills, "staff_id")),
            methods=["PUT"],
        ),
        Route(
            "/admin/stores/{store}",
            endpoint(api.admin_read("see a store's terms", stores.view, "store")),
            methods=["GET"],
        ),
        Route(
            "/admin/stores/{store}/hours",
            endpoint(api.administer(stores.HOURS, stores.set_hours, "store")),
            methods=["PUT"],
        ),
        Route(
            "/admin/stores/{store}/terms",
            endpoint(api.administer(stores.TERMS, stores.set_terms, "store")),
            methods=["PUT"],
        ),
        Route(
            "/admin/stock/{store}",
            endpoint(api.admin_read("see stock", stock.lines, "store")),
            methods=["GET"],
        ),
        Route(
            "/admin/stock/{store}/{sku}/restock",
            endpoint(api.administer(stock.RESTOCK, stock.restock, "store", "sku")),
            methods=["POST"],
        ),
        Route(
            "/admin/stock/{store}/{sku}/count",
            endpoint(api.administer(stock.ADJUST, stock.adjust, "store", "sku")),
            methods=["POST"],
        ),
    ]


def create_app(
    client: Client, pool: asyncpg.Pool, *, timeout: timedelta | None = None
) -> Starlette:
    wait = timeout or timedelta(seconds=settings().api.temporal_timeout_s)
    address = client.service_client.config.target_host
    api = StaffApi(pool, Session(client, address, client.namespace, wait))
    routes = [
        Route("/healthz", endpoint(api.healthz), methods=["GET"]),
        Route("/me", endpoint(api.me), methods=["GET"]),
        Route("/orders", endpoint(api.orders), methods=["GET"]),
        Route("/orders/{order_id}", endpoint(api.order), methods=["GET"]),
        Route("/orders/{order_id}/sheet", endpoint(api.sheet), methods=["GET"]),
        Route("/orders/{order_id}/updates/{name}", endpoint(api.update), methods=["POST"]),
        Route("/orders/{order_id}/signals/{name}", endpoint(api.signal), methods=["POST"]),
        Route("/orders/{order_id}/anomaly/decide", endpoint(api.decide), methods=["POST"]),
        Route("/anomalies", endpoint(api.anomalies), methods=["GET"]),
        Route("/inbox", endpoint(api.inbox), methods=["GET"]),
        Route("/inbox/read", endpoint(api.mark_read), methods=["POST"]),
        Route("/my", endpoint(api.my_work), methods=["GET"]),
        Route("/admin/customers/{customer_id}", endpoint(api.customer), methods=["GET"]),
        Route("/admin/customers/{customer_id}/ban", endpoint(api.ban), methods=["POST"]),
        Route("/admin/customers/{customer_id}/lift", endpoint(api.lift), methods=["POST"]),
        Route("/measures", endpoint(api.measures), methods=["GET", "POST"]),
        Route("/measures/{measure_id}/end", endpoint(api.end_measure), methods=["POST"]),
        *_admin_routes(api),
    ]
    return Starlette(routes=routes)
