"""One way to reach Temporal for every process: workers, gateway, CLI, demo."""

from __future__ import annotations

import os
from collections.abc import Mapping

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

TASK_QUEUE = "orders"


async def connect_client(
    environ: Mapping[str, str] | None = None,
    *,
    runtime: Runtime | None = None,
    lazy: bool = False,
) -> Client:
    """The SDK's environment configuration: TEMPORAL_ADDRESS (default localhost:7233),
    TEMPORAL_NAMESPACE, and for Temporal Cloud or a TLS cluster TEMPORAL_API_KEY or
    TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH. `lazy` connects on first use,
    so a process can start while Temporal is down."""
    config = ClientConfig.load_client_connect_config(
        override_env_vars=dict(os.environ if environ is None else environ)
    )
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(
        **config, data_converter=pydantic_data_converter, runtime=runtime, lazy=lazy
    )
