"""The local stack's codec server, so its Web UI shows encrypted payloads decoded.

With ORDERFLOW_CODEC_KEYS set the workers encrypt every payload; the dev server's UI is started
with `--ui-codec-endpoint` pointing here, and this server (the same app as
`python -m starter.codec_server --no-auth`) decodes for the UI's origin only. No sign-in: it
listens on loopback in the local stack alone, as `starter.codec_server` allows `--no-auth`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from temporalio.converter import PayloadCodec

from localstack.simulator import BackgroundServer
from starter.codec_server import create_app

DEFAULT_CODEC_PORT = 8081


@dataclass(frozen=True)
class LocalCodec:
    codec: PayloadCodec
    host: str
    """A loopback address: nobody signs in."""
    port: int

    @property
    def url(self) -> str:
        """What the dev server's UI is given (`--ui-codec-endpoint`)."""
        return f"http://{self.host}:{self.port}"

    def ui_origins(self, ui_url: str) -> list[str]:
        """The UI as a browser names it: by `localhost` (the link printed) or by address."""
        return sorted({ui_url, ui_url.replace("//localhost:", f"//{self.host}:")})


@contextlib.asynccontextmanager
async def codec_server(
    local: LocalCodec, ui_url: str, say: Callable[[str], None]
) -> AsyncIterator[str]:
    """Serving `local.codec` for the UI at `ui_url`; yields the server's URL."""
    app = create_app(local.codec, origins=local.ui_origins(ui_url))
    async with BackgroundServer(app, host=local.host, port=local.port) as server:
        say(f"codec server at {server.url}: the Web UI decodes through it (no sign-in, loopback)")
        try:
            yield server.url
        finally:
            say("stopping the codec server")
