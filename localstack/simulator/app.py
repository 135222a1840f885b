"""HTTP face of the simulator: the merchant API under `/api/v1/` and the admin API under `/sim/`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localstack.simulator.engine import AdminError, Simulator
from localstack.simulator.merchant_api import API, ApiFailure
from meituan.client import SYSTEM_PARAMS
from meituan.pushes import PushDecodeError, parse_form


class JSON(JSONResponse):
    """UTF-8 JSON without escaping Chinese, as the platform answers."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=_plain)
        return text.encode("utf-8")


def _plain(value: Any) -> Any:
    # Money in admin answers stays exact, as text.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _signed_url(request: Request) -> str:
    url = request.url
    return f"{url.scheme}://{url.netloc}{url.path}"


def _api_endpoint(sim: Simulator, name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items()}
        if request.method == "POST":
            # The official SDK sends the system parameters in the query of a POST.
            missing = [p for p in SYSTEM_PARAMS if p not in params]
            if missing:
                msg = f"系统参数须在 URL 中: {', '.join(missing)}"
                return JSON({"data": "ng", "error": {"code": 701, "msg": msg}})
            # Parsed here rather than by `request.form()`, which needs python-multipart.
            try:
                params.update(parse_form(await request.body()))
            except PushDecodeError as exc:
                return JSON({"data": "ng", "error": {"code": 705, "msg": str(exc)}})
        try:
            data = await sim.handle(name, _signed_url(request), params)
        except ApiFailure as exc:
            return JSON({"data": "ng", "error": {"code": exc.code, "msg": exc.msg}})
        return JSON({"data": data})

    return endpoint


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise AdminError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise AdminError(400, "body must be a JSON object")
    return body


def _only(body: dict[str, Any], *allowed: str) -> dict[str, Any]:
    unknown = set(body) - set(allowed)
    if unknown:
        raise AdminError(400, f"unknown field(s) {sorted(unknown)}; allowed: {list(allowed)}")
    return body


def _order_id(request: Request) -> int:
    order_id: int = request.path_params["order_id"]
    return order_id


def create_app(sim: Simulator) -> Starlette:
    """The app serving `sim`; its lifespan starts and stops the simulator's background work."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.aclose()

    routes = [
        Route(f"/api/v1/{name}", _api_endpoint(sim, name), methods=[spec.method])
        for name, spec in API.items()
    ]
    return Starlette(
        routes=routes + _Admin(sim).routes(),
        lifespan=lifespan,
        exception_handlers={AdminError: _admin_error},
    )


async def _admin_error(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, AdminError) else 500
    return JSON({"error": str(exc)}, status_code=status)


class _Admin:
    """The admin API under `/sim/`: what tests and the demo do as the platform or its users."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/sim/health", self.health),
            Route("/sim/orders", self.list_orders, methods=["GET"]),
            Route("/sim/orders", self.create_order, methods=["POST"]),
            Route("/sim/orders/{order_id:int}", self.get_order),
            Route("/sim/orders/{order_id:int}/cancel", self.cancel_order, methods=["POST"]),
            Route("/sim/orders/{order_id:int}/refund", self.refund_order, methods=["POST"]),
            Route("/sim/orders/{order_id:int}/remind", self.remind_order, methods=["POST"]),
            Route("/sim/orders/{order_id:int}/deliver", self.deliver_order, methods=["POST"]),
            Route("/sim/orders/{order_id:int}/push", self.repush_order, methods=["POST"]),
            Route("/sim/faults", self.faults, methods=["GET", "POST"]),
            Route("/sim/pushes", self.pushes),
            Route("/sim/calls", self.calls),
            Route("/sim/probe", self.probe, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        sim = self.sim
        return JSON({"ok": True, "orders": len(sim.orders), "app_id": sim.config.app_id})

    async def list_orders(self, request: Request) -> Response:
        status = request.query_params.get("status")
        orders = [
            {k: v for k, v in o.view().items() if k not in ("calls", "pushes", "order")}
            for o in self.sim.orders.values()
            if status is None or str(o.status) == status
        ]
        return JSON({"orders": orders})

    async def create_order(self, request: Request) -> Response:
        body = await _body(request)
        push = bool(body.pop("push", True))
        anomaly = body.pop("anomaly", None)
        return JSON(self.sim.create_order(body, push=push, anomaly=anomaly).view())

    async def get_order(self, request: Request) -> Response:
        return JSON(self.sim.order(_order_id(request)).view())

    async def cancel_order(self, request: Request) -> Response:
        body = _only(await _body(request), "reason_code", "reason", "deal_op_type")
        sim_order = self.sim.user_cancel(_order_id(request), **body)
        return JSON(sim_order.view())

    async def refund_order(self, request: Request) -> Response:
        body = _only(await _body(request), "reason", "partial", "food", "notify_type")
        refund = self.sim.apply_refund(_order_id(request), **body)
        return JSON(refund.as_dict())

    async def remind_order(self, request: Request) -> Response:
        return JSON(self.sim.remind(_order_id(request)))

    async def deliver_order(self, request: Request) -> Response:
        body = _only(await _body(request), "logistics_status")
        try:
            sim_order = self.sim.courier_step(_order_id(request), body.get("logistics_status"))
        except ValueError as exc:
            raise AdminError(400, str(exc)) from exc
        return JSON(sim_order.view())

    async def repush_order(self, request: Request) -> Response:
        sim = self.sim
        return JSON(sim.push_order(sim.order(_order_id(request))).as_dict())

    async def faults(self, request: Request) -> Response:
        config = self.sim.config
        if request.method == "POST":
            try:
                config.faults.update(await _body(request))
            except (TypeError, ValueError) as exc:
                raise AdminError(400, str(exc)) from exc
        return JSON(config.faults.as_dict())

    async def pushes(self, request: Request) -> Response:
        return JSON({"pushes": [p.as_dict() for p in self.sim.pushes]})

    async def calls(self, request: Request) -> Response:
        return JSON({"calls": [c.as_dict() for c in self.sim.api_log]})

    async def probe(self, request: Request) -> Response:
        return JSON(await self.sim.probe())
