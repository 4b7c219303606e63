"""Rule evaluation exactly as DESIGN.md §3 says: operators, occurrences, windows, decay, caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.config.rules import load_default_rules, parse_rules
from leadsync.scoring import Profile, ScoringModel, derive_seniority, evaluate, parse_profile

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def model_with(**sections: object) -> ScoringModel:
    """A model with only the given sections (plus a version and generous caps)."""
    data: dict[str, object] = {
        "version": "test",
        "caps": {"fit": {"min": -1000, "max": 1000}, "engagement": {"min": -1000, "max": 1000}},
    }
    data.update(sections)
    return parse_rules(data, "test.yaml")


def fit_points(when: dict[str, object], profile: dict[str, object]) -> int:
    model = model_with(fit=[{"id": "r", "label": "R", "points": 10, "when": when}])
    return evaluate(parse_profile({"id": "p", **profile}), model, NOW).fit


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("when", "profile", "expected"),
    [
        ({"field": "industry", "eq": "Manufacturing"}, {"industry": "manufacturing"}, 10),
        ({"field": "industry", "eq": "manufacturing"}, {"industry": "Retail"}, 0),
        ({"field": "industry", "eq": "x"}, {}, 0),  # missing fails eq
        ({"field": "industry", "ne": "retail"}, {"industry": "MFG"}, 10),
        ({"field": "industry", "ne": "retail"}, {"industry": "RETAIL"}, 0),
        ({"field": "industry", "ne": "retail"}, {}, 10),  # missing passes ne
        ({"field": "country", "in": ["JP", "US"]}, {"country": "jp"}, 10),
        ({"field": "country", "in": ["JP", "US"]}, {"country": "de"}, 0),
        ({"field": "country", "in": ["JP"]}, {}, 0),
        ({"field": "country", "not_in": ["JP"]}, {"country": "de"}, 10),
        ({"field": "country", "not_in": ["JP"]}, {"country": "JP"}, 0),
        ({"field": "country", "not_in": ["JP"]}, {}, 10),  # missing passes not_in
        ({"field": "employees", "gt": 100}, {"employees": 101}, 10),
        ({"field": "employees", "gt": 100}, {"employees": 100}, 0),
        ({"field": "employees", "gte": 100}, {"employees": 100}, 10),
        ({"field": "employees", "gte": 100}, {"employees": "1,200"}, 10),  # number as string
        ({"field": "employees", "lt": 50}, {"employees": 49}, 10),
        ({"field": "employees", "lt": 50}, {"employees": 50}, 0),
        ({"field": "employees", "lte": 50}, {"employees": 50}, 10),
        ({"field": "employees", "lte": 50}, {}, 0),  # missing fails comparisons
        ({"field": "annual_revenue", "gte": 1e6}, {"annual_revenue": "2500000.5"}, 10),
        ({"field": "title", "contains": "sales"}, {"title": "VP of SALES"}, 10),
        ({"field": "title", "contains": "sales"}, {"title": "Engineer"}, 0),
        ({"field": "title", "contains": "sales"}, {}, 0),
        ({"field": "email", "matches": r"^[a-z]+\.[a-z]+@"}, {"email": "Taro.Yamada@x.jp"}, 10),
        ({"field": "email", "matches": r"^\d"}, {"email": "taro@x.jp"}, 0),
        ({"field": "email", "matches": "x"}, {}, 0),
        ({"field": "owner", "exists": True}, {"owner": "rep@x.com"}, 10),
        ({"field": "owner", "exists": True}, {}, 0),
        ({"field": "owner", "exists": False}, {}, 10),
        ({"field": "owner", "exists": False}, {"owner": ""}, 10),  # empty string is missing
        ({"field": "owner", "exists": False}, {"owner": "rep@x.com"}, 0),
        # attributes by bare name; unknown top-level keys land in attributes
        ({"field": "plan", "eq": "Gold"}, {"attributes": {"plan": "gold"}}, 10),
        ({"field": "plan", "eq": "gold"}, {"plan": "GOLD"}, 10),
        ({"field": "seats", "gte": 10}, {"attributes": {"seats": "12"}}, 10),
        ({"field": "trial", "eq": True}, {"attributes": {"trial": "true"}}, 10),
        ({"field": "trial", "eq": True}, {"attributes": {"trial": False}}, 0),
        # derived fields
        ({"field": "email_domain", "eq": "example.co.jp"}, {"email": "A@Example.CO.JP"}, 10),
        ({"field": "email_free", "eq": True}, {"email": "a@gmail.com"}, 10),
        ({"field": "email_free", "eq": True}, {"email": "a@example.com"}, 0),
        ({"field": "email_free", "eq": False}, {}, 0),  # no email: missing, not "not free"
        ({"field": "bant_count", "gte": 2}, {"bant": {"budget": True, "need": "yes"}}, 10),
        # combinators
        ({"all": [{"field": "country", "eq": "jp"}, {"field": "employees", "gte": 10}]},
         {"country": "JP", "employees": 10}, 10),
        ({"all": [{"field": "country", "eq": "jp"}, {"field": "employees", "gte": 10}]},
         {"country": "JP", "employees": 9}, 0),
        ({"any": [{"field": "country", "eq": "jp"}, {"field": "employees", "gte": 10}]},
         {"country": "US", "employees": 10}, 10),
        ({"any": [{"field": "country", "eq": "jp"}, {"field": "employees", "gte": 10}]},
         {"country": "US"}, 0),
        ({"not": {"field": "country", "eq": "jp"}}, {"country": "US"}, 10),
        ({"not": {"field": "country", "eq": "jp"}}, {"country": "JP"}, 0),
    ],
)
def test_fit_condition_operators(when: dict[str, object], profile: dict[str, object],
                                 expected: int) -> None:
    assert fit_points(when, profile) == expected


@pytest.mark.parametrize(
    ("title", "seniority"),
    [
        ("CEO", "executive"), ("Chief Revenue Officer", "executive"), ("co-founder", "executive"),
        ("President", "executive"), ("Vice President, Sales", "vp"), ("Vice-President", "vp"),
        ("VP of Sales & Director", "vp"), ("SVP Marketing", "vp"),
        ("Director of IT", "director"), ("Director", "director"),  # Director is not CTO
        ("Head of Growth", "director"), ("Sales Manager", "manager"), ("Team Lead", "manager"),
        ("Supervisor", "staff"),  # not VP
        ("Directory Admin", "staff"), ("Vpn Engineer", "staff"), ("Engineer", "staff"),
        ("代表取締役社長", "executive"), ("執行役員", "executive"), ("取締役", "executive"),
        ("本部長", "vp"), ("営業本部長", "vp"), ("事業部長", "vp"),
        ("営業部長", "director"), ("部長", "director"),
        ("部長代理", "manager"), ("副部長", "manager"), ("営業課長", "manager"),
        ("係長", "manager"), ("マネージャー", "manager"),
        ("担当", "staff"), ("", "unknown"), ("   ", "unknown"), (None, "unknown"),
    ],
)
def test_seniority_table(title: str | None, seniority: str) -> None:
    assert derive_seniority(title) == seniority


def engagement_score(rule: dict[str, object], events: list[dict[str, object]]) -> float:
    model = model_with(engagement=[{"id": "r", "label": "R", **rule}])
    evaluation = evaluate(parse_profile({"id": "p", "events": events}), model, NOW)
    return evaluation.engagement_raw


PV = "page_view"


@pytest.mark.parametrize(
    ("rule", "events", "expected"),
    [
        # every matching event is an occurrence
        ({"points": 3, "event": PV}, [{"type": PV, "at": ago(d)} for d in (1, 2, 3)], 9),
        ({"points": 3, "event": PV}, [{"type": "email_open", "at": ago(1)}], 0),
        # where on an event property, case-insensitive
        ({"points": 5, "event": PV, "where": {"url": {"contains": "/Pricing"}}},
         [{"type": PV, "at": ago(1), "url": "https://x/PRICING"},
          {"type": PV, "at": ago(1), "url": "https://x/blog"}], 5),
        ({"points": 5, "event": "form_submit", "where": {"form": {"eq": "demo_request"}}},
         [{"type": "form_submit", "at": ago(1), "form": "Demo_Request"}], 5),
        ({"points": 5, "event": "form_submit", "where": {"form": {"eq": "demo_request"}}},
         [{"type": "form_submit", "at": ago(1)}], 0),  # missing property fails
        ({"points": 5, "event": PV, "where": {"url": {"matches": r"/p\w+g$"}}},
         [{"type": PV, "at": ago(1), "url": "/pricing"}], 5),
        ({"points": 5, "event": PV, "where": {"url": {"not_in": ["/a", "/b"]}}},
         [{"type": PV, "at": ago(1), "url": "/a"}, {"type": PV, "at": ago(1), "url": "/c"},
          {"type": PV, "at": ago(1)}], 10),
        # max_times: the most recent N count
        ({"points": 10, "event": PV, "max_times": 2},
         [{"type": PV, "at": ago(d)} for d in (1, 2, 3, 4)], 20),
        # min_count: fewer occurrences than min_count give 0
        ({"points": 5, "event": PV, "min_count": 3},
         [{"type": PV, "at": ago(d)} for d in (1, 2)], 0),
        ({"points": 5, "event": PV, "min_count": 2, "max_times": 1},
         [{"type": PV, "at": ago(d)} for d in (1, 2)], 5),
        # within_days: older occurrences do not exist for the rule (inclusive boundary)
        ({"points": 5, "event": PV, "within_days": 30},
         [{"type": PV, "at": ago(d)} for d in (29.9, 30, 30.1, 200)], 10),
        ({"points": 5, "event": PV, "within_days": 30, "min_count": 2},
         [{"type": PV, "at": ago(d)} for d in (1, 31)], 0),
        # max_points clamps the rule's sum (magnitude, both signs)
        ({"points": 10, "event": PV, "max_points": 25},
         [{"type": PV, "at": ago(d)} for d in (1, 2, 3, 4)], 25),
        ({"points": -10, "event": PV, "max_points": 15},
         [{"type": PV, "at": ago(d)} for d in (1, 2)], -15),
        # future events are ignored
        ({"points": 5, "event": PV}, [{"type": PV, "at": ago(-1)}, {"type": PV, "at": ago(1)}],
         5),
    ],
)
def test_engagement_occurrences(rule: dict[str, object], events: list[dict[str, object]],
                                expected: float) -> None:
    assert engagement_score(rule, events) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("decay", "age_days", "factor"),
    [
        ({"half_life_days": 30}, 0, 1.0),
        ({"half_life_days": 30}, 30, 0.5),
        ({"half_life_days": 30}, 60, 0.25),
        ({"half_life_days": 30}, 15, 0.5 ** 0.5),
        ({"half_life_days": 7}, 0.5, 0.5 ** (0.5 / 7)),  # fractional age
        ({"lifespan_days": 10}, 0, 1.0),
        ({"lifespan_days": 10}, 2.5, 0.75),
        ({"lifespan_days": 10}, 10, 0.0),
        ({"lifespan_days": 10}, 40, 0.0),  # never negative
    ],
)
def test_decay_kinds(decay: dict[str, float], age_days: float, factor: float) -> None:
    got = engagement_score({"points": 20, "event": PV, "decay": decay},
                           [{"type": PV, "at": ago(age_days)}])
    assert got == pytest.approx(20 * factor)


def test_max_times_counts_the_most_recent_with_their_own_decay() -> None:
    events = [{"type": PV, "at": ago(d)} for d in (90, 0, 30, 60)]
    got = engagement_score(
        {"points": 16, "event": PV, "max_times": 2, "decay": {"half_life_days": 30}}, events)
    assert got == pytest.approx(16 * (1 + 0.5))


@pytest.mark.parametrize(
    ("recency", "events", "fires"),
    [
        ({"inactive_days": 90}, [], True),
        ({"inactive_days": 90}, [{"type": PV, "at": ago(91)}], True),
        ({"inactive_days": 90}, [{"type": PV, "at": ago(89)}], False),
        # sales touches are not marketing activity
        ({"inactive_days": 90}, [{"type": "sales_touch", "at": ago(1), "channel": "call"}], True),
        # a future event does not count as activity
        ({"inactive_days": 90}, [{"type": PV, "at": ago(-5)}], True),
        ({"active_days": 7}, [{"type": "email_click", "at": ago(6.9)}], True),
        ({"active_days": 7}, [{"type": "email_click", "at": ago(7.1)}], False),
        ({"active_days": 7}, [], False),
    ],
)
def test_recency_rules(recency: dict[str, float], events: list[dict[str, object]],
                       fires: bool) -> None:
    model = model_with(recency=[{"id": "rec", "label": "Rec", "points": -20, **recency}])
    evaluation = evaluate(parse_profile({"id": "p", "events": events}), model, NOW)
    assert evaluation.engagement == (-20 if fires else 0)
    assert [r.rule for r in evaluation.reasons] == (["rec"] if fires else [])


@pytest.mark.parametrize(
    ("fit_points_", "engagement_points", "fit", "engagement", "caps"),
    [
        # default caps: fit max 100, engagement max 150; each cut is its own reason line
        ([60, 60], [100, 100], 100, 150,
         [("cap:engagement", "上限 (engagement 150)", -50.0),
          ("cap:fit", "上限 (fit 100)", -20.0)]),
        ([-80, -80], [-70, -70], -100, -100,
         [("cap:fit", "下限 (fit \u2212100)", 60.0),
          ("cap:engagement", "下限 (engagement \u2212100)", 40.0)]),
        ([10, 5], [3], 15, 3, []),
    ],
)
def test_caps_clamp_totals(fit_points_: list[int], engagement_points: list[int], fit: int,
                           engagement: int, caps: list[tuple[str, str, float]]) -> None:
    model = parse_rules({
        "version": "caps",
        "fit": [{"id": f"f{i}", "label": "F", "points": p, "when": {"field": "id", "exists": True}}
                for i, p in enumerate(fit_points_)],
        "engagement": [{"id": f"e{i}", "label": "E", "points": p, "event": PV}
                       for i, p in enumerate(engagement_points)],
    }, "caps.yaml")
    evaluation = evaluate(parse_profile({"id": "p", "events": [{"type": PV, "at": ago(1)}]}),
                          model, NOW)
    assert (evaluation.fit, evaluation.engagement) == (fit, engagement)
    assert evaluation.score == fit + engagement
    # reasons keep the rules' own (uncapped) contributions, plus one line per capped part
    rules = [r for r in evaluation.reasons if not r.rule.startswith("cap:")]
    assert sorted(r.points for r in rules) == sorted(
        float(p) for p in fit_points_ + engagement_points)
    assert [(r.rule, r.label, r.points) for r in evaluation.reasons
            if r.rule.startswith("cap:")] == caps
    assert sum(r.points for r in evaluation.reasons) == evaluation.score


@pytest.mark.parametrize(
    ("points", "written", "reason"),
    [(2.5, 3, 2.5), (-2.5, -3, -2.5), (2.45, 2, 2.5), (0.04, 0, None), (7.25, 7, 7.3),
     (-0.05, 0, -0.1)],
)
def test_rounding_half_away_from_zero(points: float, written: int, reason: float | None) -> None:
    model = model_with(engagement=[{"id": "r", "label": "R", "points": points, "event": PV}])
    evaluation = evaluate(parse_profile({"id": "p", "events": [{"type": PV, "at": ago(1)}]}),
                          model, NOW)
    assert evaluation.engagement == written
    assert [r.points for r in evaluation.reasons] == ([] if reason is None else [reason])


@pytest.mark.parametrize(
    ("fit_total", "grade"),
    [(40, "A"), (39, "B"), (25, "B"), (24, "C"), (10, "C"), (9, "D"), (-50, "D")],
)
def test_grades_first_min_that_fits_wins(fit_total: int, grade: str) -> None:
    model = model_with(fit=[{"id": "f", "label": "F", "points": fit_total,
                             "when": {"field": "id", "exists": True}}])
    assert evaluate(parse_profile({"id": "p"}), model, NOW).grade == grade


def test_default_model_on_the_design_example() -> None:
    profile = parse_profile({
        "id": "p-1", "email": "taro.yamada@example.co.jp", "title": "営業部長", "employees": 150,
        "events": [
            {"type": "page_view", "at": "2026-11-01T10:00:00Z",
             "url": "https://www.example.com/pricing"},
            {"type": "form_submit", "at": "2026-11-02T09:00:00Z", "form": "demo_request"},
            {"type": "sales_touch", "at": "2026-11-02T12:00:00Z", "channel": "call"},
        ],
        "stage": "lead",
    })
    now = datetime(2026, 11, 3, tzinfo=UTC)
    evaluation = evaluate(profile, load_default_rules(), now)
    age = (now - datetime(2026, 11, 1, 10, tzinfo=UTC)).total_seconds() / 86400
    pricing = 15 * 0.5 ** (age / 30)
    assert evaluation.fit == 25 and evaluation.grade == "B"
    assert evaluation.engagement == round(50 + pricing)
    assert [(r.rule, r.points) for r in evaluation.reasons] == [
        ("demo", 50.0), ("senior-title", 15.0), ("pricing", round(pricing, 1)),
        ("company-100", 10.0)]
    assert evaluation.instant_mql and evaluation.stage == "mql"
    assert evaluation.model == "default-2026.11"


def test_default_model_penalties_and_revisit() -> None:
    events = [{"type": PV, "at": ago(d), "url": u}
              for d, u in ((1, "https://x/careers"), (2, "https://x/careers"), (5, "https://x/")) ]
    profile = parse_profile({"id": "p", "email": "a@gmail.com", "events": events})
    evaluation = evaluate(profile, load_default_rules(), NOW)
    by_rule = {r.rule: r.points for r in evaluation.reasons}
    assert by_rule == {"careers": -50.0, "free-email": -20.0, "revisit-30d": 5.0}
    assert (evaluation.fit, evaluation.engagement, evaluation.score) == (-20, -45, -65)


def test_lookback_of_the_default_model_is_its_horizon() -> None:
    model = load_default_rules()
    assert model.horizon_days == 365 and model.lookback_days == 365
    assert model.events_since(NOW) == NOW - timedelta(days=365)


def test_without_a_horizon_the_sync_reads_every_event() -> None:
    model = model_with(engagement=[{"id": "e", "points": 1, "event": PV,
                                    "decay": {"half_life_days": 365}}])
    assert model.horizon_days is None
    assert model.events_since(NOW) == NOW - timedelta(days=20_000)  # back to 1972


def test_profile_dataclass_defaults_are_missing_fields() -> None:
    evaluation = evaluate(Profile(id="bare"), load_default_rules(), NOW)
    assert evaluation.stage == "subscriber"
    assert evaluation.fit == 0 and evaluation.engagement == -20  # inactive-90d only
