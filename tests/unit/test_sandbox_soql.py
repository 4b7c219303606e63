"""The sandbox's SOQL subset: parsing, operators, literals, ordering."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from leadsync.sandbox.soql import SoqlError, matches, parse, sort_rows

TODAY = date(2026, 11, 20)
ROWS: list[dict[str, Any]] = [
    {
        "Id": "1",
        "Status": "Open",
        "N": 5.0,
        "D": "2026-11-20T08:00:00.000+0000",
        "E": "a@x.com",
        "B": True,
    },
    {
        "Id": "2",
        "Status": "Working",
        "N": 50.0,
        "D": "2026-11-19T23:59:59.000+0000",
        "E": None,
        "B": False,
    },
    {
        "Id": "3",
        "Status": "open",
        "N": None,
        "D": "2026-10-01T00:00:00.000+0000",
        "E": "b@Y.com",
        "B": False,
    },
    {
        "Id": "4",
        "Status": "Nurture",
        "N": 500.0,
        "D": "2026-11-13T00:00:00.000+0000",
        "E": "c@x.com",
        "B": True,
    },
]


def _get(row: dict[str, Any], name: str) -> Any:
    return row.get(name)


def _ids(where: str) -> list[str]:
    query = parse(f"SELECT Id FROM T WHERE {where}", TODAY)
    return [r["Id"] for r in ROWS if matches(query.where, r, _get)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Status = 'open'", ["1", "3"]),  # string equality is case-insensitive
        ("Status != 'Open'", ["2", "4"]),
        ("Status <> 'Open'", ["2", "4"]),
        ("N > 5", ["2", "4"]),
        ("N >= 5 AND N <= 50", ["1", "2"]),
        ("N < 50", ["1"]),
        ("N = null", ["3"]),
        ("E != null", ["1", "3", "4"]),
        ("Status IN ('Working', 'Nurture')", ["2", "4"]),
        ("Status NOT IN ('Working', 'Nurture')", ["1", "3"]),
        ("E LIKE '%@x.com'", ["1", "4"]),
        ("E LIKE 'b@y%'", ["3"]),
        ("B = true", ["1", "4"]),
        ("B = false OR N > 100", ["2", "3", "4"]),
        ("(Status = 'Open' OR Status = 'Working') AND NOT N > 10", ["1", "3"]),  # 2-valued
        ("D >= 2026-11-19T00:00:00Z", ["1", "2"]),
        ("D > 2026-11-20T08:00:00Z", []),
        ("D = TODAY", ["1"]),
        ("D = YESTERDAY", ["2"]),
        ("D < YESTERDAY", ["3", "4"]),
        ("D = LAST_N_DAYS:7", ["1", "2", "4"]),
        ("D >= N_DAYS_AGO:7", ["1", "2", "4"]),
        ("D < LAST_N_DAYS:30", ["3"]),
        ("D >= 2026-11-13", ["1", "2", "4"]),
    ],
)
def test_where(where: str, expected: list[str]) -> None:
    assert _ids(where) == expected


def test_select_order_limit_and_count() -> None:
    query = parse("select Id, Status from T where N != null order by N desc, Id asc limit 2", TODAY)
    assert query.fields == ("Id", "Status") and query.sobject == "T" and query.limit == 2
    rows = [r for r in ROWS if matches(query.where, r, _get)]
    sort_rows(rows, query.order, _get)
    assert [r["Id"] for r in rows] == ["4", "2", "1"]
    rows = list(ROWS)
    sort_rows(rows, parse("SELECT Id FROM T ORDER BY N", TODAY).order, _get)
    assert [r["Id"] for r in rows] == ["3", "1", "2", "4"]  # nulls first when ascending
    sort_rows(rows, parse("SELECT Id FROM T ORDER BY N ASC NULLS LAST", TODAY).order, _get)
    assert [r["Id"] for r in rows] == ["1", "2", "4", "3"]
    assert parse("SELECT COUNT() FROM Lead", TODAY).count


@pytest.mark.parametrize(
    "bad",
    [
        "SELECT FROM Lead",
        "SELECT Id Lead",
        "SELECT Id FROM Lead WHERE",
        "SELECT Id FROM Lead WHERE Status 'x'",
        "SELECT Id FROM Lead WHERE Status = 'x' LIMIT many",
        "SELECT Id FROM Lead WHERE Status LIKE 3",
        "SELECT Id FROM Lead WHERE Status = 'x' extra",
        "SELECT Id FROM Lead WHERE Status = `x`",
    ],
)
def test_malformed_queries_are_refused(bad: str) -> None:
    with pytest.raises(SoqlError) as exc:
        parse(bad, TODAY)
    assert exc.value.code == "MALFORMED_QUERY"
