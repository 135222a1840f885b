"""With the codec keys set, the local stack's Web UI decodes: its dev server is told where the
codec server is, and that server decodes for the UI's origin alone (issue "Fit the
ecosystem"). The browser's side is tests/ui/test_web_ui_codec.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import default

from infra.codec import new_key
from infra.settings import settings
from localstack import devstack
from localstack.codec import codec_server

KEY = new_key("local-1")


async def _decode(codec_url: str, origin: str, payloads: Payloads) -> httpx.Response:
    """As the UI asks: from its page's origin (the server runs in this event loop)."""
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(
            f"{codec_url}/decode",
            content=json_format.MessageToJson(payloads),
            headers={"Origin": origin, "Content-Type": "application/json"},
        )


async def test_the_ui_is_pointed_at_a_codec_server_that_decodes_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERFLOW_CODEC_KEYS", KEY.spec())
    settings.cache_clear()
    local = devstack._local_codec(None)
    assert local is not None and local.url.startswith("http://127.0.0.1:")
    said: list[str] = []
    async with devstack.temporal_dev_server(
        tmp_path, fresh=True, port=None, ui_port=None, codec_endpoint=local.url
    ) as server:
        assert server.ui_url is not None
        async with httpx.AsyncClient(timeout=10) as http:
            ui_settings = (await http.get(f"{server.ui_url}/api/v1/settings")).json()
        assert ui_settings["Codec"]["Endpoint"] == local.url
        plain = default().payload_converter.to_payloads(["陆女士 order 42"])
        encoded = Payloads(payloads=await local.codec.encode(plain))
        assert b"order 42" not in encoded.payloads[0].data
        async with codec_server(local, server.ui_url, said.append) as codec_url:
            assert codec_url == local.url
            decoded = await _decode(codec_url, server.ui_url, encoded)
            assert decoded.status_code == 200, decoded.text
            back = json_format.Parse(decoded.text, Payloads())
            assert default().payload_converter.from_payloads(list(back.payloads)) == [
                "陆女士 order 42"
            ]
            by_address = server.ui_url.replace("localhost", "127.0.0.1")
            assert (await _decode(codec_url, by_address, encoded)).status_code == 200
            elsewhere = await _decode(codec_url, "https://example.com", encoded)
            assert elsewhere.status_code == 403
    assert any("codec server at" in line for line in said)


def test_no_keys_no_codec_server_and_bad_keys_stop_the_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORDERFLOW_CODEC_KEYS", raising=False)
    settings.cache_clear()
    assert devstack._local_codec(None) is None
    monkeypatch.setenv("ORDERFLOW_CODEC_KEYS", "k1:not-a-key")
    settings.cache_clear()
    with pytest.raises(devstack.StackError, match="ORDERFLOW_CODEC_KEYS"):
        devstack._local_codec(None)
