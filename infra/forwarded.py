"""Who sent a request, behind reverse proxies: the address limits and records go by.

Behind a proxy every request comes from the proxy, so a limit per source address would hold
every client back together, and anyone could claim any address in `X-Forwarded-For`. Only the
proxies listed in ORDERFLOW_TRUSTED_PROXIES are believed: each appends the address it got the
request from, so the chain is read from the right, past the trusted hops, and the first
address not trusted is the client. A direct peer that is not a trusted proxy is the client
whatever the headers say.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from infra.settings import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """An address as a proxy writes it: bare, `[v6]`, or with a port (`1.2.3.4:5678`,
    `[::1]:443`); None when it is none of these (`unknown`, an obfuscated name)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def trusted(address: Address, proxies: Sequence[Network]) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 is 10.0.0.1
    return any(address in net or (mapped is not None and mapped in net) for net in proxies)


def client_address(peer: str, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """The client's address: the peer unless it is a trusted proxy, else the rightmost address
    of `X-Forwarded-For` (every header given, in order) that is not one. An entry no proxy
    would write ends the walk at the last trusted hop: that proxy is the source then."""
    current = parse_address(peer)
    if current is None or not trusted(current, proxies):
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break
        current = address
        if not trusted(address, proxies):
            break
    return str(current)
