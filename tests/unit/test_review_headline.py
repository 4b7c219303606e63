"""The review's one-line headline (what `leadsync demo` ends with) reads whole when no rule's
lift could be measured (no outcome since the snapshot)."""

from __future__ import annotations

import pytest

from leadsync.commands.review import print_headline

HEAD = {"as_of": "2026-08-23T09:00:00+00:00", "people": 23, "outcomes": 0, "auc": None,
        "sla_met": {"mql": 0.222, "sql": 1.0}, "html": None}


def test_no_lift_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    print_headline({**HEAD, "strongest": [], "weakest": []})
    line = " ".join(capsys.readouterr().out.split())
    assert ("AUC —; strongest: — (no lift measured); weakest: — (no lift measured); "
            "SLA met: MQL 22.2%, SQL 100.0%") in line


def test_lifts_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    print_headline({**HEAD, "strongest": [("demo", 3.5)], "weakest": [("blog", 0.5)]})
    line = " ".join(capsys.readouterr().out.split())
    assert "strongest: demo ×3.50; weakest: blog ×0.50; SLA met" in line
