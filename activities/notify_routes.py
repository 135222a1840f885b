"""Where a person is reached (`notify_routes`, migration 0016), decided when a notification is
written, and how a route is found again when the dispatcher sends.

A person with a URL of their own (a robot or a webhook) is reached there; a person with only a
user id or a mobile is @-mentioned on their department's robot, else their store's, else the
default robot (ORDERFLOW_NOTIFY_WEBHOOK). Nobody reachable: the inbox alone. Customers are
never sent to a staff robot: what they are told goes to ORDERFLOW_CUSTOMER_WEBHOOK (an SMS
provider's, with their number, looked up when sending) or stays on the order's record
(R2.2.4, R3.4.1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from infra.database import Conn
from infra.settings import settings
from schemas.notices import Audience, Language

DEFAULT, CUSTOMER = "default", "customer"
KINDS = ("wecom", "dingtalk", "feishu", "webhook")


def channel_key(kind: str, url: str) -> str:
    """The robot a route posts to, without its key: robot URLs are secrets."""
    return f"{kind}:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Route:
    """One delivery of a notification: where, and whom to @-mention there."""

    name: str  # person:<staff_id>, department:<code>, store:<code> or default
    kind: str
    channel_key: str
    mention: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class Target:
    """What the dispatcher needs to post: looked up when sending, so a URL is never copied."""

    kind: str
    url: str
    secret: str | None


@dataclass(frozen=True)
class Reach:
    routes: list[Route]
    language: Language


async def reach(conn: Conn, audience: Audience, recipient: str | None, store_code: str) -> Reach:
    default_language = Language(settings().notify.language)
    if audience is Audience.CUSTOMER:
        hook = settings().notify.customer_webhook
        routes = [Route(CUSTOMER, "webhook", channel_key("webhook", hook))] if hook else []
        return Reach(routes, default_language)
    person = None
    if recipient is not None:
        person = await conn.fetchrow(
            "SELECT * FROM notify_routes WHERE scope = 'person' AND owner = $1", recipient
        )
    language = Language(person["language"]) if person is not None else default_language
    mention = person["mention"] if person is not None else None
    mobile = person["mobile"] if person is not None else None
    if person is not None and person["url"]:
        route = Route(
            f"person:{recipient}",
            person["kind"],
            channel_key(person["kind"], person["url"]),
            mention,
            mobile,
        )
        return Reach([route], language)
    group = await _group(conn, recipient, store_code)
    if group is None:
        return Reach([], language)
    name, kind, url = group
    return Reach([Route(name, kind, channel_key(kind, url), mention, mobile)], language)


async def _group(conn: Conn, recipient: str | None, store_code: str) -> tuple[str, str, str] | None:
    """The recipient's department robot, else the store's, else the default one."""
    row = await conn.fetchrow(
        """
        SELECT r.scope, r.owner, r.kind, r.url FROM notify_routes r
        WHERE (r.scope = 'department'
               AND r.owner = (SELECT department FROM staff WHERE staff_id = $1))
           OR (r.scope = 'store' AND r.owner = $2)
        ORDER BY r.scope = 'department' DESC LIMIT 1
        """,
        recipient,
        store_code,
    )
    if row is not None:
        return f"{row['scope']}:{row['owner']}", row["kind"], row["url"]
    notify = settings().notify
    if notify.webhook is None:
        return None
    return DEFAULT, notify.flavour, notify.webhook


async def target(conn: Conn, route: str) -> Target | None:
    """Where `route` posts now; None when the route was removed since."""
    if route == CUSTOMER:
        notify = settings().notify
        if notify.customer_webhook is None:
            return None
        return Target("webhook", notify.customer_webhook, notify.customer_secret)
    if route == DEFAULT:
        notify = settings().notify
        if notify.webhook is None:
            return None
        return Target(notify.flavour, notify.webhook, notify.secret)
    scope, _, owner = route.partition(":")
    row = await conn.fetchrow(
        "SELECT kind, url, secret FROM notify_routes WHERE scope = $1 AND owner = $2",
        scope,
        owner,
    )
    if row is None or not row["url"]:
        return None
    return Target(row["kind"], row["url"], row["secret"])
