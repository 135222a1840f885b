"""Who may use the codec server: the service token encodes and decodes; a person signs in with
their own token and decodes only if their role reads every order; nobody else. Each request is
logged with who made it, and a caller over its rate is refused."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from infra.codec import EncryptionCodec, new_key
from schemas.people import Person
from starter.api import tokens
from starter.codec_server import admitting, create_app
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVICE = "service-token-for-the-proxy"
UI = "http://localhost:8233"
CODEC = EncryptionCodec([new_key("k1")])
PER_MINUTE = 5


@pytest_asyncio.fixture(loop_scope="session")
async def codec(demo_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async def person(token: str) -> Person:
        return await tokens.person_for(demo_pool, token)

    app = create_app(
        CODEC,
        admit=admitting(SERVICE, person),
        origins=[UI],
        per_minute=PER_MINUTE,
        clock=lambda: 0.0,  # one minute throughout: the counts never start over mid-test
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as client:
        yield client


async def call(http: httpx.AsyncClient, path: str, token: str | None) -> httpx.Response:
    sealed = await CODEC.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    headers = {"Origin": UI, "X-Namespace": "default", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post(path, content=body, headers=headers)


async def test_an_admin_decodes_and_is_on_record(
    codec: httpx.AsyncClient, demo_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await tokens.issue(demo_pool, "A-901")
    with caplog.at_level(logging.INFO, logger="orderflow.codec_server"):
        decoded = await call(codec, "/decode", admin)
    assert decoded.status_code == 200, decoded.text
    assert "codec decode by A-901: 1 payload(s), namespace default" in caplog.text
    assert admin not in caplog.text
    encoded = await call(codec, "/encode", admin)
    assert (encoded.status_code, encoded.json()["error"]) == (
        403,
        "encoding is for the services, not people",
    )


async def test_a_person_who_reads_only_some_orders_may_not_decode(
    codec: httpx.AsyncClient, demo_pool: asyncpg.Pool
) -> None:
    staff = await tokens.issue(demo_pool, "S-101")
    refused = await call(codec, "/decode", staff)
    assert refused.status_code == 403
    assert "S-101 (staff) may not read every order" in refused.json()["error"]
    admin = await tokens.issue(demo_pool, "A-901")
    await tokens.revoke(demo_pool, "A-901")
    for token in (admin, "oft_not-a-token", None):
        assert (await call(codec, "/decode", token)).status_code == 401


async def test_the_service_encodes_and_every_caller_has_a_rate(codec: httpx.AsyncClient) -> None:
    answers = [(await call(codec, "/encode", SERVICE)).status_code for _ in range(PER_MINUTE + 2)]
    assert answers[:PER_MINUTE] == [200] * PER_MINUTE
    assert answers[PER_MINUTE:] == [429, 429]


async def sign_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        "/signin",
        content=f"token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def decode_as_browser(
    http: httpx.AsyncClient, kept: str, origin: str | None = UI
) -> httpx.Response:
    """What the Web UI's fetch sends with "Include cross-origin credentials" on."""
    sealed = await CODEC.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    headers = {"Content-Type": "application/json", "Cookie": f"orderflow_codec={kept}"}
    if origin is not None:
        headers["Origin"] = origin
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    return await http.post("/decode", content=body, headers=headers)


async def test_an_admin_signs_in_from_a_browser_and_the_ui_decodes_with_the_cookie(
    codec: httpx.AsyncClient, demo_pool: asyncpg.Pool
) -> None:
    admin = await tokens.issue(demo_pool, "A-901")
    signed_in = await sign_in(codec, admin)
    assert signed_in.status_code == 200, signed_in.text
    assert "Signed in as A-901" in signed_in.text
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"orderflow_codec={admin};")
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Max-Age=43200", "Path=/"):
        assert attribute in cookie, (attribute, cookie)
    assert (await decode_as_browser(codec, admin)).status_code == 200
    # A request that no page of the UI made (no Origin) is not let in by the cookie.
    assert (await decode_as_browser(codec, admin, origin=None)).status_code == 401
    await tokens.revoke(demo_pool, "A-901")
    assert (await decode_as_browser(codec, admin)).status_code == 401  # the session ends


async def test_only_a_person_allowed_to_decode_may_sign_in(
    codec: httpx.AsyncClient, demo_pool: asyncpg.Pool
) -> None:
    staff = await tokens.issue(demo_pool, "S-101")
    refused = await sign_in(codec, staff)
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers
    assert "S-101 (staff) may not read every order" in refused.text
    service = await sign_in(codec, SERVICE)
    assert service.status_code == 403
    assert "not the service" in service.text
    assert (await sign_in(codec, "oft_not-a-token")).status_code == 401
    signed_out = await codec.post("/signout")
    assert 'orderflow_codec=""' in signed_out.headers["set-cookie"]
    assert "Max-Age=0" in signed_out.headers["set-cookie"]
