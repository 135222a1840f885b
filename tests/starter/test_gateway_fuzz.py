"""The gateway's intake under attack or garbage (R6.3.1, R6.3.2): replays and oversized pushes
are refused and kept, the app secret shows nowhere, and no request of any shape makes it fail.

Against a real Temporal dev server, the simulator and PostgreSQL, like
tests/starter/test_gateway.py; the fuzz is property-based (hypothesis), bounded per route.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from localstack.simulator import RunningSimulator, SimConfig, serve_simulator
from meituan.models import CancelPush, RefundStatusPush
from meituan.pushes import (
    PUSH_MODELS,
    PushKind,
    encode_push,
    push_values,
    second_encoding,
)
from meituan.signing import SIG, sign
from starter.gateway import STORED_BODY_BYTES, GatewaySettings, create_app
from starter.push_keeper import Bounds
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

SECRET = "s3cr3t-for-the-fuzz-4d1f"
SETTINGS = GatewaySettings(app_secret=SECRET)
# small: cheap oversized bodies; every refusal kept, however many come from the test's address
FUZZ = GatewaySettings(
    app_secret=SECRET,
    max_body_bytes=2048,
    refused=Bounds(max_rows=10**6, keep_days=30, per_source_per_minute=10**6),
)
EXAMPLES = 100


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(
        push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=7, secret=SECRET
    )
    async with serve_simulator(config) as served:
        yield served


async def _client(
    dev_server: WorkflowEnvironment,
    running: RunningSimulator,
    pool: asyncpg.Pool,
    gateway: GatewaySettings,
) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as meituan:
        app = create_app(dev_server.client, pool, gateway, meituan=meituan)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(
    dev_server: WorkflowEnvironment, running: RunningSimulator, db_pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(dev_server, running, db_pool, SETTINGS):
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_http(
    dev_server: WorkflowEnvironment, running: RunningSimulator, db_pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(dev_server, running, db_pool, FUZZ):
        yield client


# --- signing, as the platform does it, with any values ------------------------------------------


def signed(
    kind: PushKind,
    values: Mapping[str, str],
    *,
    timestamp: int | None,
    settings: GatewaySettings = SETTINGS,
    app_id: str | None = None,
) -> dict[str, str]:
    """A form signed with our secret for our URL; `timestamp` None leaves it out."""
    url = settings.push_url(kind)
    fields = {k: v for k, v in values.items() if k not in (SIG, "timestamp", "app_id")}
    fields["app_id"] = settings.app_id if app_id is None else app_id
    if timestamp is not None:
        fields["timestamp"] = str(timestamp)
    fields[SIG] = sign(url, fields, settings.app_secret)
    return second_encoding(fields)


def now() -> int:
    return int(time.time())


async def rows_of(pool: asyncpg.Pool, marker: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM rejected_pushes WHERE headers->>'x-test-id' = $1 ORDER BY push_id", marker
    )


async def post(
    http: httpx.AsyncClient,
    kind: PushKind,
    fields: Mapping[str, str],
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> tuple[httpx.Response, str]:
    marker = uuid.uuid4().hex
    sent = {"x-test-id": marker, **(headers or {})}
    path = f"/meituan/push/{kind.value}"
    if method == "GET":
        return await http.get(path, params=dict(fields), headers=sent), marker
    return await http.post(path, data=dict(fields), headers=sent), marker


# --- replay protection ----------------------------------------------------------------------------


def refund_status() -> dict[str, str]:
    status = RefundStatusPush(
        refund_id=uuid.uuid4().int % 10**12, refund_status=3, money=Decimal("9.50")
    )
    return push_values(status)


async def test_a_replayed_push_is_refused_and_kept(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    stale = signed(PushKind.REFUND_STATUS, refund_status(), timestamp=now() - 601)
    response, marker = await post(http, PushKind.REFUND_STATUS, stale)
    assert response.status_code == 400
    body = response.json()
    assert body["data"] == "ng" and body["error"]["code"] == 705
    assert "replay" in body["error"]["msg"] and "600" in body["error"]["msg"]
    [row] = await rows_of(db_pool, marker)
    assert "old" in row["reason"] and "replay" in row["reason"]
    assert row["raw_body"] == urlencode(stale)

    ahead = signed(PushKind.REFUND_STATUS, refund_status(), timestamp=now() + 120)
    response, marker = await post(http, PushKind.REFUND_STATUS, ahead, method="GET")
    assert (response.status_code, response.json()["error"]["code"]) == (400, 705)
    [row] = await rows_of(db_pool, marker)
    assert "future" in row["reason"] and row["method"] == "GET"

    unstamped = signed(PushKind.REFUND_STATUS, refund_status(), timestamp=None)
    response, marker = await post(http, PushKind.REFUND_STATUS, unstamped)
    assert (response.status_code, response.json()["error"]["code"]) == (400, 701)
    assert "timestamp" in (await rows_of(db_pool, marker))[0]["reason"]


async def test_a_push_nested_too_deep_is_refused_and_kept(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    """A signed push whose JSON field nests 5,000 deep: a clear refusal, kept, not a 500."""
    values = valid_values(PushKind.PARTIAL_REFUND, str(uuid.uuid4().int % 10**15))
    values["food"] = "[" * 5000 + "]" * 5000
    response, marker = await post(
        http, PushKind.PARTIAL_REFUND, signed(PushKind.PARTIAL_REFUND, values, timestamp=now())
    )
    assert response.status_code == 400 and response.json()["data"] == "ng"
    assert "nested too deeply" in response.json()["error"]["msg"]
    [row] = await rows_of(db_pool, marker)
    assert "nested too deeply" in row["reason"]


async def test_a_push_inside_the_window_is_taken(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    for stamp in (now() - 590, now() + 30, now()):
        fields = signed(PushKind.REFUND_STATUS, refund_status(), timestamp=stamp)
        response, marker = await post(http, PushKind.REFUND_STATUS, fields)
        assert response.json() == {"data": "ok"}, response.text
        [row] = await rows_of(db_pool, marker)
        assert row["reason"].startswith("accepted and recorded")


async def test_the_window_is_configurable_and_can_be_off(
    dev_server: WorkflowEnvironment, running: RunningSimulator, db_pool: asyncpg.Pool
) -> None:
    env = {"ORDERFLOW_PUSH_MAX_AGE_SECONDS": "30", "ORDERFLOW_PUSH_MAX_BYTES": "1000"}
    configured = GatewaySettings.from_env(env)
    assert (configured.push_max_age_s, configured.max_body_bytes) == (30.0, 1000)
    defaults = GatewaySettings.from_env({})
    assert (defaults.push_max_age_s, defaults.push_max_future_s) == (600.0, 60.0)
    assert defaults.max_body_bytes == 64 * 1024
    off = GatewaySettings(app_secret=SECRET, push_max_age_s=0)
    async for client in _client(dev_server, running, db_pool, off):
        old = signed(PushKind.REFUND_STATUS, refund_status(), timestamp=now() - 86_400)
        response, _ = await post(client, PushKind.REFUND_STATUS, old)
        assert response.json() == {"data": "ok"}


# --- size limit -----------------------------------------------------------------------------------


async def test_an_oversized_push_is_refused_with_413_and_kept_truncated(
    http: httpx.AsyncClient, fuzz_http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    limit = SETTINGS.max_body_bytes
    marker = uuid.uuid4().hex
    body = b"order_id=1&detail=" + b"x" * limit
    response = await http.post(
        "/meituan/push/order",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded", "x-test-id": marker},
    )
    assert response.status_code == 413
    assert response.json()["data"] == "ng" and response.json()["error"]["code"] == 705
    [row] = await rows_of(db_pool, marker)
    assert str(limit) in row["reason"]
    # Unread, so unsigned: what was read is kept as a hash, not as text.
    assert row["raw_body"] == "" and row["body_sha256"] is not None

    # Sent in pieces without a length: read only up to the limit, then refused the same way.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 4096

    marker = uuid.uuid4().hex
    response = await http.post(
        "/meituan/push/logistics", content=chunks(), headers={"x-test-id": marker}
    )
    assert response.status_code == 413
    [row] = await rows_of(db_pool, marker)
    assert row["raw_body"] == "" and row["body_sha256"] is not None

    # A query over the limit (a smaller limit here: HTTP clients and servers cap URLs).
    marker = uuid.uuid4().hex
    response = await fuzz_http.get(
        "/meituan/push/cancel",
        params={"order_id": "1", "reason": "z" * 3 * STORED_BODY_BYTES},
        headers={"x-test-id": marker},
    )
    assert response.status_code == 413
    [row] = await rows_of(db_pool, marker)
    assert "query" in row["reason"] and row["query"] == ""

    # At the limit exactly, a push is read (and here refused for its signature, not its size).
    at_limit = b"order_id=1&x=" + b"x" * (limit - len(b"order_id=1&x="))
    response = await http.post(
        "/meituan/push/order",
        content=at_limit,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, 703)


# --- the app secret -------------------------------------------------------------------------------


async def test_the_app_secret_is_never_logged_stored_or_echoed(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    assert SECRET not in repr(SETTINGS)
    cancel = push_values(CancelPush(order_id=1, reason_code=1101))
    # Signed correctly, but for an "app" whose id is the secret: the refusal quotes the id.
    quoting = signed(PushKind.CANCEL, cancel, timestamp=now(), app_id=SECRET)
    headers = {
        "Authorization": f"Bearer {SECRET}",
        "X-Meituan-Secret": SECRET,
        "X-Echo": f"value {SECRET}",
        "Cookie": f"s={SECRET}",
        "X-Forwarded-For": "10.1.2.3",
    }
    with caplog.at_level(logging.DEBUG):
        response, marker = await post(http, PushKind.CANCEL, quoting, headers=headers)
        bad_sig, marker2 = await post(
            http, PushKind.CANCEL, {**quoting, SIG: "0" * 32}, headers=headers
        )
    assert response.status_code == 400 and response.json()["error"]["code"] == 702
    assert bad_sig.status_code == 400
    for answer in (response, bad_sig):
        assert SECRET not in answer.text
    assert "[secret]" in response.json()["error"]["msg"]
    assert SECRET not in caplog.text
    assert any("push refused" in r.getMessage() for r in caplog.records)
    for row in [*await rows_of(db_pool, marker), *await rows_of(db_pool, marker2)]:
        assert SECRET not in row["reason"]
        stored = {k.lower(): v for k, v in row["headers"].items()}
        assert SECRET not in str(stored)
        assert stored["x-forwarded-for"] == "10.1.2.3"
        assert not {"authorization", "cookie", "x-meituan-secret", "x-echo"} & stored.keys()


# --- the fuzz -------------------------------------------------------------------------------------

PUSH_METHODS = ["GET", "POST"] * 4 + ["HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
CONTENT_TYPES = [
    None,
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=gbk",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
]
ODD_VALUES = [
    "",
    "0",
    "-1",
    "1e400",
    "NaN",
    "[]",
    "{}",
    "[{}]",
    "null",
    "%",
    "%E4%B8",
    "%00",
    "\x00",
    "9" * 40,
    "apply",
    "1101",
    "13812345678_1234",
]


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str | None = None


values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**18), max_value=10**18).map(str),
    st.sampled_from(ODD_VALUES),
)
free_forms = st.dictionaries(st.text(max_size=12), values, max_size=6)


def valid_values(kind: PushKind, order_id: str) -> dict[str, str]:
    """A well-formed push of `kind` for `order_id` (before mutation)."""
    refund = {"order_id": order_id, "refund_id": "77", "notify_type": "apply", "reason": "少了"}
    food = '[{"app_food_code":"G-HSR","count":1,"refund_price":48.0}]'
    return {
        PushKind.CANCEL: {"order_id": order_id, "reason_code": "1101", "reason": "不要了"},
        PushKind.REFUND: refund,
        PushKind.PARTIAL_REFUND: {**refund, "food": food, "money": "48.0"},
        PushKind.REFUND_STATUS: {"refund_id": "77", "refund_status": "3", "money": "9.5"},
        PushKind.LOGISTICS: {"order_id": order_id, "logistics_status": "20", "time": "1"},
        PushKind.REMIND: {"order_id": order_id, "remind_id": "5"},
    }.get(kind, {})


@st.composite
def push_requests(draw: st.DrawFn, kind: PushKind, orders: list[dict[str, str]]) -> Sent:
    method = draw(st.sampled_from(PUSH_METHODS))
    sent = Sent(method=method, path=f"/meituan/push/{kind.value}")
    sent.content_type = draw(st.sampled_from(CONTENT_TYPES))
    shape = draw(st.sampled_from(["empty", "bytes", "form", "oversized", *["signed"] * 4]))
    form: dict[str, str] = {}
    if shape == "bytes":
        sent.body = draw(st.binary(max_size=400))
    elif shape == "form":
        form = draw(free_forms)
    elif shape == "signed":
        # A well-formed push (a real order, or another kind for a real or unknown order) with
        # a few values replaced, signed: past the signature into decoding, the window,
        # Temporal and the platform.
        order = draw(st.sampled_from(orders))
        if kind is PushKind.ORDER:
            base = order
        else:
            order_id = draw(st.sampled_from([order["order_id"], "4242424242", "0"]))
            base = valid_values(kind, order_id)
        names = sorted(PUSH_MODELS[kind].model_fields)
        changes = draw(
            st.dictionaries(st.sampled_from(names) | st.text(max_size=8), values, max_size=3)
        )
        stamp = draw(
            st.one_of(
                st.just(now()),
                st.just(now()),
                st.none(),
                st.integers(min_value=0, max_value=2**40),
                st.sampled_from([now() - 601, now() + 61, now() - 599]),
            )
        )
        form = signed(kind, {**base, **changes}, timestamp=stamp, settings=FUZZ)
    elif shape == "oversized":
        size = draw(st.integers(FUZZ.max_body_bytes - 20, FUZZ.max_body_bytes + 3000))
        sent.body = b"order_id=1&caution=" + b"9" * size
    if form:
        if method in ("GET", "HEAD") or draw(st.booleans()):
            sent.params = form
        else:
            sent.body = urlencode(form).encode()
    if draw(st.integers(0, 3)) == 0:
        sent.params = {**sent.params, **draw(free_forms)}
    return sent


other_requests = st.builds(
    Sent,
    method=st.sampled_from(PUSH_METHODS),
    path=st.one_of(
        st.just("/healthz"),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz-/%.", max_size=20).map(
            lambda s: f"/meituan/push/{s}"
        ),
    ),
    params=free_forms,
    body=st.binary(max_size=200),
    content_type=st.sampled_from(CONTENT_TYPES),
)


async def exercise(http: httpx.AsyncClient, pool: asyncpg.Pool, sent: Sent) -> None:
    """One request; the properties every answer must have."""
    marker = uuid.uuid4().hex
    headers = {"x-test-id": marker}
    if sent.content_type is not None:
        headers["content-type"] = sent.content_type
    response = await http.request(
        sent.method, sent.path, params=sent.params, content=sent.body, headers=headers
    )
    status = response.status_code
    assert status < 500 or status == 503, (status, response.text)
    kinds = {f"/meituan/push/{k.value}" for k in PushKind}
    if sent.path not in kinds:
        if sent.path == "/healthz" and sent.method in ("GET", "HEAD"):
            assert status in (200, 503)
        else:
            assert status in (404, 405), (sent, status)
        return
    if sent.method not in ("GET", "POST", "HEAD"):
        assert status == 405
        assert await rows_of(pool, marker) == []
        return
    if sent.method == "HEAD":
        refused = status != 200
    else:
        answer = response.json()
        assert answer["data"] in ("ok", "ng"), answer
        refused = answer["data"] == "ng"
        if refused:
            assert isinstance(answer["error"]["code"], int) and answer["error"]["msg"]
        else:
            assert status == 200
    assert status in (200, 400, 413, 503), (status, response.text)
    if refused:
        rows = await rows_of(pool, marker)
        assert len(rows) == 1, (sent, status, response.text)
        assert rows[0]["reason"].strip()
        assert rows[0]["route"] == sent.path and rows[0]["method"] == sent.method
        if rows[0]["raw_body"] == "" and sent.body:  # unsigned: a hash, not the body
            assert rows[0]["body_sha256"] is not None
    assert SECRET not in response.text


def run_fuzz(
    loop: asyncio.AbstractEventLoop,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    requests: st.SearchStrategy[Sent],
) -> None:
    """Hypothesis drives from this thread; every request runs on the test's event loop."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(sent=requests)
    def check(sent: Sent) -> None:
        asyncio.run_coroutine_threadsafe(exercise(http, pool, sent), loop).result(timeout=60)

    check()


@pytest.mark.parametrize("kind", list(PushKind), ids=lambda k: k.value)
async def test_fuzz_push_routes_never_fail_and_keep_every_refusal(
    kind: PushKind,
    fuzz_http: httpx.AsyncClient,
    db_pool: asyncpg.Pool,
    running: RunningSimulator,
) -> None:
    orders = [push_values(running.sim.create_order({}, push=False).current()) for _ in range(3)]
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(run_fuzz, loop, fuzz_http, db_pool, push_requests(kind, orders))


async def test_fuzz_other_routes_never_fail(
    fuzz_http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(run_fuzz, loop, fuzz_http, db_pool, other_requests)


def test_signed_helper_matches_the_platforms_encoding() -> None:
    push = CancelPush(order_id=7, reason_code=1101, reason="不要了 100%")
    stamp = now()
    expected = encode_push(
        PushKind.CANCEL,
        push,
        url=SETTINGS.push_url(PushKind.CANCEL),
        app_id=SETTINGS.app_id,
        secret=SECRET,
        timestamp=stamp,
    )
    assert signed(PushKind.CANCEL, push_values(push), timestamp=stamp) == expected
