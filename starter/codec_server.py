"""The codec server: lets the Temporal Web UI and CLI show encrypted payloads in plaintext.

Histories hold only ciphertext (`infra.codec`); the UI sends the payloads it displays to
this server, which alone holds the keys, and shows what comes back. It speaks Temporal's
remote codec protocol: `POST /decode` and `POST /encode` with a JSON body
`{"payloads": [{"metadata": {"encoding": "<base64>", ...}, "data": "<base64>"}]}`, answered in
the same shape.

Run: `python -m starter.codec_server --port 8081` with ORDERFLOW_CODEC_KEYS (the workers'
keys), ORDERFLOW_CODEC_TOKEN (the service token) and ORDERFLOW_CODEC_CORS_ORIGIN (the UI's
origin, default `http://localhost:8233`; several may be given, comma-separated). Who may ask:

- the service token: decodes and encodes (a same-origin proxy in front of the Web UI that adds
  it, a service that starts workflows with encoded input);
- with DATABASE_URL set, a person's own sign-in token (`orderctl admin token issue`) when
  their role reads every order (an admin): decodes only, since what is encoded the workers
  accept. `temporal workflow show -w order-<id> --codec-endpoint http://127.0.0.1:8081
  --codec-auth "Bearer $ORDERFLOW_TOKEN"`;
- in a browser, that person's token kept since they signed in at `/signin`
  (`starter.codec_signin`): the Web UI sends it with "Include cross-origin credentials" on;
- anyone, with `--no-auth` on a loopback address in the local stack (ORDERFLOW_DEV=1).

Every request is logged with who made it, the namespace and the UI page it came from (the
audit), and each caller may make 600 a minute. The dev server's UI:
`temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8081`, or in any UI the data
encoder settings (the codec icon in the top bar) with that endpoint.

Browsers call it cross-origin, so CORS admits only the UI's origin (preflight included, with
the `Authorization` and `X-Namespace` headers the UI sends); any other origin is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import ipaddress
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from infra import database as db
from infra.codec import CodecConfigError, CodecError, codec_from_env
from infra.forwarded import client_address
from infra.logging import configure_logging
from infra.rate import PerMinute
from infra.settings import DEFAULT_CORS_ORIGIN, Network, SettingsError, settings, settings_for
from schemas.people import READS, Person
from starter.api.tokens import PREFIX, person_for
from starter.codec_signin import COOKIE, SignInRefused, signin_routes
from starter.failures import Failure
from starter.serving import read_limited, serve_until_stopped

log = logging.getLogger("orderflow.codec_server")

ENV_TOKEN: Final = "ORDERFLOW_CODEC_TOKEN"
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""The UI sends one event's payloads at a time; far more than that is not the UI."""


def cors_origins(env: Mapping[str, str] | None = None) -> list[str]:
    """ORDERFLOW_CODEC_CORS_ORIGIN (`settings().codec`, or `env`'s when given)."""
    return list(settings_for(env).codec.cors_origins)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=dict(headers or {}))


@dataclass(frozen=True)
class Caller:
    """Who is asking: the service token, a person, or anyone (local development)."""

    who: str
    may_encode: bool


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Admit = Callable[[str], Awaitable[Caller]]
"""A bearer token to its caller, or `Refused`."""


def admitting(
    service_token: str | None, people: Callable[[str], Awaitable[Person]] | None = None
) -> Admit:
    """The service token (a proxy in front of the Web UI, a service that encodes), or a
    person's sign-in token (`orderctl admin token issue`) whose role may read every order:
    decoding shows whole histories. Only the service may encode: what it encodes, workers
    accept."""
    expected = service_token.encode() if service_token else None

    async def admit(token: str) -> Caller:
        if expected is not None and hmac.compare_digest(token.encode(), expected):
            return Caller("service", may_encode=True)
        if people is None or not token.startswith(PREFIX):
            raise Refused(401, "missing or wrong bearer token")
        try:
            person = await people(token)
        except Failure as failure:
            raise Refused(401, failure.message) from None
        except db.UNAVAILABLE:
            raise Refused(503, "the sign-in tokens cannot be read now; try again") from None
        if READS[person.role] is not None:
            raise Refused(403, f"{person.staff_id} ({person.role}) may not read every order")
        return Caller(person.staff_id, may_encode=False)

    return admit


class _Gate:
    """Who may ask, and how often: the origin, a rate per address before any token is read
    (so guessing tokens is as slow), the caller, and a rate per caller."""

    def __init__(
        self,
        admit: Admit | None,
        origins: frozenset[str],
        per_minute: int,
        clock: Callable[[], float],
        proxies: Sequence[Network] = (),
    ) -> None:
        self._admit = admit
        self._origins = origins
        self._window = PerMinute(per_minute, clock)
        self._proxies = proxies  # behind them, the address is the one they name

    async def caller(self, request: Request, what: str) -> Caller:
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self._origins:
            # CORS alone only stops a browser from reading the answer; this stops the work.
            raise Refused(403, "origin not allowed")
        self._count(f"address {self._address(request)}")
        if self._admit is None:
            return Caller("local", may_encode=True)
        caller = await self._admit(_token(request))
        if what == "encode" and not caller.may_encode:
            raise Refused(403, "encoding is for the services, not people")
        self._count(f"caller {caller.who}")
        return caller

    async def sign_in(self, request: Request, token: str) -> str:
        """A person's own token, checked before the browser keeps it (`starter.codec_signin`)."""
        if self._admit is None:
            raise SignInRefused(404, "this codec server asks nobody to sign in")
        try:
            self._count(f"address {self._address(request)}")
            caller = await self._admit(token)
        except Refused as refused:
            raise SignInRefused(refused.status, refused.message) from None
        if caller.may_encode:
            raise SignInRefused(403, "sign in with your own token, not the service's")
        return caller.who

    def _address(self, request: Request) -> str:
        peer = request.client.host if request.client else "-"
        return client_address(peer, request.headers.getlist("x-forwarded-for"), self._proxies)

    def _count(self, key: str) -> None:
        if not self._window.admit(key):
            raise Refused(429, f"over {self._window.limit} requests a minute")


def _token(request: Request) -> str:
    """The bearer token of a service or of the CLI, or the one a person's browser keeps since
    they signed in. The browser's is taken only from a page of an allowed origin, which the
    gate has checked: a request with no Origin is not the UI's."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return given.strip()
    kept = request.cookies.get(COOKIE)
    if kept and request.headers.get("origin") is not None:
        return kept
    raise Refused(401, "missing or wrong bearer token; in a browser, sign in at /signin")


def create_app(
    codec: PayloadCodec,
    *,
    token: str | None = None,
    admit: Admit | None = None,
    origins: Sequence[str] = (DEFAULT_CORS_ORIGIN,),
    per_minute: int = 600,
    clock: Callable[[], float] = time.monotonic,
    trusted_proxies: Sequence[Network] = (),
    secure_cookie: bool = True,
) -> Starlette:
    """The codec server. `admit` (default: the service `token` alone) decides who may ask;
    neither given disables the check (local development only). Each address (as the
    `trusted_proxies` in front name it) and each caller may make `per_minute` requests a
    minute; each request is logged with who made it (the audit). People sign in from a browser
    at `/signin` (`starter.codec_signin`); `secure_cookie` is off on loopback addresses only."""
    allowed = frozenset(o.rstrip("/") for o in origins)
    if admit is None and token is not None:
        admit = admitting(token)
    gate = _Gate(admit, allowed, per_minute, clock, trusted_proxies)

    def endpoint(
        apply: Callable[[Payloads], Awaitable[None]], what: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                caller = await gate.caller(request, what)
            except Refused as refused:
                log.warning("codec %s refused: %s", what, refused.message)
                headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else {}
                return _error(refused.status, refused.message, headers)
            return await _apply(request, apply, what, caller)

        return handle

    routes = [
        Route("/encode", endpoint(codec.encode_wrapper, "encode"), methods=["POST"]),
        Route("/decode", endpoint(codec.decode_wrapper, "decode"), methods=["POST"]),
        *signin_routes(gate.sign_in, secure=secure_cookie),
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


async def _apply(
    request: Request, apply: Callable[[Payloads], Awaitable[None]], what: str, caller: Caller
) -> Response:
    """The payloads read, the request put on record, the codec applied."""
    body = await read_limited(request, MAX_BODY_BYTES)
    if body is None:
        return _error(413, f"body over {MAX_BODY_BYTES} bytes")
    payloads = Payloads()
    try:
        json_format.Parse(body, payloads, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"not a payloads JSON object: {exc}")
    log.info(
        "codec %s by %s: %d payload(s), namespace %s, page %s",
        what,
        caller.who,
        len(payloads.payloads),
        request.headers.get("x-namespace", "-"),
        request.headers.get("referer", "-"),
    )
    try:
        await apply(payloads)
    except CodecError as exc:
        log.warning("%s refused: %s", what, exc)
        return _error(400, str(exc))
    return Response(json_format.MessageToJson(payloads, indent=None), media_type="application/json")


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
    token, database_url = settings().codec.token, settings().database.url
    if args.no_auth:
        if not settings().deployment.dev:  # infra.fail_closed
            sys.exit("--no-auth is for the local stack only (ORDERFLOW_DEV=1)")
        if not _loopback(args.host):
            sys.exit("--no-auth is allowed on a loopback address only")
        log.warning("codec server without authentication: local development only")
    elif token is None and database_url is None:
        sys.exit(
            f"nobody could ask: set {ENV_TOKEN} (the service token), DATABASE_URL (people's "
            "own tokens) or both; or pass --no-auth in the local stack"
        )
    origins = cors_origins()
    log.info(
        "codec server on %s:%d for %s, keys %s",
        args.host,
        args.port,
        ", ".join(origins),
        ", ".join(codec.key_ids),
    )
    people_db = None if args.no_auth else database_url
    asyncio.run(_serve(codec, args, origins, token, people_db))


async def _serve(
    codec: PayloadCodec,
    args: argparse.Namespace,
    origins: Sequence[str],
    token: str | None,
    database_url: str | None,
) -> None:
    """People's sign-in tokens are looked up on a pool that opens no connection before the
    first one (the server starts while PostgreSQL is down) and closes when the server stops."""
    pool = await db.connect(database_url, min_size=0, max_size=2) if database_url else None
    try:
        admit: Admit | None = None
        if not args.no_auth:
            admit = admitting(token, functools.partial(person_for, pool) if pool else None)
        proxies = settings().deployment.trusted_proxies
        app = create_app(
            codec,
            admit=admit,
            origins=origins,
            trusted_proxies=proxies,
            secure_cookie=not _loopback(args.host),
        )
        await serve_until_stopped(app, args.host, args.port, args.log_level or "info")
    finally:
        if pool is not None:
            await pool.close()


if __name__ == "__main__":
    main()
