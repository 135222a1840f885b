"""The platform's request/push signature (md5 over URL, sorted raw parameters and the secret).

The same rule signs the calls we make and verifies the pushes we receive (R6.3.1). Values are
joined raw, not URL-encoded, so a push must be fully decoded before it is verified. Every
parameter is signed, empty ones included (`caution=&`): the platform's own pushes only verify
that way (tests/platform_fixtures), and a request signs exactly the parameters it sends.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

SIG = "sig"
# Never part of the signed string: the signature itself and binary uploads.
_UNSIGNED = frozenset({SIG, "img_data"})


def base_url(url: str) -> str:
    """The URL as the platform signs it: scheme, host, port and path, no query or fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def signing_string(url: str, params: Mapping[str, str | None], secret: str) -> str:
    """The exact text that is hashed; exposed because a mismatch is debugged by comparing it.

    `None` means "not sent" and is left out; an empty string is sent, so it is signed.
    """
    kept = sorted((k, v) for k, v in params.items() if k not in _UNSIGNED and v is not None)
    joined = "&".join(f"{k}={v}" for k, v in kept)
    return f"{base_url(url)}?{joined}{secret}"


def sign(url: str, params: Mapping[str, str | None], secret: str) -> str:
    """Lowercase hex md5 of `signing_string`."""
    return hashlib.md5(signing_string(url, params, secret).encode("utf-8")).hexdigest()


def verify(url: str, params: Mapping[str, str | None], secret: str, sig: str | None = None) -> bool:
    """True when `sig` (default: `params["sig"]`) matches; compared in constant time."""
    given = sig if sig is not None else params.get(SIG)
    if not given:
        return False
    return hmac.compare_digest(given.lower(), sign(url, params, secret))
