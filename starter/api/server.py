"""`python -m starter.api` (the `orderflow-api` script): the staff API as its own process."""

from __future__ import annotations

import argparse
import asyncio

from infra import database as db
from infra import fail_closed
from infra.logging import configure_logging
from infra.settings import SettingsError, settings
from infra.temporal import connect_client
from starter.api.app import create_app
from starter.serving import serve_until_stopped

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8082


async def serve(host: str, port: int, log_level: str = "info") -> None:
    """Temporal is connected lazily: the API starts while it is down and says so per request."""
    client = await connect_client(lazy=True)
    pool = await db.connect()
    try:
        await db.migrate(pool)  # the tokens table must exist before the first sign-in
        await serve_until_stopped(create_app(client, pool), host, port, log_level)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The staff API (orderflow)")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
        fail_closed.require(settings(), fail_closed.Role.API)
    except SettingsError as err:
        raise SystemExit(f"staff API not started: {err}") from None
    asyncio.run(serve(args.host, args.port, args.log_level))
