"""Payload encryption: what Temporal stores of an order is ciphertext, readable only with the
keys (the workers' codec, or the codec server the Web UI asks)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import load_policy
from infra import temporal as temporal_client
from infra.codec import (
    BOUND_TO,
    ENCODING,
    METADATA_BOUND,
    METADATA_ENCODING,
    METADATA_KEY_ID,
    NONCE_BYTES,
    CodecConfigError,
    CodecError,
    CodecKey,
    EncryptionCodec,
    UnknownKeyError,
    build_converter,
    codec_from_env,
    new_key,
    parse_keys,
)
from schemas.messages import MarkDelivered, MarkReady
from schemas.order import OrderInput, Stage
from starter.codec_server import create_app
from tests import jitter
from tests.conftest import TASK_QUEUE, register_search_attributes
from tests.doubles import Business
from tests.orders import Handle, at_stage, platform_order, start
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

# What tests.orders puts in every order.
PHONE, NAME, ADDRESS = "13812345678", "陆(先生)", "上海市徐汇区漕溪北路100号"
KEY = new_key("k1")
TOKEN = "codec-test-token"
UI = "http://localhost:8233"


def order_input() -> OrderInput:
    return OrderInput(order=platform_order("4242", "SH-XH-001", datetime(2030, 1, 1, tzinfo=UTC)))


def plaintext_of(document: Any) -> str:
    """Every string of a JSON document, and what each base64 string decodes to: history JSON
    carries payload bytes in base64, so plaintext there would not show in the JSON itself."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found.append(str(key))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.append(node)
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(base64.b64decode(node, validate=True).decode("utf-8", "ignore"))

    walk(document)
    return "\n".join(found)


def payloads_in(document: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, payload JSON) of every payload in a history JSON document."""
    if isinstance(document, dict):
        if "metadata" in document and "encoding" in document["metadata"]:
            yield path, document
            return
        for key, value in document.items():
            yield from payloads_in(value, (*path, key))
    elif isinstance(document, list):
        for value in document:
            yield from payloads_in(value, path)


def encoding_of(payload: Any) -> bytes:
    return base64.b64decode(payload["metadata"]["encoding"])


# --- the codec ----------------------------------------------------------------------------------


async def test_round_trip_hides_the_customer() -> None:
    converter = build_converter([KEY])
    inp = order_input()
    [payload] = await converter.encode([inp])
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[METADATA_KEY_ID] == b"k1"
    for secret in (PHONE, NAME, ADDRESS):
        assert secret.encode() not in payload.data
    [back] = await converter.decode([payload], [OrderInput])
    assert back == inp
    # Two encryptions of one value differ (a fresh nonce each time).
    [again] = await converter.encode([inp])
    assert again.data != payload.data


async def test_rotation_new_key_encrypts_old_keys_still_decrypt() -> None:
    old, new = new_key("2030-01"), new_key("2030-02")
    before = EncryptionCodec([old])
    [sealed_old] = await before.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    rotated = EncryptionCodec([new, old])
    [opened] = await rotated.decode([sealed_old])
    assert opened.data == b"1"
    [sealed_new] = await rotated.encode([opened])
    assert sealed_new.metadata[METADATA_KEY_ID] == b"2030-02"
    assert (await rotated.decode([sealed_new]))[0].data == b"1"
    # A process still on the old key list cannot read what the new key wrote, and says why.
    with pytest.raises(UnknownKeyError, match=r"key id '2030-02'.*not configured"):
        await before.decode([sealed_new])


async def test_unknown_key_id_tampering_and_plaintext() -> None:
    codec = EncryptionCodec([KEY])
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    stranger = EncryptionCodec([new_key("other")])
    with pytest.raises(UnknownKeyError) as caught:
        await stranger.decode([sealed])
    assert "'k1'" in str(caught.value) and "ORDERFLOW_CODEC_KEYS" in str(caught.value)
    impostor = EncryptionCodec([new_key("k1")])  # the same id, other key material
    with pytest.raises(CodecError, match="failed authentication"):
        await impostor.decode([sealed])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([altered])
    # Payloads written before the codec was turned on still read.
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    assert (await codec.decode([plain]))[0] == plain


async def test_a_payload_is_bound_to_its_key_id_and_namespace() -> None:
    """The key id and the namespace are sealed with the payload: moved to another namespace,
    relabelled or stripped of its binding, it does not open; one sealed before still does."""
    orders = EncryptionCodec([KEY], namespace="orders")
    [sealed] = await orders.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    assert sealed.metadata[METADATA_BOUND] == BOUND_TO
    assert (await EncryptionCodec([KEY], namespace="orders").decode([sealed]))[0].data == b"1"
    with pytest.raises(CodecError, match="another namespace than 'staging'"):
        await EncryptionCodec([KEY], namespace="staging").decode([sealed])
    relabelled = EncryptionCodec([KEY, CodecKey("k2", KEY.key)], namespace="orders")
    moved = Payload()
    moved.CopyFrom(sealed)
    moved.metadata[METADATA_KEY_ID] = b"k2"  # the same material under another id
    with pytest.raises(CodecError, match="failed authentication"):
        await relabelled.decode([moved])
    stripped = Payload()
    stripped.CopyFrom(sealed)
    del stripped.metadata[METADATA_BOUND]
    with pytest.raises(CodecError, match="failed authentication"):
        await orders.decode([stripped])
    # Sealed before the binding (no associated data, no metadata): still read.
    nonce = b"\x00" * NONCE_BYTES
    before = AESGCM(KEY.key).encrypt(nonce, Payload(data=b"old").SerializeToString(), None)
    old = Payload(
        metadata={METADATA_ENCODING: ENCODING, METADATA_KEY_ID: b"k1"}, data=nonce + before
    )
    assert (await orders.decode([old]))[0].data == b"old"
    # During a rolling upgrade (ORDERFLOW_CODEC_BIND=0) payloads are sealed as before, for the
    # processes of the release before to read; this release reads both.
    [unbound] = await EncryptionCodec([KEY], "orders", bind=False).encode([Payload(data=b"2")])
    assert METADATA_BOUND not in unbound.metadata
    assert (await orders.decode([unbound]))[0].data == b"2"
    bound = codec_from_env({"ORDERFLOW_CODEC_KEYS": KEY.spec()}, namespace="orders")
    assert bound is not None and (await bound.decode([sealed]))[0].data == b"1"
    rolling = {"ORDERFLOW_CODEC_KEYS": KEY.spec(), "ORDERFLOW_CODEC_BIND": "0"}
    unbound_too = codec_from_env(rolling)
    assert unbound_too is not None
    [plain_old_style] = await unbound_too.encode([Payload(data=b"3")])
    assert METADATA_BOUND not in plain_old_style.metadata


async def test_failure_messages_are_encrypted_too() -> None:
    """Error texts quote values (a validation error, a driver's duplicate key): the failures
    Temporal keeps must not show them; an SDK client reads them back."""
    converter = build_converter([KEY])
    error = ApplicationError(f"duplicate key: customer_phone={PHONE}_1234 for {NAME}")
    failure = Failure()
    await converter.encode_failure(error, failure)
    stored = json_format.MessageToJson(failure)
    assert failure.message == "Encoded failure"
    assert PHONE not in plaintext_of(json.loads(stored)) and NAME not in stored
    back = await converter.decode_failure(failure)
    assert PHONE in str(back) and NAME in str(back)


def test_key_list_parsing_never_quotes_key_material() -> None:
    a, b = new_key("a"), new_key("b")
    keys = parse_keys(f" {a.spec()} , {b.spec()},")
    assert [k.key_id for k in keys] == ["a", "b"] and keys[0].key == a.key
    urlsafe = base64.urlsafe_b64encode(a.key).decode().rstrip("=")
    assert parse_keys(f"u:{urlsafe}")[0].key == a.key
    short = base64.b64encode(b"x" * 16).decode()
    bad = {
        f"s:{short}": "16 bytes",
        "n:not*base64": "not valid base64",
        f"{a.spec()},{a.spec()}": "appears twice",
        "nokey": "id:base64key",
        f"bad id:{base64.b64encode(a.key).decode()}": "key id",
        f"{base64.b64encode(a.key).decode()}:a": "key id",  # the wrong way round
    }
    for spec, message in bad.items():
        with pytest.raises(CodecConfigError, match=message) as caught:
            parse_keys(spec)
        assert base64.b64encode(a.key).decode() not in str(caught.value)
        assert short not in str(caught.value)
    assert "key=" not in repr(a) and base64.b64encode(a.key).decode() not in repr(a)
    assert codec_from_env({}) is None and codec_from_env({"ORDERFLOW_CODEC_KEYS": " "}) is None


def test_converter_from_the_environment_says_which(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="orderflow.codec"):
        plain = temporal_client.data_converter({})
        encrypting = temporal_client.data_converter({"ORDERFLOW_CODEC_KEYS": KEY.spec()})
    assert plain is pydantic_data_converter
    assert isinstance(encrypting.payload_codec, EncryptionCodec)
    assert encrypting.payload_converter_class is pydantic_data_converter.payload_converter_class
    messages = [r.getMessage() for r in caplog.records]
    assert any("payload codec off" in m and "plaintext" in m for m in messages)
    assert any("payload codec on" in m and "'k1'" in m for m in messages)
    assert not any(base64.b64encode(KEY.key).decode() in m for m in messages)
    with pytest.raises(CodecConfigError):
        temporal_client.data_converter({"ORDERFLOW_CODEC_KEYS": "k:short"})


# --- a whole order on a server whose client encrypts ----------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def codec_env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=build_converter([KEY]),
    )
    await register_search_attributes(environment.client)
    async with environment:
        yield environment


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def completed(codec_env: WorkflowEnvironment) -> AsyncIterator[Handle]:
    """One goods order run to its close, through every stage."""
    business = Business()
    async with Worker(
        codec_env.client,
        task_queue=TASK_QUEUE,
        workflows=[OrderWorkflow, AnomalyWorkflow, PatrolWorkflow],
        activities=[*business.activities(), load_policy],
        interceptors=jitter.interceptors(),
    ):
        handle = await start(codec_env, str(uuid.uuid4().int % 10**15))
        await at_stage(handle, Stage.IN_PROGRESS)
        await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
        await at_stage(handle, Stage.DELIVERING)
        await handle.execute_update(
            OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="photo://door")
        )
        outcome = await handle.result()
        assert outcome.stage is Stage.CLOSED
        yield handle


async def history_document(handle: Handle) -> Any:
    return json.loads((await handle.fetch_history()).to_json())


async def test_connect_client_encrypts_when_keys_are_set(codec_env: WorkflowEnvironment) -> None:
    target = codec_env.client.service_client.config.target_host
    client = await temporal_client.connect_client(
        {"TEMPORAL_ADDRESS": target, "ORDERFLOW_CODEC_KEYS": KEY.spec()}
    )
    assert isinstance(client.data_converter.payload_codec, EncryptionCodec)
    plain = await temporal_client.connect_client({"TEMPORAL_ADDRESS": target})
    assert plain.data_converter is pydantic_data_converter


async def test_a_completed_orders_history_holds_no_customer_data(completed: Handle) -> None:
    document = await history_document(completed)
    text = plaintext_of(document)
    for secret in (PHONE, NAME, ADDRESS):
        assert secret not in text
    # Every payload is encrypted but the search attributes (the server indexes them) and the
    # SDK's own markers (patch ids, written by the SDK core).
    payloads = list(payloads_in(document))
    encrypted = [p for path, p in payloads if encoding_of(p) == ENCODING]
    others = [path for path, p in payloads if encoding_of(p) != ENCODING]
    assert len(encrypted) > 20
    sdk_owned = ("searchAttributes", "markerRecordedEventAttributes")
    assert all(any(part in path for part in sdk_owned) for path in others), others

    # The check is not blind: the same order unencrypted shows all three.
    plain = await pydantic_data_converter.encode([order_input()])
    control = plaintext_of(json.loads(json_format.MessageToJson(Payloads(payloads=plain))))
    assert PHONE in control and NAME in control and ADDRESS in control
    # And the keys read it back.
    [started] = await build_converter([KEY]).decode([_payload(encrypted[0])], [OrderInput])
    assert started.order.customer.phone.startswith(PHONE)


def _payload(document: Any) -> Payload:
    return json_format.ParseDict(document, Payload())


# --- the codec server -----------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def codec_http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(EncryptionCodec([KEY]), token=TOKEN, origins=[UI])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as client:
        yield client


def _headers(token: str | None = TOKEN, origin: str = UI) -> dict[str, str]:
    headers = {"Origin": origin, "X-Namespace": "default", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_codec_server_decodes_the_history_for_the_ui(
    completed: Handle, codec_http: httpx.AsyncClient
) -> None:
    document = await history_document(completed)
    encrypted = [p for _, p in payloads_in(document) if encoding_of(p) == ENCODING]
    body = {"payloads": encrypted}
    response = await codec_http.post("/decode", json=body, headers=_headers())
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == UI
    decoded = response.json()["payloads"]
    assert len(decoded) == len(encrypted)
    assert all(encoding_of(p) != ENCODING for p in decoded)
    text = plaintext_of(decoded)
    assert PHONE in text and NAME in text and ADDRESS in text

    for token in (None, "wrong"):
        refused = await codec_http.post("/decode", json=body, headers=_headers(token))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert PHONE not in refused.text
    foreign = await codec_http.post(
        "/decode", json=body, headers=_headers(origin="http://evil.example")
    )
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers


async def test_codec_server_cors_preflight(codec_http: httpx.AsyncClient) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        }

    allowed = await codec_http.options("/decode", headers=preflight(UI))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    granted = allowed.headers["access-control-allow-headers"].lower()
    assert "authorization" in granted and "x-namespace" in granted
    assert "POST" in allowed.headers["access-control-allow-methods"]

    refused = await codec_http.options("/decode", headers=preflight("http://evil.example"))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


async def test_codec_server_encode_decode_and_errors(codec_http: httpx.AsyncClient) -> None:
    plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IngiCg=="}]}
    encoded = await codec_http.post("/encode", json=plain, headers=_headers())
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert encoding_of(sealed) == ENCODING
    decoded = await codec_http.post("/decode", json=encoded.json(), headers=_headers())
    assert decoded.json() == plain

    other = EncryptionCodec([new_key("k9")]).encrypt(Payload(data=b"x"))
    unknown = {"payloads": [json_format.MessageToDict(other)]}
    response = await codec_http.post("/decode", json=unknown, headers=_headers())
    assert response.status_code == 400 and "'k9'" in response.json()["error"]
    garbage = await codec_http.post("/decode", content=b"{not json", headers=_headers())
    assert garbage.status_code == 400


def test_codec_key_is_a_value_object() -> None:
    with pytest.raises(CodecConfigError, match="32"):
        CodecKey("x", b"short")
