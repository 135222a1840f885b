"""The codec server: lets the Temporal Web UI and CLI show encrypted payloads in plaintext.

Histories hold only ciphertext (`infra.codec`); the UI sends the payloads it displays to
this server, which alone holds the keys, and shows what comes back. It speaks Temporal's
remote codec protocol: `POST /decode` and `POST /encode` with a JSON body
`{"payloads": [{"metadata": {"encoding": "<base64>", ...}, "data": "<base64>"}]}`, answered in
the same shape.

Run: `python -m starter.codec_server --port 8081` with ORDERFLOW_CODEC_KEYS (the workers'
keys), ORDERFLOW_CODEC_TOKEN (the bearer token every request must carry) and
ORDERFLOW_CODEC_CORS_ORIGIN (the UI's origin, default `http://localhost:8233`; several may be
given, comma-separated). Then:

- the dev server's UI: `temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8081`,
  or in any UI, the data encoder settings (the codec icon in the top bar) with that endpoint;
  "pass the user access token" makes the UI send `Authorization: Bearer <its access token>`,
  which must then be what ORDERFLOW_CODEC_TOKEN holds (a UI without login sends none: run
  this server with `--no-auth` on a loopback address for local development only);
- the CLI: `temporal workflow show -w order-<id> --codec-endpoint http://127.0.0.1:8081
  --codec-auth "Bearer $ORDERFLOW_CODEC_TOKEN"`.

Browsers call it cross-origin, so CORS admits only the UI's origin (preflight included, with
the `Authorization` and `X-Namespace` headers the UI sends); any other origin is refused.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from infra.codec import CodecConfigError, CodecError, codec_from_env
from infra.logging import configure_logging
from infra.settings import DEFAULT_CORS_ORIGIN, SettingsError, settings, settings_for

log = logging.getLogger("orderflow.codec_server")

ENV_TOKEN: Final = "ORDERFLOW_CODEC_TOKEN"
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""The UI sends one event's payloads at a time; far more than that is not the UI."""


def cors_origins(env: Mapping[str, str] | None = None) -> list[str]:
    """ORDERFLOW_CODEC_CORS_ORIGIN (`settings().codec`, or `env`'s when given)."""
    return list(settings_for(env).codec.cors_origins)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=dict(headers or {}))


async def _read_limited(request: Request) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def create_app(
    codec: PayloadCodec,
    *,
    token: str | None,
    origins: Sequence[str] = (DEFAULT_CORS_ORIGIN,),
) -> Starlette:
    """The codec server. `token` None disables the bearer check (local development only)."""
    allowed = frozenset(o.rstrip("/") for o in origins)
    expected = f"Bearer {token}".encode() if token else None

    def refusal(request: Request) -> Response | None:
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") not in allowed:
            # CORS alone only stops a browser from reading the answer; this stops the work.
            return _error(403, "origin not allowed")
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        return None

    def endpoint(
        apply: Callable[[Payloads], Awaitable[None]], what: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            refused = refusal(request)
            if refused is not None:
                return refused
            body = await _read_limited(request)
            if body is None:
                return _error(413, f"body over {MAX_BODY_BYTES} bytes")
            payloads = Payloads()
            try:
                json_format.Parse(body, payloads, ignore_unknown_fields=True)
            except (json_format.ParseError, ValueError, UnicodeDecodeError) as exc:
                return _error(400, f"not a payloads JSON object: {exc}")
            try:
                await apply(payloads)
            except CodecError as exc:
                log.warning("%s refused: %s", what, exc)
                return _error(400, str(exc))
            return Response(
                json_format.MessageToJson(payloads, indent=None),
                media_type="application/json",
            )

        return handle

    routes = [
        Route("/encode", endpoint(codec.encode_wrapper, "encode"), methods=["POST"]),
        Route("/decode", endpoint(codec.decode_wrapper, "decode"), methods=["POST"]),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=sorted(allowed),
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            allow_credentials=True,
            max_age=600,
        )
    ]
    return Starlette(routes=routes, middleware=middleware)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Temporal codec server (orderflow)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without a bearer token (loopback addresses only; local development)",
    )
    parser.add_argument("--log-level", default=None)
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
        codec = codec_from_env()
    except (CodecConfigError, SettingsError) as exc:
        sys.exit(str(exc))
    if codec is None:
        sys.exit("ORDERFLOW_CODEC_KEYS is unset: there is nothing to decode")
    token = settings().codec.token
    if token is None:
        if not args.no_auth:
            sys.exit(f"{ENV_TOKEN} is unset (or pass --no-auth in the local stack)")
        if not settings().deployment.dev:  # infra.fail_closed
            sys.exit("--no-auth is for the local stack only (ORDERFLOW_DEV=1)")
        if not _loopback(args.host):
            sys.exit("--no-auth is allowed on a loopback address only")
        log.warning("codec server without authentication: local development only")
    origins = cors_origins()
    log.info(
        "codec server on %s:%d for %s, keys %s",
        args.host,
        args.port,
        ", ".join(origins),
        ", ".join(codec.key_ids),
    )
    app = create_app(codec, token=token, origins=origins)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
