"""`leadsync explain`: the stage's reason from the core's decision, owners, the argument."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import click
import pytest
from rich.console import Console

from leadsync.config.rules import parse_rules
from leadsync.explain import check_email, explain_person, owner_note, render, stage_explanation
from leadsync.scoring import Evaluation, evaluate, parse_profile

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
MODEL = parse_rules({
    "version": "explain-test", "thresholds": {"mql": 50}, "sql": {"bant_min": 3},
    "engagement": [
        {"id": "visit", "label": "Visit", "points": 60, "event": "page_view"},
        {"id": "demo", "label": "Demo", "points": 1, "event": "form_submit", "instant_mql": True},
        {"id": "careers", "label": "Careers", "points": -30, "event": "email_open"}],
}, "explain.yaml")


def h(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat()


def run(**profile: object) -> Evaluation:
    return evaluate(parse_profile({"id": "p-1", "email": "a@example.com", "owner": "rep@x.com",
                                   **profile}), MODEL, NOW)


BANT3 = {"budget": True, "authority": True, "need": True}


@pytest.mark.parametrize(("profile", "stage", "text"), [
    ({"stage": "mql", "bant": BANT3, "events": [{"type": "email_open", "at": h(1)}]}, "sql",
     "BANT 3 of 4 met (budget, authority, need) ≥ 3 needed: mql → sql (§4.4)"),
    ({"stage": "sql", "events": [{"type": "email_open", "at": h(1)}]}, "sql",
     "stays sql: score decay never demotes sql (score -30 vs MQL threshold 50); only sales "
     "facts move a person back (§4.5)"),
    ({"stage": "opportunity", "sales_status": "won", "sales_status_at": h(30)}, "customer",
     "sales status won (decided 2026-11-14 06:00 UTC) moves the person forward to customer "
     "(§4.1)"),
    ({"stage": "customer", "sales_status": "won", "sales_status_at": h(3000)}, "customer",
     "sales status won (decided 2026-07-13 12:00 UTC): stays customer (§4.1, a forward sales "
     "fact)"),
    ({"stage": "mql", "stage_entered_at": h(100), "sales_status": "lost",
      "sales_status_at": h(20)}, "recycled",
     "sales status lost (decided 2026-11-14 16:00 UTC), after the person entered mql: "
     "recycled (§4.2, applied once)"),
    ({"stage": "recycled", "stage_entered_at": h(20), "sales_status": "rejected",
      "sales_status_at": h(20)}, "recycled",
     "recycled since 2026-11-14 16:00 UTC (sales status rejected): re-qualifies only through "
     "an instant-MQL action, or a score ≥ MQL threshold 50 with engagement, dated after that "
     "(§4.3 re-MQL; score now 0)"),
    ({"stage": "recycled", "stage_entered_at": h(20),
      "events": [{"type": "form_submit", "at": h(2)}]}, "mql",
     "re-qualified after being recycled: an instant-MQL action on 2026-11-15 10:00 UTC, after "
     "the recycling (§4.3 re-MQL)"),
    ({"stage": "lead", "events": [{"type": "form_submit", "at": h(2)}]}, "mql",
     "an instant-MQL action on 2026-11-15 10:00 UTC qualifies whatever the score (score 1 < "
     "MQL threshold 50) (§4.3)"),
    ({"stage": "lead", "events": [{"type": "page_view", "at": h(2)}]}, "mql",
     "score 60 ≥ MQL threshold 50 (§4.3)"),
    ({"stage": "lead", "bant": {**BANT3, "timeline": True}}, "lead",
     "score 0 < MQL threshold 50 and no instant-MQL action (§4.3); BANT 4 of 4 met (budget, "
     "authority, need, timeline) would make an SQL, but marketing qualification comes first "
     "(§4.4)"),
    ({"stage": "lead", "events": [{"type": "page_view", "at": h(2)}], "bant": BANT3}, "sql",
     "qualified as MQL (score 60 ≥ MQL threshold 50), then BANT 3 of 4 met (budget, authority, "
     "need) ≥ 3 needed: mql → sql (§4.4)"),
])
def test_stage_explanation_names_the_rule_that_applied(profile: dict[str, object], stage: str,
                                                      text: str) -> None:
    ev = run(**profile)
    assert ev.stage == stage
    assert stage_explanation(ev, MODEL) == text
    assert "vs MQL threshold" not in text or ev.stage == "sql"


DUE_SOON = {"stage": "mql", "mql_at": h(21), "stage_entered_at": h(21)}  # due in 3 h, warn 4 h


def test_owner_notes() -> None:
    owed = run(**DUE_SOON, owner=None)
    assert owed.follow_up is not None and owed.follow_up.kind == "due_soon"
    assert owner_note(owed, None, None) == (
        "The owed task has no owner and no fallback owner is configured "
        "(LEADSYNC_SLA__FALLBACK_OWNER): it cannot be assigned; each cycle reports it.")
    assert owner_note(owed, "lead@x.com", None) == (
        "The person has no owner: the task goes to the fallback owner "
        "(LEADSYNC_SLA__FALLBACK_OWNER).")
    owned = run(**DUE_SOON)
    assert owned.follow_up is not None and owner_note(owned, None, None) is None
    assert owner_note(run(stage="lead"), None, None) is None  # nothing owed


def test_render_prints_the_reason_and_the_missing_owner() -> None:
    screen = io.StringIO()
    ev = run(**DUE_SOON, owner=None)
    render(Console(file=screen, width=200), [], ev, MODEL, "mql")
    out = screen.getvalue()
    assert ("Stage: mql — stays mql: score decay never demotes mql (score 0 vs MQL threshold "
            "50); only sales facts move a person back (§4.5)") in out
    assert "Follow-up owed: due_soon (normal)" in out
    assert "The owed task has no owner and no fallback owner is configured" in out


@pytest.mark.parametrize("argument", ["not-an-email", "a" * 5000, "a@b", "two@at@x.com", "",
                                      "x" * 250 + "@example.com"])
def test_argument_is_checked_and_never_echoed_whole(argument: str) -> None:
    with pytest.raises(click.BadParameter) as info:
        check_email(argument)
    message = info.value.format_message()
    assert "is not an email address; expected e.g. taro.yamada@example.co.jp" in message
    assert len(message) < 160
    assert f"({len(argument):,} characters)" in message


def test_argument_is_checked_before_any_call() -> None:
    class Explode:  # any attribute read means explain went on to build a runtime
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"settings.{name} read before the argument was checked")

    with pytest.raises(click.BadParameter):
        explain_person(Explode(), "x" * 5000, Console(file=io.StringIO()))  # type: ignore[arg-type]
    assert check_email("  Taro.Yamada@Example.co.jp ") == "taro.yamada@example.co.jp"
