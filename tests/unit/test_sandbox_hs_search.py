"""HubSpot search semantics in the sandbox: operators, epoch-ms dates, sorting, the window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from leadsync.sandbox.hs_search import search
from leadsync.sandbox.wire import ApiError

TYPES = {"email": "string", "n": "number", "lastmodifieddate": "datetime", "stage": "enumeration"}
ITEMS = [
    ("1", {"email": "A@x.com", "n": "5", "lastmodifieddate": "2026-11-20T08:00:00.000Z"}),
    (
        "2",
        {
            "email": "b@x.com",
            "n": "50",
            "lastmodifieddate": "2026-11-19T08:00:00.000Z",
            "stage": "lead",
        },
    ),
    ("3", {"n": "500", "lastmodifieddate": "2026-11-18T08:00:00.000Z", "stage": "customer"}),
    ("4", {"email": "d@y.com"}),
]


def _ms(iso: str) -> str:
    return str(int(datetime.fromisoformat(iso).timestamp() * 1000))


def _ids(filters: list[dict[str, Any]], **body: Any) -> list[str]:
    page, _, _ = search(ITEMS, {"filterGroups": [{"filters": filters}], "limit": 10, **body}, TYPES)
    return [rid for rid, _ in page]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"propertyName": "email", "operator": "EQ", "value": "a@x.com"}, ["1"]),
        ({"propertyName": "email", "operator": "NEQ", "value": "a@x.com"}, ["2", "3", "4"]),
        ({"propertyName": "n", "operator": "GT", "value": "5"}, ["2", "3"]),
        ({"propertyName": "n", "operator": "LTE", "value": "50"}, ["1", "2"]),
        ({"propertyName": "stage", "operator": "IN", "values": ["lead", "customer"]}, ["2", "3"]),
        ({"propertyName": "stage", "operator": "NOT_IN", "values": ["lead"]}, ["1", "3", "4"]),
        ({"propertyName": "stage", "operator": "HAS_PROPERTY"}, ["2", "3"]),
        ({"propertyName": "email", "operator": "NOT_HAS_PROPERTY"}, ["3"]),
        ({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@x.com"}, ["1", "2"]),
        ({"propertyName": "lastmodifieddate", "operator": "GTE",
          "value": _ms("2026-11-19T08:00:00+00:00")}, ["1", "2"]),
        ({"propertyName": "lastmodifieddate", "operator": "LT",
          "value": _ms("2026-11-19T08:00:00+00:00")}, ["3"]),
        ({"propertyName": "lastmodifieddate", "operator": "GT",
          "value": "2026-11-19T08:00:00Z"}, ["1"]),
    ],
)  # fmt: skip
def test_filters(flt: dict[str, Any], expected: list[str]) -> None:
    assert _ids([flt]) == expected


def test_groups_are_ored_and_sort_puts_missing_last() -> None:
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "n", "operator": "GTE", "value": "500"}]},
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "d@y.com"}]},
        ],
        "sorts": [{"propertyName": "n", "direction": "DESCENDING"}],
    }
    page, total, nxt = search(ITEMS, body, TYPES)
    assert [r for r, _ in page] == ["3", "4"] and total == 2 and nxt is None
    page, total, nxt = search(ITEMS, {"sorts": ["lastmodifieddate"], "limit": 2}, TYPES)
    assert [r for r, _ in page] == ["3", "2"] and total == 4 and nxt == 2


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"limit": 0},
        {"limit": 100, "after": "9901"},
        {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "n", "operator": "LIKE", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "n", "operator": "EQ", "value": "ten"}]}]},
    ],
)
def test_invalid_requests_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as exc:
        search(ITEMS, body, TYPES)
    assert exc.value.status == 400 and exc.value.body["category"] == "VALIDATION_ERROR"
