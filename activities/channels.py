"""Where notifications go: a group robot webhook, or only the notifications table.

`ORDERFLOW_NOTIFY_WEBHOOK` (a robot URL) selects the webhook; `ORDERFLOW_NOTIFY_FLAVOUR`
(`wecom`, `dingtalk` or `feishu`; default `wecom`) its message shape; `ORDERFLOW_NOTIFY_SECRET`
signs DingTalk and Feishu robots that require it. Unset: notifications are only recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Protocol
from urllib.parse import quote_plus

import httpx

from infra.settings import settings
from schemas.records import Notification

FLAVOURS = ("wecom", "dingtalk", "feishu")


class DeliveryError(RuntimeError):
    """The robot answered with an error; the activity fails and Temporal retries it."""


def render(n: Notification, recipient: str | None) -> str:
    to = f"{n.audience.value}:{recipient}" if recipient else n.audience.value
    return f"【{n.subject}】\n{n.text}\norder {n.order_id} · store {n.store_code} · to {to}"


class Channel(Protocol):
    name: str

    async def send(self, n: Notification, recipient: str | None) -> None: ...


class RecordedChannel:
    """The notifications table is the delivery: people read it through orderctl."""

    name = "recorded"

    async def send(self, n: Notification, recipient: str | None) -> None:
        return None


class WebhookChannel:
    """POSTs the robot's text message shape to a WeCom, DingTalk or Feishu group robot."""

    def __init__(
        self,
        url: str,
        flavour: str = "wecom",
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"notification flavour {flavour!r} must be one of {FLAVOURS}")
        self.url = url
        self.flavour = flavour
        self.name = f"webhook:{flavour}"
        self._secret = secret
        self._timeout = timeout
        self._client = client

    def body(self, content: str, now: float | None = None) -> dict[str, Any]:
        if self.flavour == "feishu":
            body: dict[str, Any] = {"msg_type": "text", "content": {"text": content}}
            if self._secret:
                stamp = str(int(now if now is not None else time.time()))
                key = f"{stamp}\n{self._secret}".encode()
                sign = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
                body |= {"timestamp": stamp, "sign": sign}
            return body
        body = {"msgtype": "text", "text": {"content": content}}
        if self.flavour == "dingtalk":
            body["at"] = {"atMobiles": [], "isAtAll": False}
        return body

    def target(self, now: float | None = None) -> str:
        if self.flavour != "dingtalk" or not self._secret:
            return self.url
        stamp = str(int((now if now is not None else time.time()) * 1000))
        digest = hmac.new(
            self._secret.encode(), f"{stamp}\n{self._secret}".encode(), hashlib.sha256
        ).digest()
        sign = quote_plus(base64.b64encode(digest).decode())
        joiner = "&" if "?" in self.url else "?"
        return f"{self.url}{joiner}timestamp={stamp}&sign={sign}"

    async def send(self, n: Notification, recipient: str | None) -> None:
        payload = self.body(render(n, recipient))
        if self._client is not None:
            response = await self._client.post(self.target(), json=payload, timeout=self._timeout)
        else:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self.target(), json=payload)
        if response.status_code >= 400:
            raise DeliveryError(f"{self.name} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            return  # a 2xx without JSON: accepted
        if not isinstance(answer, dict):
            return
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code not in (0, None):
            message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage")
            raise DeliveryError(f"{self.name} refused the message: {code} {message}")


def channel_from_env() -> Channel:
    """The webhook `settings().notify` names, else recording only."""
    notify = settings().notify
    if notify.webhook is None:
        return RecordedChannel()
    return WebhookChannel(notify.webhook, notify.flavour, secret=notify.secret)
