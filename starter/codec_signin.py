"""Signing in to the codec server from a browser: how the Temporal Web UI is let in.

The Web UI cannot send a bearer token of ours. With its codec setting "Include cross-origin
credentials" on (`TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true` in a deployed UI), it sends what the
browser holds for the codec server's site. So a person opens `/signin` on the codec server once
and gives their own sign-in token (`orderctl admin token issue`); it is kept in an HttpOnly
cookie that scripts cannot read, and every decode checks it as it would the header: a revoked
token or a changed role ends the session at the next request.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from starter.serving import read_limited

log = logging.getLogger("orderflow.codec_server")

COOKIE: Final = "orderflow_codec"
SESSION_SECONDS: Final = 12 * 3600
"""A working day: the token itself may live longer, the browser's hold on it does not."""
MAX_FORM_BYTES: Final = 4096


class SignInRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


SignIn = Callable[[Request, str], Awaitable[str]]
"""A request and the token given to the person it signs in (their staff id), or
`SignInRefused`."""

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orderflow codec server: sign in</title>
<meta name="viewport" content="width=device-width"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Sign in to read orders in the Temporal Web UI</h1>
<p>{message}</p>
<form method="post" action="signin">
<label>Your sign-in token (<code>orderctl admin token issue</code>)
<input type="password" name="token" autocomplete="off" required style="width: 100%"></label>
<p><button type="submit">Sign in</button></p>
</form>
<form method="post" action="signout"><button type="submit">Sign out</button></form>
<p>In the Web UI, the codec server settings must have "Include cross-origin credentials" on.</p>
</body></html>
"""


def _page(message: str, status: int = 200) -> HTMLResponse:
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(_PAGE.format(message=html.escape(message)), status, headers=headers)


def signin_routes(sign_in: SignIn, *, secure: bool) -> list[Route]:
    """`GET /signin` (the form), `POST /signin` (the token kept), `POST /signout`. `secure`
    marks the cookie for HTTPS only: everywhere but a loopback address, where nothing travels.
    SameSite=Strict: the UI and the codec server are one site (one host, two ports), and no
    other site's page makes the browser send it."""

    async def form(request: Request) -> Response:
        return _page("Give your own sign-in token; an admin's reads every order.")

    async def keep(request: Request) -> Response:
        token = await _token_from_form(request)
        if token is None:
            return _page("Give a token.", 400)
        try:
            who = await sign_in(request, token)
        except SignInRefused as refused:
            log.warning("codec sign-in refused: %s", refused.message)
            return _page(f"Not signed in: {refused.message}", refused.status)
        log.info("codec sign-in by %s", who)
        signed_in = _page(f"Signed in as {who}. The Web UI's pages now show orders decoded.")
        signed_in.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            secure=secure,
            samesite="strict",
        )
        return signed_in

    async def leave(request: Request) -> Response:
        left = _page("Signed out.")
        left.delete_cookie(COOKIE, httponly=True, secure=secure, samesite="strict")
        return left

    return [
        Route("/signin", form, methods=["GET"]),
        Route("/signin", keep, methods=["POST"]),
        Route("/signout", leave, methods=["POST"]),
    ]


async def _token_from_form(request: Request) -> str | None:
    """The form's one field, read without a multipart parser (the form is ours, urlencoded)."""
    body = await read_limited(request, MAX_FORM_BYTES)
    if body is None:
        return None
    fields = parse_qs(body.decode("utf-8", "replace"))
    given = fields.get("token", [""])[0].strip()
    return given or None
