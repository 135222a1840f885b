"""The gateway behind a reverse proxy (R6.3.2, bounded): refused pushes are kept per client,
as the trusted proxy names it in X-Forwarded-For, and a client that is not behind it cannot
choose its address by sending the header itself."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
from starlette.applications import Starlette

from starter.gateway import GatewaySettings, connect_temporal, create_app
from starter.push_keeper import Bounds
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

PROXY = "10.203.14.2"
PER_SOURCE = 2
SETTINGS = GatewaySettings(
    refused=Bounds(max_rows=1_000, keep_days=30, per_source_per_minute=PER_SOURCE),
    trusted_proxies=(ipaddress.ip_network("10.203.14.0/24"),),
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(db_pool: asyncpg.Pool) -> AsyncIterator[Starlette]:
    # Pushes with a bad signature never reach Temporal: a client that never connects will do.
    client = await connect_temporal({"TEMPORAL_ADDRESS": "127.0.0.1:9"})
    app = create_app(client, db_pool, SETTINGS)
    async with app.router.lifespan_context(app):
        yield app


async def _forged(app: Starlette, peer: str, forwarded_for: str | None) -> None:
    transport = httpx.ASGITransport(app=app, client=(peer, 40_000))
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.post(
            "/meituan/push/order", data={"app_id": "x", "sig": "forged"}, headers=headers
        )
    assert response.json()["data"] == "ng"


async def test_refused_pushes_are_kept_per_client_behind_the_proxy(
    app: Starlette, db_pool: asyncpg.Pool
) -> None:
    for _ in range(3):
        await _forged(app, PROXY, "203.0.113.1")
        await _forged(app, PROXY, "198.51.100.99, 203.0.113.2")  # its own header, then ours
        await _forged(app, "192.0.2.50", "203.0.113.3")  # not the proxy: the header is its own
    kept = Counter(r["source"] for r in await db_pool.fetch("SELECT source FROM rejected_pushes"))
    # Each client has its own allowance: behind one proxy, they would have shared one.
    assert kept == {"203.0.113.1": PER_SOURCE, "203.0.113.2": PER_SOURCE, "192.0.2.50": PER_SOURCE}


def test_the_gateway_trusts_the_proxies_the_environment_names() -> None:
    configured = GatewaySettings.from_env({"ORDERFLOW_TRUSTED_PROXIES": "10.203.14.0/24"})
    assert configured.trusted_proxies == SETTINGS.trusted_proxies
    assert GatewaySettings.from_env({}).trusted_proxies == ()  # none by default


async def test_the_counts_are_not_served_through_the_proxy(app: Starlette) -> None:
    """Prometheus asks the gateway itself; through the proxy the path is the public's."""
    await _forged(app, "192.0.2.50", None)
    for peer, status in ((PROXY, 404), ("172.18.0.9", 200)):
        transport = httpx.ASGITransport(app=app, client=(peer, 40_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            response = await http.get("/metrics")
        assert response.status_code == status, peer
    assert 'orderflow_gateway_pushes_refused_total{kind="order",code="' in response.text
