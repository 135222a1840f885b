"""Serving a Starlette app until SIGINT/SIGTERM, for the gateway, the staff API and the codec
server, and reading a request's body within a bound."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request


class _Server(uvicorn.Server):
    """Signals are the host's (`serve_until_stopped`): uvicorn's own handling re-raises the
    signal after shutdown, which kills the process before cleanup, leaving an embedded
    PostgreSQL running."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_until_stopped(app: Starlette, host: str, port: int, log_level: str) -> None:
    """Until SIGINT/SIGTERM, then a clean return so the caller closes what it opened."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # log_config=None: uvicorn's own handlers would print query strings unmasked.
    # proxy_headers=False: X-Forwarded-For is believed per ORDERFLOW_TRUSTED_PROXIES alone
    # (infra.forwarded), not also from uvicorn's loopback default.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        log_config=None,
        proxy_headers=False,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes: no more of it is read."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
