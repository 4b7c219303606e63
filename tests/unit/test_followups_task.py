"""What a rep reads on a follow-up task: times in the configured zone with the zone named, and
escalations due a configured time after they are created (never born overdue), keyed as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from leadsync.config.settings import Settings, SettingsError, SlaSettings, load_settings
from leadsync.connectors.salesforce.writes import task_record
from leadsync.followups import local_time
from leadsync.person import person_key
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime
from leadsync.scoring.sla import task_key
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector
from tests.unit.test_pipeline import T0, Clock, demo_request, make_runtime

# the durable person key (the email's): tasks are keyed by it, not by a record (docs/person.md)
PERSON = person_key("taro.yamada@example.co.jp", "salesforce:Lead:00Q1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def crms(clock: Clock) -> tuple[FakeConnector, FakeConnector]:
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    ref = hs.add("contact", "101", email="taro.yamada@example.co.jp", title="営業部長",
                 employees=150)
    sf.add("Lead", "00Q1", email="taro.yamada@example.co.jp", title="営業部長",
           company="Example KK")
    hs.add_event(ref, demo_request(T0 - timedelta(hours=1)))  # an MQL from the first cycle
    return hs, sf


def _runtime(crms: tuple[FakeConnector, FakeConnector], clock: Clock,
             **settings: Any) -> Runtime:
    return replace(make_runtime(crms, clock, InMemoryStateStore()),
                   settings=Settings(**settings))


def test_due_soon_task_reads_in_tokyo_time_with_the_zone_named(crms, clock) -> None:
    _, sf = crms
    runtime = _runtime(crms, clock, timezone="Asia/Tokyo")
    run_job(runtime, "incremental")  # MQL at T0 = 2026-11-20 09:00 UTC = 18:00 JST
    clock.advance(hours=21)
    assert sum(run_job(runtime, "sla").tasks_created.values()) == 1
    (task,) = sf.tasks
    assert task.subject.endswith("(MQL) by 2026-11-21 18:00 JST")
    assert task.body.splitlines()[0] == (
        "MQL since 2026-11-20 18:00 JST: first sales contact is due by 2026-11-21 18:00 JST.")
    assert task.due == T0 + timedelta(hours=24)  # the instant itself is zone-free
    assert task.key == task_key(PERSON, "mql", T0, "due_soon")


def test_default_zone_is_utc_as_before(crms, clock) -> None:
    _, sf = crms
    runtime = _runtime(crms, clock)
    run_job(runtime, "incremental")
    clock.advance(hours=21)
    run_job(runtime, "sla")
    (task,) = sf.tasks
    assert task.subject.endswith("(MQL) by 2026-11-21 09:00 UTC")
    assert task.body.startswith("MQL since 2026-11-20 09:00 UTC: first sales contact is due by "
                                "2026-11-21 09:00 UTC.")


def test_salesforce_due_day_is_the_reps_day_not_utcs(crms, clock) -> None:
    """Salesforce's ActivityDate is a date: a deadline of 2026-11-21 09:00 UTC is still the
    20th in Honolulu (23:00 HST), so the rep's task list must say the 20th."""
    _, sf = crms
    runtime = _runtime(crms, clock, timezone="Pacific/Honolulu")
    run_job(runtime, "incremental")
    clock.advance(hours=21)
    run_job(runtime, "sla")
    (task,) = sf.tasks
    assert task.due == T0 + timedelta(hours=24)
    assert task.due_date == date(2026, 11, 20)
    assert task_record(task)["ActivityDate"] == "2026-11-20"
    assert task_record(replace(task, due_date=None))["ActivityDate"] == "2026-11-21"  # as before


def test_escalation_is_due_the_configured_hours_after_creation_and_keyed_as_before(
    crms, clock
) -> None:
    _, sf = crms
    runtime = _runtime(crms, clock, sla=SlaSettings(escalation_due_hours=6))
    run_job(runtime, "incremental")
    clock.advance(hours=30)  # 6 h past the 24 h deadline
    created_at = clock.now
    assert sum(run_job(runtime, "sla").tasks_created.values()) == 1
    (task,) = sf.tasks
    assert task.priority == "high"
    assert task.due == created_at + timedelta(hours=6)  # not the deadline that already passed
    assert task.due > created_at
    assert task.key == task_key(PERSON, "mql", T0, "breached")  # independent of creation time
    assert task.subject.endswith("(MQL) missed 2026-11-21 09:00 UTC; act by 2026-11-21 21:00 UTC")
    clock.advance(hours=3)
    assert sum(run_job(runtime, "sla").tasks_created.values()) == 0
    assert len(sf.tasks) == 1


def test_escalation_due_defaults_to_four_hours(crms, clock) -> None:
    _, sf = crms
    runtime = _runtime(crms, clock)
    run_job(runtime, "incremental")
    clock.advance(hours=25)
    run_job(runtime, "sla")
    (task,) = sf.tasks
    assert task.due == clock.now + timedelta(hours=4)


@pytest.mark.parametrize("zone", ["Asia/Tokio", "JST+9", "", " UTC", "../etc/passwd", "/UTC"])
def test_an_unknown_zone_is_a_settings_error_naming_the_variable(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSYNC_TIMEZONE", zone)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "LEADSYNC_TIMEZONE" in str(info.value)
    assert "IANA time zone" in str(info.value)


def test_a_zone_without_an_abbreviation_is_named_by_its_iana_name() -> None:
    zone = Settings(timezone="America/Sao_Paulo").zone
    assert local_time(T0, zone) == "2026-11-20 06:00 America/Sao_Paulo"
    assert local_time(T0, Settings(timezone="Asia/Tokyo").zone) == "2026-11-20 18:00 JST"
