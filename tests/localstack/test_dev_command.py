"""`orderctl dev`: the whole local stack comes up, answers, and Ctrl-C stops all of it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx


async def test_orderctl_dev_starts_the_stack_and_stops_on_ctrl_c(reachable_tmp: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_CODEC")}
    environ["ORDERFLOW_DATA_DIR"] = str(reachable_tmp)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starter.cli", "dev", "--fresh",
        env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not any("ready; Ctrl-C" in line for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, "orderctl dev ended early:\n" + "".join(lines)
                lines.append(line)
        gateway = next(line for line in lines if "gateway http" in line)
        url = gateway.split("gateway ")[1].split(",")[0]
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            rest = (await process.stdout.read()).decode()
            assert await process.wait() == 0, rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
