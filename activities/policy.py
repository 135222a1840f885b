"""Loads the policy: defaults, then the policy file, then environment overrides.

The file is TOML (`ORDERFLOW_POLICY`, default `policy.toml` in the working directory when it
exists). Any value can be overridden from the environment with a path of keys separated by
double underscores, for example::

    ORDERFLOW_POLICY__goods__deadlines__prepare__minutes=25
    ORDERFLOW_POLICY__service__auto_confirm=true
    ORDERFLOW_POLICY__receive__hard_minutes=4

`[deadlines.<clause>]` at the top of the file applies to both order types; a
`[goods.deadlines.<clause>]` or `[service.deadlines.<clause>]` table applies to one.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio import activity

from infra.settings import POLICY_PREFIX, settings
from schemas.policy import Policy, merged_terms

ORDER_TYPES = ("goods", "service")


class PolicyError(ValueError):
    """The policy file or an override is not valid; the message says which."""


def _scalar(text: str) -> Any:
    """Environment values are JSON where they parse (numbers, booleans), strings otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _from_env(overrides: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in overrides.items():
        if not name.startswith(POLICY_PREFIX):
            continue
        path = name[len(POLICY_PREFIX) :].lower().split("__")
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _scalar(value)
    return tree


def _spread_shared_deadlines(raw: dict[str, Any]) -> dict[str, Any]:
    """A top-level `deadlines` table is the default for both order types."""
    shared = raw.pop("deadlines", None)
    if not shared:
        return raw
    for order_type in ORDER_TYPES:
        own = raw.get(order_type, {}).get("deadlines", {})
        raw.setdefault(order_type, {})["deadlines"] = merged_terms(shared, own)
    return raw


def build_policy(
    file: Path | None, overrides: Mapping[str, str], platform_task_queue: str | None = None
) -> Policy:
    """Defaults, then `file`, then `overrides` (`ORDERFLOW_POLICY__<path>` variables, others
    ignored). `platform_task_queue` (`ORDERFLOW_PLATFORM_TASK_QUEUE`) is in the snapshot
    because the workflow routes the merchant API calls by it; the platform workers read it
    alike."""
    raw: dict[str, Any] = Policy().model_dump(mode="json")
    if file is not None:
        try:
            from_file = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise PolicyError(f"policy file {file}: {err}") from err
        raw = merged_terms(raw, _spread_shared_deadlines(from_file))
    raw = merged_terms(raw, _spread_shared_deadlines(_from_env(overrides)))
    if platform_task_queue:
        raw["platform_task_queue"] = platform_task_queue
    try:
        return Policy.model_validate(raw)
    except ValueError as err:
        raise PolicyError(f"invalid policy: {err}") from err


def policy_file(named: Path | None) -> Path | None:
    """`named` (`ORDERFLOW_POLICY`), else `policy.toml` in the working directory if it exists."""
    if named is not None:
        return named
    default = Path("policy.toml")
    return default if default.exists() else None


def current_policy() -> Policy:
    """The policy as configured now: the file is read again, so an edit applies to new orders."""
    configured = settings().policy
    return build_policy(
        policy_file(configured.file), configured.overrides, configured.platform_task_queue
    )


@activity.defn
async def load_policy() -> Policy:
    """The snapshot an order takes when it starts; later policy changes apply to new orders."""
    return current_policy()
