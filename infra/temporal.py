"""One way to reach Temporal for every process: workers, gateway, CLI, demo.

Being the one place, it is also where payload encryption is applied (`infra.codec`): every
process that writes to or reads from Temporal encrypts and decrypts alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from infra.codec import ENV_KEYS, codec_from_env
from infra.codec import data_converter as _converter
from infra.settings import DEFAULT_TEMPORAL_ADDRESS, settings_for
from infra.tracing import temporal_interceptors

RETENTION = timedelta(days=30)
"""How long the namespace keeps a closed order's workflow: the dev stack sets it, compose's
Temporal is created with it. Longer than the feedback window and the platform's after-sales
pushes we have seen; a push past it is answered from the system of record all the same."""

log = logging.getLogger("orderflow.codec")


def data_converter(
    environ: Mapping[str, str] | None = None, *, namespace: str | None = None
) -> DataConverter:
    """The pydantic converter, encrypting when ORDERFLOW_CODEC_KEYS is set (payloads bound to
    `namespace`, the one the client uses); logs which, so every process says at startup
    whether its payloads are encrypted. A malformed key list raises `CodecConfigError`."""
    codec = codec_from_env(environ, namespace=namespace)
    if codec is None:
        log.info(
            "payload codec off (%s unset): Temporal histories hold payloads, customer data "
            "included, in plaintext; acceptable for local development only",
            ENV_KEYS,
        )
    else:
        log.info(
            "payload codec on: AES-256-GCM, encrypting with key %r, decrypting keys %s",
            codec.encrypting_key_id,
            ", ".join(codec.key_ids),
        )
    return _converter(codec)


def client_config(
    environ: Mapping[str, str] | None = None,
    *,
    address: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The SDK's environment configuration from `settings().temporal` (or `environ`'s):
    TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE, and for Temporal Cloud or a
    TLS cluster TEMPORAL_API_KEY or TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH;
    `address` and `namespace` win over them, as those variables would."""
    temporal = settings_for(environ).temporal
    config: dict[str, Any] = dict(
        ClientConfig.load_client_connect_config(override_env_vars=dict(temporal.environ))
    )
    config.setdefault("target_host", DEFAULT_TEMPORAL_ADDRESS)
    if address is not None:
        config["target_host"] = address
    if namespace is not None:
        config["namespace"] = namespace
    return config


async def connect_client(
    environ: Mapping[str, str] | None = None,
    *,
    runtime: Runtime | None = None,
    lazy: bool = False,
    address: str | None = None,
    namespace: str | None = None,
) -> Client:
    """A client as `client_config` describes, encrypting payloads when ORDERFLOW_CODEC_KEYS is
    set, traced when OTEL_EXPORTER_OTLP_ENDPOINT is (`infra.tracing`: its workers too). `lazy`
    connects on first use, so a process can start while Temporal is down."""
    config = client_config(environ, address=address, namespace=namespace)
    converter = data_converter(environ, namespace=config.get("namespace"))
    return await Client.connect(
        **config,
        data_converter=converter,
        runtime=runtime,
        lazy=lazy,
        interceptors=temporal_interceptors(environ),
    )
