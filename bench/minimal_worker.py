"""`python -m bench.minimal_worker`: the minimal order's worker as its own process, configured
from the environment as `python -m workers.main` is, so both pay for a process of their own."""

from __future__ import annotations

import asyncio
import signal

from temporalio.worker import Worker

from bench.minimal import MINIMAL_QUEUE, MinimalOrderWorkflow, minimal_step
from infra.logging import configure_logging
from infra.temporal import connect_client
from workers.main import tuning


async def serve() -> None:
    """Polls until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect_client()
    async with Worker(
        client,
        task_queue=MINIMAL_QUEUE,
        workflows=[MinimalOrderWorkflow],
        activities=[minimal_step],
        **tuning(),  # the order worker's settings
    ):
        await stop.wait()


def main() -> None:
    configure_logging()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
