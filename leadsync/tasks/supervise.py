"""`leadsync worker`'s supervisor: the Celery worker and beat as two child processes, each
restarted when it dies (docs/operations.md, "Scheduling").

Celery's embedded beat (`celery worker --beat`) is a child the worker never restarts: once it
died, nothing was scheduled again while the worker went on answering pings. Here beat is a
plain `celery beat` process and the supervisor restarts it (and the worker) after 1 s, doubling
the wait up to `MAX_DELAY_S` while a child keeps dying within `MIN_UPTIME_S` of its start.
SIGTERM/SIGINT/SIGQUIT are forwarded to the children (each runs in its own session, so a
terminal's Ctrl-C reaches them once, through here); the supervisor exits when both have, with
0 when it was asked to stop. A child gets SIGTERM when the supervisor itself dies (Linux).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("leadsync.supervise")

MIN_UPTIME_S = 30.0
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
POLL_S = 0.2
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    delay: float = FIRST_DELAY_S
    due: float = 0.0  # when a dead child is started again (monotonic)
    exits: list[int] = field(default_factory=list)


def _die_with_parent() -> None:
    """In the child, before exec: own session, and SIGTERM when the supervisor dies (Linux
    `PR_SET_PDEATHSIG`), so a killed supervisor leaves no orphaned worker or beat."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() == 1:  # the supervisor died before prctl took effect
            os._exit(1)


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, preexec_fn=_die_with_parent)  # noqa: S603, PLW1509


class Supervisor:
    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        spawn: Callable[[list[str]], subprocess.Popen[bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = [Child(name, list(argv)) for name, argv in commands.items()]
        self._spawn = spawn or _spawn
        self._clock = clock
        self.stopping: int | None = None  # the signal that asked us to stop

    def _start(self, child: Child) -> None:
        child.popen = self._spawn(child.argv)
        child.started = self._clock()
        log.info("supervisor started a child", extra={"child": child.name,
                                                      "pid": child.popen.pid,
                                                      "restarts": child.restarts})

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = signum
        for child in self.children:
            if child.popen is not None and child.popen.poll() is None:
                child.popen.send_signal(signum)

    def step(self) -> None:
        """One pass: notice dead children and (re)start those that are due."""
        now = self._clock()
        for child in self.children:
            if child.popen is not None:
                code = child.popen.poll()
                if code is None:
                    continue
                child.exits.append(code)
                child.popen = None
                if self.stopping is not None:
                    continue
                lived = now - child.started
                child.delay = FIRST_DELAY_S if lived >= MIN_UPTIME_S else min(
                    MAX_DELAY_S, child.delay * 2 if child.restarts else child.delay)
                child.due = now + child.delay
                log.error("supervised child exited: restarting it", extra={
                    "child": child.name, "exit_code": code, "lived_s": round(lived, 1),
                    "restart_in_s": child.delay})  # fmt: skip
                continue
            if self.stopping is None and now >= child.due:
                if child.exits:
                    child.restarts += 1
                self._start(child)

    def alive(self) -> bool:
        return any(c.popen is not None and c.popen.poll() is None for c in self.children)

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in FORWARDED}
        try:
            self.step()
            while self.stopping is None or self.alive():
                time.sleep(POLL_S)
                self.step()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("supervisor stopped", extra={"signal": self.stopping})
        return 0
