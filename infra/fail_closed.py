"""A process outside the local stack does not start on the public development secrets.

The defaults make the local stack run with nothing set: the simulator's app secret, payloads in
plaintext, a codec server without a token on loopback (`starter/codec_server.py`). Anywhere
else those would let anyone sign pushes, or read customers' names, phones and addresses in
Temporal's histories. So each process checks, before it starts, what it would rely on, unless
`ORDERFLOW_DEV` says this is the local stack, and names every variable to set.
"""

from __future__ import annotations

from enum import StrEnum

from infra import tracing
from infra.settings import DEFAULT_APP_SECRET, DEFAULT_CUSTOMER_KEY, Settings, SettingsError


class Role(StrEnum):
    """What a process does, and so which secrets it relies on."""

    GATEWAY = "gateway"  # verifies pushes, starts workflows with their payloads
    WORKER = "worker"  # signs platform calls, writes payloads to histories
    API = "api"  # sends people's actions to workflows
    MIGRATIONS = "migration runner"  # re-keys customer ids (migration 0020, rotation)


_PLATFORM = "MEITUAN_APP_SECRET (unset or the public development secret: anyone could sign)"
_KEYS = "ORDERFLOW_CODEC_KEYS (unset: customers' data would reach Temporal in plaintext)"
_CUSTOMERS = (
    "ORDERFLOW_CUSTOMER_KEY (unset or the public development key: anyone could tell a "
    "customer's phone from their id)"
)


def _worker_uses(configured: Settings) -> tuple[bool, bool]:
    """Whether a worker signs platform calls, and whether it computes customer ids, by its
    ORDERFLOW_WORKER_ROLES (unset: every role): the workflows' worker records orders (their
    database steps are its local activities) but calls no platform; the notifications'
    dispatcher does neither, and is not given those secrets (compose)."""
    roles = set(configured.worker.roles) or {"activities", "platform"}
    return bool(roles & {"activities", "platform"}), bool(roles & {"activities", "workflows"})


def missing(configured: Settings, role: Role) -> list[str]:
    """What `role` would rely on that is unset or public; empty in the local stack."""
    if configured.deployment.dev:
        return []
    secret = configured.meituan.app_secret
    customer_key = configured.business.customer_key
    signs, keys_customers = _worker_uses(configured) if role is Role.WORKER else (False, False)
    needs = {
        _PLATFORM: (role is Role.GATEWAY or signs) and (not secret or secret == DEFAULT_APP_SECRET),
        _KEYS: role is not Role.MIGRATIONS and not configured.codec.keys,
        _CUSTOMERS: (role is Role.MIGRATIONS or keys_customers)
        and (not customer_key or customer_key == DEFAULT_CUSTOMER_KEY),  # R1.3
    }
    return [what for what, lacking in needs.items() if lacking]


def require(configured: Settings, role: Role) -> None:
    """`SettingsError` naming each variable to set, outside the local stack, or the extra
    that tracing asked for needs (anywhere)."""
    tracing.check(configured)
    lacking = missing(configured, role)
    if lacking:
        raise SettingsError(
            f"the {role} does not start on development defaults outside the local stack; "
            f"set {'; '.join(lacking)}. For the local stack only, set ORDERFLOW_DEV=1."
        )
