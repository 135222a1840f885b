"""The client's address behind reverse proxies (`infra.forwarded`): X-Forwarded-For is believed
only from the proxies in ORDERFLOW_TRUSTED_PROXIES, and read from the right."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from infra.codec import EncryptionCodec, new_key
from infra.forwarded import client_address, parse_address
from starter import codec_server

PROXIES = (ipaddress.ip_network("10.203.14.0/24"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # No proxy trusted, or a peer that is none: the peer, whatever it claims.
        ("198.51.100.7", [], "198.51.100.7"),
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        ("192.0.2.1", ["10.203.14.2"], "192.0.2.1"),
        # Behind the proxy: the address it appended.
        ("10.203.14.2", ["203.0.113.9"], "203.0.113.9"),
        # A client that sends its own header cannot choose: the rightmost untrusted wins.
        ("10.203.14.2", ["1.1.1.1, 203.0.113.9"], "203.0.113.9"),
        ("10.203.14.2", ["1.1.1.1", "203.0.113.9"], "203.0.113.9"),  # two header lines
        # Two proxies in a row, both trusted.
        ("10.203.14.2", ["203.0.113.9, 10.203.14.3"], "203.0.113.9"),
        ("fd00::5", ["2001:db8::1, fd00::6"], "2001:db8::1"),
        # Ports and brackets as some proxies write them.
        ("10.203.14.2", ["203.0.113.9:51234"], "203.0.113.9"),
        ("10.203.14.2", ["[2001:db8::1]:443"], "2001:db8::1"),
        # IPv4 peers on a dual-stack socket.
        ("::ffff:10.203.14.2", ["203.0.113.9"], "203.0.113.9"),
        # Nothing behind the proxy, or all of it trusted: the leftmost known hop.
        ("10.203.14.2", [], "10.203.14.2"),
        ("10.203.14.2", ["10.203.14.9"], "10.203.14.9"),
        # A hop no proxy writes ends the walk at the last trusted one.
        ("10.203.14.2", ["203.0.113.9, unknown"], "10.203.14.2"),
        ("10.203.14.2", ["203.0.113.9, 10.203.14.3, _hidden"], "10.203.14.2"),
        # A peer that is not an address (a test client, a socket path): itself.
        ("testclient", ["203.0.113.9"], "testclient"),
    ],
)
def test_the_client_is_the_rightmost_address_not_trusted(
    peer: str, headers: list[str], client: str
) -> None:
    assert client_address(peer, headers, PROXIES) == client


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9:80 ", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:8443", "2001:db8::1"),
        ("unknown", None),
        ("", None),
        ("203.0.113.9:80:1", None),
    ],
)
def test_addresses_as_proxies_write_them(text: str, address: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed else None) == address


async def test_the_codec_servers_limit_per_address_sees_the_clients_behind_the_proxy() -> None:
    codec = EncryptionCodec([new_key("k1")])
    app = codec_server.create_app(
        codec, per_minute=2, clock=lambda: 0.0, trusted_proxies=PROXIES
    )  # no token: only the limit per address stands between a caller and the codec
    sealed = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    transport = httpx.ASGITransport(app=app, client=("10.203.14.2", 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:

        async def decode(client: str) -> int:
            headers = {"X-Forwarded-For": client, "Content-Type": "application/json"}
            return (await http.post("/decode", content=body, headers=headers)).status_code

        first = [await decode("203.0.113.1") for _ in range(3)]
        second = [await decode("203.0.113.2") for _ in range(3)]
    assert first == second == [200, 200, 429]  # each client its own allowance
