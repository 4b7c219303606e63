"""The cycle report counts what reached the CRMs, also when a run stops while one CRM's thread
has written and the other's has not (the lease lost in between). Real pipeline, real in-memory
store and lock; in-memory CRMs (tests/fakes.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from leadsync.config.rules import load_default_rules
from leadsync.config.settings import Settings
from leadsync.connectors.base import FieldUpdate, WriteResult
from leadsync.lease import PEOPLE_LOCK
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime
from leadsync.state import InMemoryStateStore, Lock
from tests.fakes import FakeConnector

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PEOPLE = 5


class TakenAfterWrite(FakeConnector):
    """Writes, then the lease goes to another runner (Redis wiped, the lock taken)."""

    def __init__(self, *args: Any, state: InMemoryStateStore, thief: Lock, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.state, self.thief = state, thief
        self.taken = threading.Event()

    def write_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                      ) -> WriteResult:
        result = super().write_updates(updates, dry_run=dry_run)
        self.state.clear()
        assert self.thief.acquire()
        self.taken.set()
        return result


def test_a_lease_lost_between_the_two_crms_writes_reports_the_one_that_wrote() -> None:
    state = InMemoryStateStore()
    lock, thief = state.lock(PEOPLE_LOCK, 30), state.lock(PEOPLE_LOCK, 30)
    hs = TakenAfterWrite("hubspot", lambda: T0, state=state, thief=thief)
    sf = FakeConnector("salesforce", lambda: T0)
    for i in range(PEOPLE):
        email = f"p{i}@corp.example"
        hs.add("contact", str(100 + i), email=email, title="営業部長", employees=150)
        sf.add("Lead", f"00Q{i}", email=email, title="営業部長", employees=150)

    def progress(line: str) -> None:  # Salesforce's thread confirms its lease after the theft
        if line.startswith("writing") and "salesforce" in line:
            assert hs.taken.wait(5)

    rt = Runtime(settings=Settings(), model=load_default_rules(),
                 connectors={"hubspot": hs, "salesforce": sf}, state=state, clock=lambda: T0)
    assert lock.acquire()
    report = run_job(rt, "incremental", lock=lock, progress=progress)
    assert report.stopped_reason == "lock_lost"
    assert hs.writes == PEOPLE and sf.writes == 0
    assert report.records_written == {"hubspot": PEOPLE}
    assert state.get_cursor("hubspot:people") is None  # nothing committed
