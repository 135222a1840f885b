"""The staff API's Python client, for `orderctl` and the simulated staff: the person's token,
one HTTP call per action, and the API's `{"error", "code"}` answers turned back into the
`Failure` (and exit code) the API meant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import BaseModel

from infra.settings import settings
from schemas.messages import Action
from starter.api.protocol import ANSWER_WITHIN, IDEMPOTENCY_KEY
from starter.failures import Exit, Failure

ATTEMPTS = 3
"""A request that got no answer is sent again, with the same Idempotency-Key: the API turns it
into the same update, so the action is applied once."""


def stored_token() -> str | None:
    """ORDERFLOW_TOKEN, else the one `orderctl login` kept."""
    api = settings().api
    if api.token:
        return api.token
    try:
        return api.token_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def body(message: BaseModel) -> dict[str, Any]:
    """The message without its actor: the API puts the token's person there."""
    exclude = {"by"} if isinstance(message, Action) else set()
    dumped: dict[str, Any] = message.model_dump(mode="json", exclude=exclude)
    return dumped


class Api:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self.url = url

    async def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        headers = {IDEMPOTENCY_KEY: uuid.uuid4().hex} if method == "POST" else {}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self._client.request(
                    method, path, json=json, params=params, headers=headers
                )
                return _answer(response)
            except httpx.ConnectError as err:
                reason = f"cannot reach the staff API at {self.url}: {err}"
                failure = Failure(reason, Exit.UNREACHABLE)
            except (httpx.TimeoutException, httpx.RemoteProtocolError):
                failure = Failure(f"the staff API at {self.url} did not answer", Exit.NO_ANSWER)
            if attempt == ATTEMPTS:
                raise failure
            await asyncio.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    async def update(self, order: str, name: str, message: BaseModel) -> Any:
        return await self.call("POST", f"/orders/{order}/updates/{name}", json=body(message))

    async def signal(self, order: str, name: str, message: BaseModel) -> Any:
        return await self.call("POST", f"/orders/{order}/signals/{name}", json=body(message))


def _answer(response: httpx.Response) -> Any:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.is_success:
        return payload
    if isinstance(payload, dict) and "error" in payload and "code" in payload:
        try:
            code = Exit(int(payload["code"]))
        except ValueError:
            code = Exit.FAILED
        raise Failure(str(payload["error"]), code)
    raise Failure(f"the staff API answered HTTP {response.status_code}", Exit.FAILED)


@asynccontextmanager
async def connect(
    timeout_s: float, *, token: str | None = None, url: str | None = None
) -> AsyncIterator[Api]:
    """`timeout_s` is how long the person waits for the order's answer; the API is asked to
    give up on Temporal by then (ANSWER_WITHIN) so it can say why."""
    url = (url or settings().api.url).rstrip("/")
    token = token or stored_token()
    headers = {ANSWER_WITHIN: f"{timeout_s:g}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout_s + 5, trust_env=False
    ) as client:
        yield Api(client, url)
