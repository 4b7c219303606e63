"""As-of scoring: nothing dated after the snapshot changes an as-of score, stage or reasons;
the cohort and the outcome window by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from leadsync.config.rules import load_default_rules
from leadsync.review.asof import (
    DealFacts,
    History,
    as_of_profile,
    eligible,
    outcome_within,
    qualifies,
    score_cohort,
)
from leadsync.scoring import Bant, Event, Profile, evaluate

AS_OF = datetime(2026, 9, 1, tzinfo=UTC)
MODEL = load_default_rules()
DAY = timedelta(days=1)


def page(url: str, at: datetime) -> Event:
    return Event("page_view", at, MappingProxyType({"url": url}))


def demo(at: datetime) -> Event:
    return Event("form_submit", at, MappingProxyType({"form": "demo_request"}))


BEFORE = (page("https://x.example/pricing", AS_OF - 3 * DAY),
          page("https://x.example/blog/a", AS_OF - 40 * DAY))
PERSON = Profile(id="p1", email="a@corp.example", title="Director", employees=300,
                 events=BEFORE, lead_source="webinar")
AFTER_EVENTS = st.lists(st.sampled_from([
    page("https://x.example/pricing", AS_OF), demo(AS_OF + DAY),
    page("https://x.example/careers", AS_OF + 2 * DAY),
    Event("sales_touch", AS_OF + 3 * DAY, MappingProxyType({"channel": "call"})),
]), max_size=4)


@settings(max_examples=60, deadline=None)
@given(later=AFTER_EVENTS, status=st.sampled_from([None, "won", "lost", "opportunity_open"]),
       mql_later=st.booleans(), bant=st.booleans(), won_after=st.booleans())
def test_nothing_after_the_snapshot_changes_the_as_of_score(
        later: list[Event], status: str | None, mql_later: bool, bant: bool,
        won_after: bool) -> None:
    base = History(PERSON, created_at=AS_OF - 100 * DAY)
    future = History(
        replace(PERSON, events=BEFORE + tuple(later), sales_status=status,
                sales_status_at=AS_OF + 5 * DAY if status else None,
                mql_at=AS_OF + DAY if mql_later else None,
                stage="customer" if status == "won" else "mql" if mql_later else None,
                bant=Bant(True, True, True, True) if bant else Bant()),
        created_at=AS_OF - 100 * DAY,
        deals=(DealFacts(AS_OF + 6 * DAY, AS_OF + 9 * DAY if won_after else None),))
    (plain,) = score_cohort([base], MODEL, AS_OF, 90 * DAY, "won")
    (seen,) = score_cohort([future], MODEL, AS_OF, 90 * DAY, "won")
    assert seen.profile == plain.profile
    assert seen.current == plain.current
    assert (plain.current.score, plain.current.stage) == (42, "lead")  # 25 + 14 + 3
    assert seen.outcome is won_after and plain.outcome is False


def test_as_of_profile_keeps_dated_facts_before_the_snapshot_only() -> None:
    profile = replace(
        PERSON, mql_at=AS_OF - 10 * DAY, sql_at=AS_OF + DAY, sales_status="working",
        sales_status_at=AS_OF - 2 * DAY, bant=Bant(True, True, True, None),
        stage="sql", score_at_mql=90)
    then = as_of_profile(profile, AS_OF)
    assert (then.stage, then.stage_entered_at, then.mql_at, then.sql_at) == (
        "mql", AS_OF - 10 * DAY, AS_OF - 10 * DAY, None)
    assert (then.sales_status, then.bant, then.score_at_mql) == ("working", Bant(), None)
    assert then.events == BEFORE
    undated = as_of_profile(replace(profile, sales_status_at=None), AS_OF)
    assert undated.sales_status is None  # it may have been decided after the snapshot
    at_the_instant = as_of_profile(replace(PERSON, events=(demo(AS_OF),)), AS_OF)
    assert at_the_instant.events == ()  # strictly before the snapshot


def test_cohort_and_outcome_window() -> None:
    opened = History(PERSON, AS_OF - DAY, (DealFacts(AS_OF - DAY / 2),))
    assert not eligible(opened, AS_OF, "opportunity")  # already had one at the snapshot
    assert eligible(opened, AS_OF, "won")  # but had not won yet
    assert not eligible(History(PERSON, AS_OF), AS_OF, "won")  # created at the snapshot
    assert eligible(History(PERSON, None), AS_OF, "won")  # creation unknown: kept
    late = History(PERSON, None, (DealFacts(AS_OF + 10 * DAY, AS_OF + 30 * DAY),))
    assert outcome_within(late, AS_OF, 30 * DAY, "opportunity") == AS_OF + 10 * DAY
    assert outcome_within(late, AS_OF, 30 * DAY, "won") is None  # exactly at the horizon's end
    assert outcome_within(late, AS_OF, 31 * DAY, "won") == AS_OF + 30 * DAY


def test_people_with_no_events_are_scored_too() -> None:
    bare = History(Profile(id="p0"), AS_OF - DAY)
    hot = History(replace(PERSON, id="p2", events=(demo(AS_OF - DAY),)), AS_OF - DAY,
                  (DealFacts(AS_OF + DAY),))
    cases = score_cohort([hot, bare], MODEL, AS_OF, 30 * DAY, "opportunity", candidate=MODEL)
    assert [(c.profile.id, c.current.score, c.outcome) for c in cases] == [
        ("p0", -20, False), ("p2", 75, True)]  # inactive-90d; fit 25 + demo 50
    assert [qualifies(c.current, MODEL) for c in cases] == [False, True]
    assert cases[1].candidate == cases[1].current
    assert cases[1].scored().hits == {"demo", "senior-title", "company-100"}
    assert evaluate(cases[0].profile, MODEL, AS_OF) == cases[0].current
