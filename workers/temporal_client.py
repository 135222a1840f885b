"""One way to reach Temporal for every process: workers, gateway, CLI, demo."""

from __future__ import annotations

import os
from collections.abc import Mapping

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

TASK_QUEUE = "orders"


def _tls(environ: Mapping[str, str]) -> TLSConfig | bool:
    cert, key = environ.get("TEMPORAL_TLS_CERT"), environ.get("TEMPORAL_TLS_KEY")
    if cert and key:
        with open(cert, "rb") as c, open(key, "rb") as k:
            return TLSConfig(client_cert=c.read(), client_private_key=k.read())
    return bool(environ.get("TEMPORAL_API_KEY")) or environ.get("TEMPORAL_TLS") == "true"


async def connect_client(
    environ: Mapping[str, str] | None = None, runtime: Runtime | None = None
) -> Client:
    """TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default "default"),
    and for Temporal Cloud or a TLS cluster TEMPORAL_API_KEY or TEMPORAL_TLS_CERT/KEY."""
    env = os.environ if environ is None else environ
    return await Client.connect(
        env.get("TEMPORAL_ADDRESS", "localhost:7233"),
        namespace=env.get("TEMPORAL_NAMESPACE", "default"),
        api_key=env.get("TEMPORAL_API_KEY") or None,
        tls=_tls(env),
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
