"""The staff API while PostgreSQL is away (a restart, a network cut): every route answers 503
with the reason and the exit code orderctl uses, never a 500 with a traceback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from starter.api.app import create_app
from starter.failures import Exit


def _closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    pool = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{_closed_port()}/none", min_size=0, timeout=2
    )
    client = await Client.connect("127.0.0.1:1", lazy=True)
    app = create_app(client, pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await pool.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/me"),
        ("GET", "/orders"),
        ("GET", "/orders/27000000000000001"),
        ("GET", "/anomalies"),
        ("POST", "/orders/27000000000000001/updates/mark_ready"),
    ],
)
async def test_every_route_answers_503_while_the_database_is_away(
    api: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await api.request(
        method, path, headers={"Authorization": "Bearer oft_" + "x" * 43}, json={}
    )
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == Exit.UNREACHABLE and "database does not answer" in body["error"]
