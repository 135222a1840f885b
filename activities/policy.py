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
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio import activity

from schemas.policy import Policy

ENV_PREFIX = "ORDERFLOW_POLICY__"
ORDER_TYPES = ("goods", "service")


class PolicyError(ValueError):
    """The policy file or an override is not valid; the message says which."""


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _scalar(text: str) -> Any:
    """Environment values are JSON where they parse (numbers, booleans), strings otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
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
        raw.setdefault(order_type, {})["deadlines"] = _merge(shared, own)
    return raw


PLATFORM_TASK_QUEUE_ENV = "ORDERFLOW_PLATFORM_TASK_QUEUE"
"""Read by the workflow workers (the snapshot routes the calls) and the platform workers alike."""


def build_policy(file: Path | None, environ: Mapping[str, str]) -> Policy:
    raw: dict[str, Any] = Policy().model_dump(mode="json")
    if file is not None:
        try:
            from_file = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise PolicyError(f"policy file {file}: {err}") from err
        raw = _merge(raw, _spread_shared_deadlines(from_file))
    raw = _merge(raw, _spread_shared_deadlines(_from_env(environ)))
    platform_queue = environ.get(PLATFORM_TASK_QUEUE_ENV, "").strip()
    if platform_queue:
        raw["platform_task_queue"] = platform_queue
    try:
        return Policy.model_validate(raw)
    except ValueError as err:
        raise PolicyError(f"invalid policy: {err}") from err


def policy_file(environ: Mapping[str, str]) -> Path | None:
    named = environ.get("ORDERFLOW_POLICY")
    if named:
        return Path(named)
    default = Path("policy.toml")
    return default if default.exists() else None


def current_policy() -> Policy:
    return build_policy(policy_file(os.environ), os.environ)


@activity.defn
async def load_policy() -> Policy:
    """The snapshot an order takes when it starts; later policy changes apply to new orders."""
    return current_policy()
