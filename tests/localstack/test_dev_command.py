"""`orderctl dev`: the whole local stack comes up, answers, and Ctrl-C stops all of it: no
process it started (the embedded PostgreSQL, the Temporal dev server) outlives it, also when
it is stopped while starting, and the JSON log is in its data folder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from infra.logging import get_logger
from localstack.dev import LOG_FILE, log_to, stack_options
from localstack.devstack import SIMULATOR_IDS_FILE
from starter.cli.entry import build_parser
from tests.infra.test_log_console import restored as restored


def processes_mentioning(folder: Path) -> list[str]:
    """`pid command line` of every process whose command line names `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(f"{entry.name} {cmdline}")
    return found


async def none_left(folder: Path, within_s: float = 5.0) -> list[str]:
    """The processes still naming `folder` after `within_s` (a stopped child may take a moment
    to be reaped)."""
    for _ in range(round(within_s / 0.2)):
        if not processes_mentioning(folder):
            return []
        await asyncio.sleep(0.2)
    return processes_mentioning(folder)


class Dev:
    """`orderctl dev` in a subprocess with its own data folder, on free ports."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def until(self, seen: Callable[[str], bool], within_s: float = 120) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(within_s):
            while True:
                line = (await self.process.stdout.readline()).decode()
                assert line, "orderctl dev ended early:\n" + "".join(self.lines)
                self.lines.append(line)
                if seen(line):
                    return line

    async def stop(self, signum: int, within_s: float = 60) -> tuple[int, str]:
        assert self.process.stdout is not None
        self.process.send_signal(signum)
        async with asyncio.timeout(within_s):
            rest = (await self.process.stdout.read()).decode()
            return await self.process.wait(), rest


@asynccontextmanager
async def orderctl_dev(data: Path, *args: str) -> AsyncIterator[Dev]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_CODEC")}
    environ.pop("DATABASE_URL", None)  # the embedded server, in `data`
    environ.pop("ORDERFLOW_DEV", None)  # as a newcomer runs it: the stack says it is local
    environ["ORDERFLOW_DATA_DIR"] = str(data)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starter.cli", "dev", "--fresh", "--free-ports", *args,
        env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield Dev(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def gone_pid() -> int:
    """The id of a process that has ended, as one left by an `orderctl` killed or ended by
    `os._exit` without taking itself off the embedded server's holders."""
    with subprocess.Popen(["true"]) as child:
        child.wait()
        return child.pid


async def test_orderctl_dev_starts_the_stack_and_ctrl_c_leaves_no_process(
    reachable_tmp: Path,
) -> None:
    async with orderctl_dev(reachable_tmp) as dev:
        await dev.until(lambda line: "ready; Ctrl-C" in line)
        assert any(
            str(reachable_tmp) in p and "postgres" in p for p in processes_mentioning(reachable_tmp)
        ), "the embedded PostgreSQL runs from the data folder"
        holders = reachable_tmp / "pg" / ".handle_pids.json"
        holders.write_text(json.dumps([*json.loads(holders.read_text()), gone_pid()]))
        gateway = next(line for line in dev.lines if "gateway http" in line)
        url, sim_url = gateway.split("gateway ")[1].split(", simulator ")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
            # An order in flight at Ctrl-C; its id is kept for the next start (the same folder).
            created = await client.post(f"{sim_url.strip()}/sim/orders", json={})
            order_id = created.json()["order_id"]
        kept = json.loads((reachable_tmp / "dev" / SIMULATOR_IDS_FILE).read_text())
        assert kept["last_order_id"] == order_id
        code, rest = await dev.stop(signal.SIGINT)
        assert code == 0, rest
    assert "Traceback" not in "".join(dev.lines) + rest
    assert not await none_left(reachable_tmp), "".join(dev.lines) + rest
    log = reachable_tmp / "dev" / "orderflow.jsonl"
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "ready; Ctrl-C stops everything" in events and "stopped" in events


async def test_sigterm_while_starting_stops_what_was_started(reachable_tmp: Path) -> None:
    async with orderctl_dev(reachable_tmp) as dev:
        await dev.until(lambda line: "database orderflow ready" in line)
        code, rest = await dev.stop(signal.SIGTERM)
        assert code == 0, "".join(dev.lines) + rest
    assert "stopped before it was ready" in rest and "Traceback" not in rest
    assert not await none_left(reachable_tmp), "".join(dev.lines) + rest


async def test_an_error_while_starting_stops_what_was_started(reachable_tmp: Path) -> None:
    """The worker's policy file is read last: Temporal and PostgreSQL are up by then."""
    async with orderctl_dev(reachable_tmp, "--policy", str(reachable_tmp / "none.toml")) as dev:
        async with asyncio.timeout(120):
            assert await dev.process.wait() == 1
        assert dev.process.stdout is not None
        console = (await dev.process.stdout.read()).decode()
    assert "stopping the Temporal dev server" in console
    [failed] = [line for line in console.splitlines() if "the stack stopped on an error" in line]
    assert 'error="PolicyError: policy file' in failed and "Traceback" not in console
    assert not await none_left(reachable_tmp), console
    log = [json.loads(line) for line in (reachable_tmp / "dev" / LOG_FILE).read_text().splitlines()]
    [record] = [r for r in log if r["event"] == "the stack stopped on an error"]
    assert "Traceback" in record["exception"]


@pytest.mark.parametrize("json_logs", [False, True])
def test_the_console_is_readable_unless_json_logs(
    json_logs: bool, restored: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["dev", "--free-ports", *(["--json-logs"] * json_logs)])
    assert args.json_logs is json_logs and args.free_ports
    assert stack_options(free_ports=True).gateway_port is None
    assert log_to(tmp_path, json_logs=json_logs) == tmp_path / LOG_FILE
    try:
        raise RuntimeError("the gateway is not healthy")
    except RuntimeError:
        get_logger("starter.gateway").exception("start failed", port=8080)
    [line] = capsys.readouterr().err.splitlines()
    in_file = json.loads((tmp_path / LOG_FILE).read_text())
    assert "Traceback" in in_file["exception"]
    if json_logs:
        assert json.loads(line)["exception"] == in_file["exception"]
    else:
        assert line.endswith(
            'start failed port=8080 error="RuntimeError: the gateway is not healthy"'
        )
