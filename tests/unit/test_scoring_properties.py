"""Property tests (hypothesis): hostile profiles never crash; invariants of the score hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadsync.config.rules import load_default_rules, parse_rules
from leadsync.scoring import evaluate, parse_profile, render_reasons
from leadsync.scoring.parse import ProfileError

MODEL = load_default_rules()
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["CEO", "Vice President", "部長代理", "本部長", "🚀 Founder", "\x00",
                     "\u202eRTL", "a@gmail.com", "x" * 5000, "/pricing", "demo_request"]),
)
numbers = st.one_of(st.integers(min_value=-10**30, max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
dates = st.one_of(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                 timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()),
    st.integers(min_value=0, max_value=4 * 10**12), st.text(max_size=10), st.none(),
)
event_types = st.sampled_from(["page_view", "form_submit", "email_open", "email_click",
                               "email_unsubscribe", "webinar_attended", "meeting_booked",
                               "sales_touch", "mystery"])
events = st.lists(
    st.fixed_dictionaries(
        {"type": event_types, "at": dates},
        optional={"url": hostile_text, "form": hostile_text, "channel": hostile_text,
                  "extra": numbers},
    ),
    max_size=12,
)
profiles = st.fixed_dictionaries(
    {"id": st.one_of(st.text(min_size=1, max_size=20), st.integers())},
    optional={
        "email": st.one_of(st.none(), hostile_text), "title": st.one_of(st.none(), hostile_text),
        "employees": st.one_of(st.none(), numbers), "annual_revenue": numbers,
        "country": hostile_text, "stage": st.one_of(st.none(), hostile_text, st.sampled_from(
            ["lead", "mql", "sql", "recycled", "disqualified", "customer"])),
        "sales_status": st.one_of(st.none(), st.sampled_from(
            ["working", "accepted", "rejected", "disqualified", "opportunity_open", "won",
             "lost"]), hostile_text),
        "sales_status_at": dates, "stage_entered_at": dates, "mql_at": dates, "sql_at": dates,
        "bant": st.dictionaries(st.sampled_from(["budget", "authority", "need", "timeline"]),
                                st.one_of(st.booleans(), st.none())),
        "events": events, "owner": st.one_of(st.none(), hostile_text),
        "plan": hostile_text,
    },
)


def parsed(obj: dict[str, Any]) -> Any:
    try:
        return parse_profile(obj)
    except ProfileError:
        return None  # reported and skipped by callers: the allowed failure


@SETTINGS
@given(profiles)
def test_any_profile_evaluates_without_exception(obj: dict[str, Any]) -> None:
    profile = parsed(obj)
    if profile is None:
        return
    evaluation = evaluate(profile, MODEL, NOW)
    caps = MODEL.caps
    assert caps.fit_min <= evaluation.fit <= caps.fit_max
    assert caps.engagement_min <= evaluation.engagement <= caps.engagement_max
    assert evaluation.score == evaluation.fit + evaluation.engagement
    assert abs(evaluation.score - (evaluation.fit_raw + evaluation.engagement_raw)) <= 1
    assert evaluation.grade in {"A", "B", "C", "D"}
    assert len(render_reasons(evaluation.reasons, 255)) <= 255
    magnitudes = [abs(r.points) for r in evaluation.reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(r.points != 0 for r in evaluation.reasons)


@SETTINGS
@given(profiles)
def test_evaluation_is_deterministic(obj: dict[str, Any]) -> None:
    profile = parsed(obj)
    if profile is None:
        return
    assert evaluate(profile, MODEL, NOW) == evaluate(parse_profile(obj), MODEL, NOW)


positive_occurrences = st.sampled_from([
    {"type": "page_view", "url": "https://x/pricing"},
    {"type": "page_view", "url": "https://x/blog/a"},
    {"type": "form_submit", "form": "case-study-acme"},
    {"type": "form_submit", "form": "demo_request"},
])


@SETTINGS
@given(profiles, positive_occurrences, st.floats(min_value=0, max_value=365))
def test_adding_a_positive_occurrence_never_lowers_the_score(
    obj: dict[str, Any], occurrence: dict[str, str], age_days: float
) -> None:
    profile = parsed(obj)
    if profile is None:
        return
    before = evaluate(profile, MODEL, NOW)
    event = {**occurrence, "at": (NOW - timedelta(days=age_days)).isoformat()}
    more = parse_profile({**obj, "events": [*obj.get("events", []), event]})
    after = evaluate(more, MODEL, NOW)
    assert after.score >= before.score
    assert after.engagement_raw >= before.engagement_raw - 1e-9


@SETTINGS
@given(st.lists(st.text(max_size=30), max_size=8), st.integers(min_value=0, max_value=120))
def test_render_reasons_never_exceeds_max_len(labels: list[str], max_len: int) -> None:
    from leadsync.scoring import Reason

    reasons = [Reason(f"r{i}", label, float(i * 7 - 20)) for i, label in enumerate(labels)]
    assert len(render_reasons(reasons, max_len)) <= max_len


# --- what people read: rendered reasons (DESIGN.md §3a, issue 10) -----------------------------

#: tight caps, so the cap lines show up often
CAPPED = parse_rules({
    "version": "capped", "horizon_days": 365,
    "caps": {"fit": {"min": -15, "max": 12.5}, "engagement": {"min": -30, "max": 40}},
    "fit": [{"id": "senior", "label": "役職", "points": 15,
             "when": {"field": "seniority", "in": ["executive", "vp", "director"]}},
            {"id": "free", "label": "フリーメール", "points": -20,
             "when": {"field": "email_free", "eq": True}}],
    "engagement": [
        {"id": "pricing", "label": "料金 3.5", "points": 15, "event": "page_view",
         "where": {"url": {"contains": "/pricing"}}, "decay": {"half_life_days": 30}},
        {"id": "demo", "label": "デモ", "points": 50, "event": "form_submit",
         "where": {"form": {"eq": "demo_request"}}, "instant_mql": True},
        {"id": "blog", "label": "30日ブログ", "points": 3.3, "event": "page_view",
         "where": {"url": {"contains": "/blog"}}, "max_times": 4},
        {"id": "careers", "label": "採用", "points": -50, "event": "page_view",
         "where": {"url": {"contains": "/careers"}}, "max_times": 1}],
    "recency": [{"id": "idle", "label": "90日間アクションなし", "points": -20,
                 "inactive_days": 90}],
}, "capped.yaml")
NUMBER_CHARS = set("0123456789.")


def _ends_inside_a_number(text: str, full: str) -> bool:
    """True when `text` (a cut of `full` ending in …) stops between two characters of a
    number of `full`."""
    body = text[:-1].rstrip()
    if body.endswith(";"):
        body = body[:-1]
    if not body:
        return False
    nxt = full[len(body): len(body) + 1]
    return body[-1] in NUMBER_CHARS and nxt in NUMBER_CHARS and nxt != ""


@SETTINGS
@given(profiles, st.sampled_from([MODEL, CAPPED]), st.integers(min_value=0, max_value=300))
def test_rendered_reasons_never_end_inside_a_number_and_add_up_to_the_score(
    obj: dict[str, Any], model: Any, max_len: int
) -> None:
    profile = parsed(obj)
    if profile is None:
        return
    ev = evaluate(profile, model, NOW)
    # listed points, cap lines included, add up to the written score within rounding: each
    # entry is kept to one decimal (and entries under 0.05 are not listed), and fit and
    # engagement are each rounded to a whole number
    rules = len(model.fit_rules) + len(model.engagement_rules) + len(model.recency_rules)
    assert abs(sum(r.points for r in ev.reasons) - ev.score) <= 1 + 0.05 * (rules + 2)
    full = render_reasons(ev.reasons, 100_000)
    text = render_reasons(ev.reasons, max_len)
    assert len(text) <= max_len
    if text != full:
        assert text == "" if max_len == 0 else text.endswith("…")
        assert not _ends_inside_a_number(text, full), (text, full)
        body = text[:-1].rstrip().removesuffix(";")
        assert full.startswith(body)  # the kept entries, in order, biggest first
