"""Serving an ASGI app on loopback inside the current event loop (tests, `orderctl dev`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from localstack.simulator.app import create_app
from localstack.simulator.business import Business
from localstack.simulator.engine import Simulator
from localstack.simulator.state import SimConfig
from meituan.client import MeituanClient

STARTUP_S = 10.0


class _EmbeddedServer(uvicorn.Server):
    """Leaves signal handling to the host process (a test runner or a launcher)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class BackgroundServer:
    """An app served by uvicorn as a task of the running loop; port 0 picks a free port."""

    def __init__(
        self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        # log_config=None: in-process, the host's logging stays as the host configured it.
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, lifespan="on", log_config=None
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        """Serving once this returns; interrupted or failed, the server is stopped (a stack
        stopped while starting leaves no server behind)."""
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        try:
            async with asyncio.timeout(STARTUP_S):
                while not self._server.started:
                    if self._task.done():
                        self._task.result()
                        raise RuntimeError("server stopped before it started")
                    await asyncio.sleep(0.01)
        except BaseException:
            await self._abandon()
            raise
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self.url

    async def _abandon(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True  # served by now, it shuts down as on `stop`
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task}, timeout=STARTUP_S)
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # seen: the start's own error is the one raised

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


@dataclass
class RunningSimulator:
    sim: Simulator
    url: str
    """Root of the server, e.g. `http://127.0.0.1:40123`."""

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/api/v1/"

    def client(self, **kwargs: object) -> MeituanClient:
        """A client with the simulator's URL and credentials (override any by keyword)."""
        options: dict[str, object] = {
            "base_url": self.api_base_url,
            "app_id": self.sim.config.app_id,
            "secret": self.sim.config.secret,
        }
        options.update(kwargs)
        return MeituanClient(**options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serve_simulator(
    config: SimConfig | None = None,
    business: Business | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[RunningSimulator]:
    """Run a simulator over real HTTP for the duration of the block."""
    sim = Simulator(config, business)
    async with BackgroundServer(create_app(sim), host=host, port=port) as server:
        yield RunningSimulator(sim=sim, url=server.url)
