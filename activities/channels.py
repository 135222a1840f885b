"""How a message is posted: the text message of a WeCom, DingTalk or Feishu group robot with its
@-mention, or a plain JSON webhook. The dispatcher (`workers/dispatcher.py`) posts; this module
knows each robot's shape, signature, rate and the answers that mean "slower".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

import httpx

FLAVOURS = ("wecom", "dingtalk", "feishu")

MINUTE, SECOND = timedelta(minutes=1), timedelta(seconds=1)
LIMITS: dict[str, tuple[tuple[int, timedelta], ...]] = {
    "wecom": ((20, MINUTE),),
    "dingtalk": ((20, MINUTE),),
    "feishu": ((100, MINUTE), (5, SECOND)),
    "webhook": ((60, MINUTE),),
}
"""Messages per span per robot, as each documents: WeCom's and DingTalk's group robots 20 a
minute, Feishu's custom bots 100 a minute and 5 a second; a plain webhook is given 60."""

THROTTLED = {"wecom": {45009}, "dingtalk": {130101}, "feishu": {11232}}
"""The answers that mean the robot's rate was exceeded: not a failure of the message (WeCom
45009 "api freq out of limit", DingTalk 130101 "send too fast", Feishu 11232 "frequency
limited")."""

HOLD = {"wecom": MINUTE, "dingtalk": timedelta(minutes=10), "feishu": MINUTE, "webhook": MINUTE}
"""How long a robot that answered "too fast" is left alone: DingTalk throttles a robot for ten
minutes once it has been sent more than 20 in a minute."""


class DeliveryError(RuntimeError):
    """The robot refused or could not be reached; the dispatcher retries with backoff."""


class Unreachable(DeliveryError):
    """No answer at all (refused, timed out, a bad URL): the robot's other deliveries wait too."""


class Throttled(DeliveryError):
    """The robot's own rate limit answered: retried after its window, not counted as a try."""


@dataclass(frozen=True)
class Message:
    order_id: str
    subject: str
    text: str
    mention: str | None = None  # the robot's user id of the person to @-mention
    mobile: str | None = None  # or their mobile, where the robot @-mentions by mobile

    @property
    def content(self) -> str:
        return f"【{self.subject}】\n{self.text}"


class WebhookChannel:
    """POSTs one message to a group robot (`flavour`) or, as `webhook`, a plain JSON hook."""

    def __init__(
        self,
        url: str,
        flavour: str = "wecom",
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if flavour not in (*FLAVOURS, "webhook"):
            raise ValueError(f"notification flavour {flavour!r} must be one of {FLAVOURS}")
        self.url = url
        self.flavour = flavour
        self.name = f"webhook:{flavour}"
        self._secret = secret
        self._timeout = timeout
        self._client = client

    def body(self, message: Message, now: float | None = None) -> dict[str, Any]:
        if self.flavour == "webhook":
            return {
                "order_id": message.order_id,
                "subject": message.subject,
                "text": message.text,
                "mention": message.mention,
                "mobile": message.mobile,
            }
        if self.flavour == "feishu":
            return self._feishu(message, now)
        text: dict[str, Any] = {"content": message.content}
        if self.flavour == "wecom":
            if message.mention:
                text["mentioned_list"] = [message.mention]
            if message.mobile:
                text["mentioned_mobile_list"] = [message.mobile]
            return {"msgtype": "text", "text": text}
        if message.mobile:  # DingTalk shows the @ only when the content carries it
            text["content"] += f"\n@{message.mobile}"
        return {
            "msgtype": "text",
            "text": text,
            "at": {
                "atMobiles": [message.mobile] if message.mobile else [],
                "atUserIds": [message.mention] if message.mention else [],
                "isAtAll": False,
            },
        }

    def _feishu(self, message: Message, now: float | None) -> dict[str, Any]:
        at = f'<at user_id="{message.mention}"></at> ' if message.mention else ""
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": at + message.content}}
        if self._secret:
            stamp = str(int(now if now is not None else time.time()))
            key = f"{stamp}\n{self._secret}".encode()
            sign = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            body |= {"timestamp": stamp, "sign": sign}
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

    def _headers(self, data: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.flavour == "webhook" and self._secret:
            digest = hmac.new(self._secret.encode(), data, hashlib.sha256).hexdigest()
            headers["X-Orderflow-Signature"] = f"sha256={digest}"
        return headers

    async def send(self, message: Message) -> None:
        data = json.dumps(self.body(message), ensure_ascii=False).encode()
        try:
            if self._client is not None:
                response = await self._client.post(
                    self.target(), content=data, headers=self._headers(data), timeout=self._timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.post(
                        self.target(), content=data, headers=self._headers(data)
                    )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # the URL (a key) stays out of it
            raise Unreachable(f"{self.name} unreachable: {type(exc).__name__}") from None
        self._check(response)

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            raise Throttled(f"{self.name} answered HTTP 429")
        if response.status_code >= 400:
            raise DeliveryError(f"{self.name} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            return  # a 2xx without JSON: accepted
        if not isinstance(answer, dict):
            return
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code in (0, None):
            return
        message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage")
        error = Throttled if code in THROTTLED.get(self.flavour, ()) else DeliveryError
        raise error(f"{self.name} refused the message: {code} {message}")
