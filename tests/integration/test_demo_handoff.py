"""`leadsync demo` with its defaults shows the whole hand-off: simulated reps qualify MQLs, so
the summary has MQL->SQL moves and SQL clocks, and its head counts add up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.common import environ


@pytest.fixture(scope="module")
def default_demo() -> Iterator[tuple[dict[str, Any], float]]:
    with environ({"LEADSYNC_TIMEZONE": "Asia/Tokyo"}):
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["demo", "--json"], catch_exceptions=False)
        took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    yield json.loads(result.output.strip().splitlines()[-1]), took


def test_default_demo_moves_mqls_to_sql_and_runs_sql_clocks(
    default_demo: tuple[dict[str, Any], float],
) -> None:
    summary, took = default_demo
    assert summary["transitions"]["mql->sql"] == 36
    assert summary["stages"]["sql"] == 66
    sql_clocks = summary["sla_by_stage"]["sql"]
    assert sql_clocks == {"on_track": 10, "breached": 8, "met": 48}
    assert sum(sql_clocks.values()) == summary["stages"]["sql"]  # every SQL has a clock
    mql_clocks = summary["sla_by_stage"]["mql"]
    assert sum(mql_clocks.values()) == summary["stages"]["mql"]
    assert mql_clocks["breached"] > 0  # MQLs nobody called still breach: not everyone is worked
    assert sum(summary["duplicate_task_keys"].values()) == 0
    assert took < 60  # around 20 s on an idle machine; generous for a shared one


def test_default_demo_explains_its_head_count(default_demo: tuple[dict[str, Any], float]) -> None:
    summary, _ = default_demo
    head = summary["head_count"]
    assert head == {"seeded": 1200, "people": 1201, "counted_twice": 3, "merged": 2,
                    "extra_records": 0}
    assert head["people"] == summary["people"] == sum(summary["stages"].values())
    assert head["people"] == (head["seeded"] + head["counted_twice"] - head["merged"]
                              + head["extra_records"])
    assert summary["simulated"] == {"from": "2026-11-20 18:00 JST", "to": "2026-11-23 18:00 JST",
                                    "timezone": "Asia/Tokyo"}
