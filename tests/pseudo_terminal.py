"""A command run as a person runs it: its stdout and stderr on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def on_a_terminal(command: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """What the command wrote to the terminal, once it exited."""
    leader, follower = pty.openpty()
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    run.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()
