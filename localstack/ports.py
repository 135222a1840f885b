"""Ports for the local stack's servers: free ones picked, and a start that met a taken one told
apart from one that failed otherwise."""

from __future__ import annotations

import socket
from typing import Final

LOOPBACK = "127.0.0.1"


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Free to listen on, as servers listen (SO_REUSEADDR): a server that just stopped leaves
    its port in TIME_WAIT, and a restart takes the same port again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def pick_port(preferred: int | None, host: str = LOOPBACK) -> int:
    """The well-known port when it is free (links people know keep working), else any free one.

    `None` asks for any free port, which tests use so that they never meet a running stack.
    """
    if preferred and port_is_free(preferred, host):
        return preferred
    return free_port(host)


def port_to_bind(preferred: int | None, host: str = LOOPBACK) -> int:
    """As `pick_port`, for a server of this process that binds at once: 0 when any port will
    do, so it binds a free one itself and nothing can take it in between."""
    if preferred and port_is_free(preferred, host):
        return preferred
    return 0


PORT_TAKEN: Final = "address already in use"
HTTP_API_CRASH: Final = "frontend.NewHTTPAPIServer"
"""How the dev server (CLI 1.9.1, server 1.32.0) ends when a port its HTTP API was given is taken
before it binds: a nil-pointer panic in this constructor, with no word of the port."""


def port_race(log: str) -> str | None:
    """What in a start's log says a port was taken between its pick and its bind, if anything."""
    if PORT_TAKEN in log:
        return PORT_TAKEN
    if HTTP_API_CRASH in log:
        return f"the HTTP API's listener: {HTTP_API_CRASH} panicked"
    return None
