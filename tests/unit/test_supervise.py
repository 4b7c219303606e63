"""leadsync.tasks.supervise: dead children are restarted with backoff; stopping forwards the
signal and starts nothing more (fake processes and a fake clock)."""

from __future__ import annotations

import signal
from typing import Any

from leadsync.tasks.supervise import MAX_DELAY_S, Supervisor


class FakeProc:
    pids = iter(range(100, 10_000))

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.pid = next(self.pids)
        self.code: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.code = -sig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Supervisor, list[FakeProc], Clock]:
    started: list[FakeProc] = []
    clock = Clock()

    def spawn(argv: list[str]) -> Any:
        started.append(FakeProc(argv))
        return started[-1]

    sup = Supervisor({"worker": ["celery", "worker"], "beat": ["celery", "beat"]},
                     spawn=spawn, clock=clock)
    return sup, started, clock


def test_both_start_and_a_killed_beat_is_restarted_after_one_second() -> None:
    sup, started, clock = make()
    sup.step()
    assert [p.argv[1] for p in started] == ["worker", "beat"]
    clock.now = 100.0
    started[1].code = -signal.SIGKILL
    sup.step()  # noticed: restart due in 1 s
    assert len(started) == 2
    clock.now = 100.5
    sup.step()
    assert len(started) == 2
    clock.now = 101.0
    sup.step()
    assert [p.argv[1] for p in started] == ["worker", "beat", "beat"]
    beat = next(c for c in sup.children if c.name == "beat")
    assert (beat.restarts, beat.exits) == (1, [-signal.SIGKILL])


def test_a_child_that_keeps_dying_waits_longer_each_time_up_to_the_cap() -> None:
    sup, started, clock = make()
    sup.step()
    delays = []
    for _ in range(9):
        started[-1].code = 1  # beat dies at once, again and again
        sup.step()
        beat = next(c for c in sup.children if c.name == "beat")
        delays.append(beat.delay)
        clock.now = beat.due
        sup.step()
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_DELAY_S, MAX_DELAY_S, MAX_DELAY_S]
    assert len(started) == 2 + 9


def test_a_long_run_resets_the_backoff() -> None:
    sup, started, clock = make()
    sup.step()
    for _ in range(3):
        started[-1].code = 1
        sup.step()
        clock.now = next(c for c in sup.children if c.name == "beat").due
        sup.step()
    clock.now += 3600
    started[-1].code = 1
    sup.step()
    assert next(c for c in sup.children if c.name == "beat").delay == 1.0


def test_stop_forwards_the_signal_and_restarts_nothing() -> None:
    sup, started, clock = make()
    sup.step()
    sup._on_signal(signal.SIGTERM, None)
    assert [p.signals for p in started] == [[signal.SIGTERM], [signal.SIGTERM]]
    clock.now = 10.0
    sup.step()
    sup.step()
    assert len(started) == 2 and not sup.alive()
