"""The supervisor with real processes: a SIGKILLed child is restarted, SIGTERM stops all, and a
SIGKILLed supervisor leaves no orphan (children get SIGTERM through PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

SCRIPT = """
import logging, sys
from leadsync.tasks.supervise import Supervisor
logging.basicConfig(level=logging.INFO)
child = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(120)"]
sys.exit(Supervisor({"a": child, "b": child}).run())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def children(out: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = [int(x) for x in out.read_text().split()] if out.exists() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.1)
    pytest.fail(f"expected {count} child pids, got {out.read_text() if out.exists() else ''}")


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "pids"
    with out.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=fh,
                                stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
    return proc, out


def test_killed_child_restarted_and_sigterm_stops_everything(tmp_path: Path) -> None:
    sup, out = start(tmp_path)
    first = children(out, 2)
    os.kill(first[1], signal.SIGKILL)
    pids = children(out, 3)  # restarted after 1 s
    assert pids[:2] == first and alive(pids[2]) and alive(pids[0])
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=20) == 0
    assert not alive(pids[0]) and not alive(pids[2])


def test_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    sup, out = start(tmp_path)
    pids = children(out, 2)
    sup.kill()
    sup.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [alive(p) for p in pids] == [False, False]
