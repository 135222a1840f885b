"""A group robot on 127.0.0.1 playing WeCom's robot API (`/cgi-bin/webhook/send?key=...`): it
records each POST, answers from a script, enforces its own rate with WeCom's 45009 answer, and
can be stopped and started again on the same port."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

RATE_LIMITED = {"errcode": 45009, "errmsg": "api freq out of limit"}


class Robot:
    def __init__(self, *, limit: int | None = None, window_s: float = 60.0) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.refused_for_rate = 0
        self._limit, self._window = limit, window_s
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()
        self.port = 0
        self._start()
        self.url = f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key=k"

    def _answer(self, received: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.answers:
                return self.answers.pop(0)
            now = time.monotonic()
            while self._accepted and self._accepted[0] <= now - self._window:
                self._accepted.popleft()
            if self._limit is not None and len(self._accepted) >= self._limit:
                self.refused_for_rate += 1
                return 200, RATE_LIMITED
            self._accepted.append(now)
            received["accepted_at"] = now
            self.received.append(received)
            return 200, {"errcode": 0, "errmsg": "ok"}

    def _start(self) -> None:
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                parts = urlsplit(self.path)
                received = {
                    "path": parts.path,
                    "query": parse_qs(parts.query),
                    "headers": dict(self.headers),
                    "body": json.loads(self.rfile.read(length)),
                }
                status, answer = robot._answer(received)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def start(self) -> None:
        """Again on the same port: the robot came back."""
        self._start()

    def most_in_a_window(self) -> int:
        """The most messages accepted within any one window."""
        times = sorted(r["accepted_at"] for r in self.received)
        best, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= self._window:
                first += 1
            best = max(best, last - first + 1)
        return best


@pytest.fixture
def robot() -> Iterator[Robot]:
    """A robot for one test, stopped after it."""
    r = Robot()
    try:
        yield r
    finally:
        r.stop()
