"""Tolerant profile parsing (DESIGN.md §2), reasons rendering, and the JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from leadsync.scoring import (
    Reason,
    parse_profile,
    profile_to_dict,
    render_reasons,
)
from leadsync.scoring.parse import ProfileError, parse_datetime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T10:00:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T19:00:00+09:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T05:00:00-05:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T10:00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),  # naive = UTC
        ("2026-11-01 10:00:00.250Z", datetime(2026, 11, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        (1793527200, datetime(2026, 11, 1, 10, tzinfo=UTC)),  # epoch seconds
        (1793527200000, datetime(2026, 11, 1, 10, tzinfo=UTC)),  # epoch milliseconds
        (None, None), ("", None),
    ],
)
def test_dates(text: object, expected: datetime | None) -> None:
    got = parse_datetime(text, "at")
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "11/01/2026", True, [], float("nan")])
def test_bad_dates_name_the_field(bad: object) -> None:
    with pytest.raises(ProfileError, match=r"^when: "):
        parse_datetime(bad, "when")


@pytest.mark.parametrize("text", ["²", "1730000000²", "-²", "1730000000.²", "١٧٣٠٠٠٠٠٠٠",
                                  "１７３０００００００"])
def test_non_ascii_digits_are_not_an_epoch_but_a_named_error(text: str) -> None:
    """str.isdigit() accepts superscripts and other scripts' digits; they are not epoch text,
    so the error is the field's ProfileError, never a bare ValueError."""
    with pytest.raises(ProfileError, match=r"^when: not an ISO-8601 date"):
        parse_datetime(text, "when")


def test_non_ascii_digit_ranges_are_a_named_error() -> None:
    with pytest.raises(ProfileError, match=r"^employees: not a number"):
        parse_profile({"id": "x", "employees": "²-5"})


def test_numbers_as_strings_ranges_and_booleans() -> None:
    profile = parse_profile({"id": 7, "employees": "1,200", "annual_revenue": "2.5e6",
                             "score_at_mql": "81.0",
                             "bant": {"budget": "TRUE", "authority": "no", "need": 1,
                                      "timeline": ""}})
    assert profile.id == "7"
    assert profile.employees == 1200 and profile.annual_revenue == 2.5e6
    assert profile.score_at_mql == 81
    assert (profile.bant.budget, profile.bant.authority, profile.bant.need,
            profile.bant.timeline) == (True, False, True, None)
    assert parse_profile({"id": "x", "employees": "100-500"}).employees == 100
    assert parse_profile({"id": "x", "employees": "1000+"}).employees == 1000


def test_unknown_keys_go_to_attributes_and_explicit_attributes_win() -> None:
    profile = parse_profile({"id": "x", "plan": "gold", "seats": 3,
                             "attributes": {"plan": "silver", "region": "kanto"}})
    assert dict(profile.attributes) == {"plan": "silver", "seats": 3, "region": "kanto"}


def test_stage_and_sales_status_are_normalised() -> None:
    profile = parse_profile({"id": "x", "stage": " MQL ", "sales_status": "Opportunity Open"})
    assert (profile.stage, profile.sales_status) == ("mql", "opportunity_open")
    profile = parse_profile({"id": "x", "stage": "evangelist", "sales_status": "maybe"})
    assert (profile.stage, profile.sales_status) == (None, None)


def test_event_properties_and_types() -> None:
    profile = parse_profile({"id": "x", "events": [
        {"type": " Page_View ", "at": "2026-11-01T10:00:00+09:00", "url": "/p", "n": 3,
         "empty": None, "source": "hubspot"}]})
    event = profile.events[0]
    assert event.type == "page_view" and event.source == "hubspot"
    assert event.at == datetime(2026, 11, 1, 1, tzinfo=UTC)
    assert dict(event.props) == {"url": "/p", "n": "3"}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({}, "id"), ({"id": ""}, "id"), ({"id": None}, "id"), ({"id": True}, "id"),
        ({"id": "x", "events": {"type": "page_view"}}, "events"),
        ({"id": "x", "events": ["page_view"]}, "events[0]"),
        ({"id": "x", "events": [{"at": "2026-11-01"}]}, "events[0].type"),
        ({"id": "x", "events": [{"type": "page_view"}]}, "events[0].at"),
        ({"id": "x", "events": [{"type": "page_view", "at": "2026-11-01"},
                                {"type": "page_view", "at": "soon"}]}, "events[1].at"),
        ({"id": "x", "events": [{"type": "page_view", "at": "2026-11-01", "url": {"a": 1}}]},
         "events[0].url"),
        ({"id": "x", "employees": "many"}, "employees"),
        ({"id": "x", "employees": True}, "employees"),
        ({"id": "x", "annual_revenue": "inf"}, "annual_revenue"),
        ({"id": "x", "bant": [True]}, "bant"),
        ({"id": "x", "bant": {"budget": "perhaps"}}, "bant.budget"),
        ({"id": "x", "attributes": ["a"]}, "attributes"),
        ({"id": "x", "title": {"en": "CEO"}}, "title"),
        ({"id": "x", "mql_at": "later"}, "mql_at"),
    ],
)
def test_structural_garbage_names_the_field(obj: dict[str, object], field: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(obj)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ":")
    assert isinstance(caught.value, ValueError)


def test_round_trip_through_json_form() -> None:
    original = parse_profile({
        "id": "p-1", "email": "a@b.jp", "title": "部長", "employees": 10, "annual_revenue": 1.5,
        "bant": {"budget": True}, "attributes": {"k": "v"}, "stage": "mql",
        "mql_at": "2026-11-01T00:00:00+09:00", "sales_status": "working",
        "events": [{"type": "page_view", "at": "2026-11-01T10:00:00Z", "url": "/x",
                    "source": "salesforce"}],
    })
    again = parse_profile(profile_to_dict(original))
    assert again == original
    assert profile_to_dict(original)["mql_at"] == "2026-10-31T15:00:00Z"


REASONS = (Reason("demo", "デモをリクエスト", 50.0), Reason("pricing", "料金ページを閲覧", 15.0),
           Reason("free", "フリーメール", -20.0))


def test_render_reasons_format() -> None:
    expected = "+50 デモをリクエスト; +15 料金ページを閲覧; −20 フリーメール"
    assert render_reasons(REASONS, 255) == expected
    assert render_reasons((Reason("a", "A", 7.5), Reason("b", "B", -0.5)), 100) == "+7.5 A; −0.5 B"
    assert render_reasons((), 10) == ""


@pytest.mark.parametrize(("max_len", "expected"), [
    (0, ""), (1, "…"), (4, "…"),
    (5, "+50 …"),  # not even the first entry fits: its label is cut, never its points
    (12, "+50 デモをリクエ …"),
    (20, "+50 デモをリクエスト; …"),  # whole entries only, then "…"
    (28, "+50 デモをリクエスト; …"),
    (29, "+50 デモをリクエスト; +15 料金ページを閲覧; …"),
    (37, "+50 デモをリクエスト; +15 料金ページを閲覧; …"),
    (38, "+50 デモをリクエスト; +15 料金ページを閲覧; −20 フリーメール"),
])
def test_render_reasons_drops_whole_entries(max_len: int, expected: str) -> None:
    assert render_reasons(REASONS, max_len) == expected
    assert len(expected) <= max_len


def test_render_reasons_counts_repeats_and_never_cuts_inside_a_number() -> None:
    reasons = (Reason("demo", "デモをリクエスト", 100.0, 2), Reason("blog", "ブログ", 20.0),
               Reason("revisit", "30日以内にサイトへ再訪問", 5.0))
    assert render_reasons(reasons, 255) == (
        "+100 デモをリクエスト ×2; +20 ブログ; +5 30日以内にサイトへ再訪問")
    assert render_reasons(reasons, 30) == "+100 デモをリクエスト ×2; +20 ブログ; …"
    assert render_reasons(reasons[2:], 8) == "+5 30日 …"
    assert render_reasons(reasons[2:], 7) == "+5 …"  # "+5 30 …" would end inside "30日"
    assert render_reasons(reasons[2:], 6) == "+5 …"  # "+5 3 …" would end inside "30"


def test_render_reasons_rejects_negative_length() -> None:
    with pytest.raises(ValueError, match="max_len"):
        render_reasons(REASONS, -1)


def test_other_offsets_normalise_to_utc() -> None:
    tz = timezone(timedelta(hours=5, minutes=30))
    assert parse_datetime(datetime(2026, 1, 1, 5, 30, tzinfo=tz), "x") == datetime(
        2026, 1, 1, tzinfo=UTC)
