"""Business-hours SLAs through the sandbox and the real SDKs: an MQL made on Friday evening in
Tokyo (after closing, before 勤労感謝の日 on Monday) gets its due-soon task on Wednesday
afternoon, 8 working hours before its Thursday deadline (not on Saturday as a wall-clock SLA
would have it, nor on Thursday morning as 8 wall-clock hours would); the escalation after the
deadline is due in working time too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.person import person_key
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import DEFAULT_NOW, Sandbox
from leadsync.sandbox.hs_marketing import form_guid
from leadsync.sandbox.store import parse_time
from leadsync.scoring.sla import task_key
from leadsync.state import InMemoryStateStore

JST = ZoneInfo("Asia/Tokyo")
DEFAULT_RULES = Path(__file__).parents[2] / "leadsync" / "config" / "default_rules.yaml"
WALL_CLOCK_SLA = "sla: {mql_hours: 24, sql_hours: 48, warn_hours: {mql: 4, sql: 8}}\n"
BUSINESS_HOURS_SLA = """sla:
  mql_hours: 24
  sql_hours: 48
  warn_hours: {mql: 8, sql: 8}
  business_hours:
    timezone: Asia/Tokyo
    days: [mon, tue, wed, thu, fri]
    hours: ["09:00-18:00"]
    holidays: JP
"""


def jst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    rules = tmp_path / "rules.yaml"
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    assert text.endswith(WALL_CLOCK_SLA)
    rules.write_text(text.replace(WALL_CLOCK_SLA, BUSINESS_HOURS_SLA), encoding="utf-8")
    with Sandbox(contacts=40, seed=21) as sb, environ(
            {**sb.env, "LEADSYNC_REDIS_URL": "", "LEADSYNC_RULES_FILE": str(rules),
             "LEADSYNC_TIMEZONE": "UTC"}):
        yield sb


def plant_mql(sb: Sandbox) -> str:
    """A HubSpot-only contact with an owner and no lead status requests a demo now (an
    instant MQL). Returns its contact id."""
    guid = form_guid("demo_request")
    with sb.data.lock:
        asked = {row[2] for row in sb.data.hs_form_submissions[guid]}
        contact_id = next(
            p.hs_ids[0] for p in sb.data.people
            if p.sf_lead_id is None and p.sf_contact_id is None and len(p.hs_ids) == 1
            and p.owner is not None
            and (c := sb.data.hs_contacts[p.hs_ids[0]]).get("email") not in asked
            and c.get("lifecyclestage") in ("subscriber", "lead")
            and c.get("hs_lead_status") in (None, "", "NEW"))
        email = sb.data.hs_contacts[contact_id]["email"]
        ms = int(sb.now().timestamp() * 1000) - 60_000
        sb.data.hs_form_submissions[guid].append(
            (ms, 10**9, email, {"pageUrl": "https://www.example.com/demo"}))
    return contact_id


def tasks_for(sb: Sandbox, key: str) -> list[dict[str, str]]:
    with sb.data.lock:
        return [dict(t) for t in sb.data.hs_tasks.values()
                if f"leadsync-key: {key}" in t.get("hs_task_body", "")]


def run(runtime: Runtime, sb: Sandbox, at: datetime | None, job: str = "sla") -> None:
    if at is not None:
        sb.clock.set(at)
    report = run_job(runtime, job)
    assert report.stopped_reason is None and not report.failed and not report.task_failures


def test_due_soon_task_follows_working_time(sandbox: Sandbox) -> None:
    sb = sandbox
    assert DEFAULT_NOW.astimezone(JST) == jst("2026-11-20 18:00")  # Friday, at closing time
    contact_id = plant_mql(sb)
    runtime = build_runtime(load_settings().model_copy(update={"redis_url": None}),
                            state=InMemoryStateStore(), clock=sb.now)
    assert runtime.model.sla.calendar is not None
    run(runtime, sb, None, job="full")
    contact = sb.data.hs_contacts[contact_id]
    assert contact["leadsync_stage"] == "mql"
    clock_start = parse_time(contact["leadsync_mql_at"])
    assert DEFAULT_NOW <= clock_start < DEFAULT_NOW + timedelta(minutes=5)
    # 24 working hours from after Friday's closing: Tue 9 h, Wed 9 h, Thu 6 h (Mon is a holiday)
    due = jst("2026-11-26 15:00")
    assert parse_time(contact["leadsync_sla_due"]) == due
    assert contact["leadsync_sla_status"] == "on_track"
    person = person_key(sb.data.hs_contacts[contact_id]["email"], f"hubspot:contact:{contact_id}")
    due_soon = task_key(person, "mql", clock_start, "due_soon")
    breached = task_key(person, "mql", clock_start, "breached")

    # Saturday 14:00 JST: a wall-clock SLA would warn now (due Sat 18:00); working time does not
    run(runtime, sb, jst("2026-11-21 14:00"))
    # the warning starts when 8 working hours remain: Wed 16:00 (Thu 9-15 is 6 h, Wed 16-18 2 h)
    run(runtime, sb, jst("2026-11-25 15:59"))
    assert tasks_for(sb, due_soon) == []
    assert sb.data.hs_contacts[contact_id]["leadsync_sla_status"] == "on_track"

    run(runtime, sb, jst("2026-11-25 16:01"))
    (task,) = tasks_for(sb, due_soon)
    assert sb.data.hs_contacts[contact_id]["leadsync_sla_status"] == "due_soon"
    assert task["hs_task_subject"].endswith("(MQL) by 2026-11-26 15:00 JST")
    assert task["hs_task_body"].startswith(
        "MQL since 2026-11-20 18:0")  # local time in the business-hours zone, not UTC
    assert parse_time(task["hs_timestamp"]) == due
    assert task["hs_task_priority"] == "MEDIUM"

    run(runtime, sb, jst("2026-11-26 14:59"))  # still due soon: no second task
    assert len(tasks_for(sb, due_soon)) == 1
    assert tasks_for(sb, breached) == []

    # breached at 15:01; the escalation is due 4 working hours later: Thu 3 h, Fri 1 h
    run(runtime, sb, jst("2026-11-26 15:01"))
    (escalation,) = tasks_for(sb, breached)
    assert sb.data.hs_contacts[contact_id]["leadsync_sla_status"] == "breached"
    escalation_due = parse_time(escalation["hs_timestamp"])  # the cycle's now + 4 working h
    assert jst("2026-11-27 10:01") <= escalation_due < jst("2026-11-27 10:02")
    assert escalation["hs_task_priority"] == "HIGH"
    run(runtime, sb, jst("2026-11-27 09:00"), job="full")
    assert (len(tasks_for(sb, due_soon)), len(tasks_for(sb, breached))) == (1, 1)
    stats = sb.stats()
    assert stats["hubspot"]["duplicate_task_keys"] == 0
    assert sb.data.hs_contacts[contact_id]["leadsync_sla_due"] == contact["leadsync_sla_due"]
