"""The local stack picks free ports and the dev server binds them a moment later: a port taken
in between starts the server again on others, not a failed stack (a loaded full run met it)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from localstack import devstack, ports


@pytest.mark.parametrize("taken_as", ["web", "http"])
async def test_a_port_taken_before_the_server_binds_it_starts_it_on_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_as: str
) -> None:
    """The Web UI's port, or the HTTP API's (which the dev server once picked itself, and
    crashed on when it was taken)."""
    taken = socket.socket()
    taken.bind((ports.LOOPBACK, 0))
    taken.listen()
    occupied = taken.getsockname()[1]
    picked: list[devstack._Ports] = []
    real_ports = devstack._ports

    def ports_one_taken(port: int | None, ui_port: int | None, headless: bool) -> devstack._Ports:
        ports = real_ports(port, ui_port, headless)
        # The first pick gives a port another process took after it was seen free.
        picked.append(ports._replace(**{taken_as: occupied}) if not picked else ports)
        return picked[-1]

    monkeypatch.setattr(devstack, "_ports", ports_one_taken)
    said: list[str] = []
    with taken:
        async with devstack.temporal_dev_server(
            tmp_path, fresh=True, port=None, ui_port=None, say=said.append
        ) as server:
            assert len(picked) == 2 and getattr(picked[0], taken_as) == occupied
            assert server.address.endswith(f":{picked[1].grpc}")
            assert server.ui_url == f"http://localhost:{picked[1].web}"
    assert any("taken meanwhile" in line for line in said), said


def test_the_dev_servers_crash_on_a_taken_http_port_is_read_as_a_port_race() -> None:
    """The head of the log of a start that met it (four starts at a time: 1 of 120)."""
    crashed = (Path(__file__).parent / "dev-server-http-port-crash.log").read_text()
    assert ports.port_race(crashed) is not None
    assert ports.port_race("Error: unknown flag: --nope") is None


async def test_a_server_that_fails_otherwise_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a taken port is tried again: any other failure stops at once, with the log's tail."""
    starts: list[list[str]] = []
    real_args = devstack._start_dev_args

    def bad_flag(*args: object) -> list[str]:
        made = [*real_args(*args), "--log-level", "not-a-level"]  # type: ignore[arg-type]
        starts.append(made)
        return made

    monkeypatch.setattr(devstack, "_start_dev_args", bad_flag)
    with pytest.raises(devstack.StackError, match="exited while starting") as failed:
        async with devstack.temporal_dev_server(tmp_path, fresh=True, port=None, headless=True):
            pass
    assert len(starts) == 1
    assert "temporal.log ---" in str(failed.value)


async def test_a_server_of_this_process_binds_a_free_port_itself() -> None:
    """No port is picked for it ahead of time, so none can be taken in between."""
    with socket.socket() as held:
        held.bind((ports.LOOPBACK, 0))
        held.listen()
        assert ports.port_to_bind(held.getsockname()[1]) == 0  # taken: any
    assert ports.port_to_bind(None) == 0
    async with devstack.simulator(port=None) as running:
        assert not running.url.endswith(":0") and running.url.rsplit(":", 1)[1].isdigit()
