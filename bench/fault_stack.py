"""The fault run's machinery that fails: worker processes killed like machines die, Temporal
and PostgreSQL restarted in place, and the log of what was done when."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import LOCAL_STACK
from infra import database as db
from localstack.demo import POLICY_FILE
from localstack.devstack import Say, TemporalServer, die_with_parent, tail, temporal_dev_server


class DyingWorker:
    """`python -m workers.main` as a separate process, so it can be killed like a machine dies."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0
        self.killed = 0

    async def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.main",
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=die_with_parent(),
            )
        self.started += 1

    async def kill(self) -> None:
        """SIGKILL: no activity finishes, nothing is told; Temporal finds out by timeouts."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.kill()
        await self.process.wait()
        self.killed += 1

    async def ensure_running(self) -> None:
        """A worker that exited on its own (Temporal or the database gone too long) comes back."""
        if self.process is None or self.process.returncode is not None:
            await self.start()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            await self.kill()


class Replicas:
    """The workers as deployed: `per_role` processes of each role (ORDERFLOW_WORKER_ROLES), or
    one process with every role when `per_role` is 1. They fail one at a time, in turn, each
    back after a restart, so a role is never without a worker but always short of one."""

    ROLES = ("workflows", "activities")

    def __init__(self, env: dict[str, str], log_dir: Path, per_role: int) -> None:
        if per_role == 1:
            self.workers = [DyingWorker(env, log_dir / "worker.log")]
        else:
            self.workers = [
                DyingWorker(
                    {**env, "ORDERFLOW_WORKER_ROLES": role}, log_dir / f"worker-{role}-{n}.log"
                )
                for role in self.ROLES
                for n in range(1, per_role + 1)
            ]

    @property
    def killed(self) -> int:
        return sum(w.killed for w in self.workers)

    @property
    def started(self) -> int:
        return sum(w.started for w in self.workers)

    async def start(self) -> None:
        for worker in self.workers:
            await worker.start()

    async def ensure_running(self) -> None:
        for worker in self.workers:
            await worker.ensure_running()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))

    async def keep_killing(
        self,
        life_s: tuple[float, float],
        rng: random.Random,
        until: asyncio.Event,
        restart_s: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Every `life_s` one worker dies, the next in turn; it is back `restart_s` later."""
        turn = 0
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), rng.uniform(*life_s))
            if until.is_set():
                break
            worker = self.workers[turn % len(self.workers)]
            turn += 1
            await worker.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), rng.uniform(*restart_s))
            await worker.start()

    def tail(self) -> str:
        return "\n".join(f"{w.log_file.name}:\n{tail(w.log_file)}" for w in self.workers)


def worker_env(temporal: TemporalServer, dsn: str, api_base_url: str) -> dict[str, str]:
    """What an operator gives a worker (README, configuration): all of it from the environment."""
    return {
        **os.environ,
        **LOCAL_STACK,  # the simulator's secret, payloads in plaintext
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "DATABASE_URL": dsn,
        "MEITUAN_BASE_URL": api_base_url,
        "ORDERFLOW_POLICY": str(POLICY_FILE),
        "ORDERFLOW_LOG_LEVEL": "WARNING",
        "ORDERFLOW_SHUTDOWN_SECONDS": "5",
    }


# --- Temporal, restartable in place ---------------------------------------------------------------


class RestartableTemporal:
    """The dev server in its own exit stack, so it can be stopped and started again on the same
    port and state file while every client keeps its address."""

    def __init__(self, data_dir: Path, say: Say) -> None:
        self.data_dir = data_dir
        self.say = say
        self.server: TemporalServer | None = None
        self._stack = contextlib.AsyncExitStack()

    async def start(self, port: int | None = None) -> TemporalServer:
        self.server = await self._stack.enter_async_context(
            temporal_dev_server(self.data_dir, port=port, headless=True, say=self.say)
        )
        return self.server

    async def restart(self) -> None:
        assert self.server is not None
        port = int(self.server.address.rsplit(":", 1)[1])
        await self.stop()
        server = await self.start(port)
        if server.address != f"{server.address.rsplit(':', 1)[0]}:{port}":
            raise RuntimeError(f"Temporal came back on {server.address}, not port {port}")

    async def stop(self) -> None:
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()


@contextlib.asynccontextmanager
async def restartable_temporal(data_dir: Path, say: Say) -> AsyncIterator[RestartableTemporal]:
    temporal = RestartableTemporal(data_dir, say)
    await temporal.start()
    try:
        yield temporal
    finally:
        await temporal.stop()


# --- the faults on a timeline ------------------------------------------------------------------


@dataclass
class Chaos:
    """What was done to the stack, and when (seconds into the day)."""

    events: list[tuple[float, str]] = field(default_factory=list)

    def log(self, at: float, what: str, say: Say) -> None:
        self.events.append((round(at, 1), what))
        say(f"t+{at:.0f}s  FAULT: {what}")


async def restart_temporal_at(
    at_s: float, temporal: RestartableTemporal, chaos: Chaos, began: float, say: Say
) -> None:
    await asyncio.sleep(max(0.0, at_s - (time.monotonic() - began)))
    chaos.log(time.monotonic() - began, "Temporal dev server stopped", say)
    await temporal.restart()
    chaos.log(time.monotonic() - began, "Temporal dev server back (same state file)", say)


async def restart_postgres_at(
    at_s: float, pgdata: Path, chaos: Chaos, began: float, say: Say
) -> None:
    await asyncio.sleep(max(0.0, at_s - (time.monotonic() - began)))
    chaos.log(time.monotonic() - began, "PostgreSQL restarting (every connection cut)", say)
    await asyncio.to_thread(db.restart_embedded, pgdata, mode="immediate")
    chaos.log(time.monotonic() - began, "PostgreSQL back", say)
