"""Buying-group surges in the sandbox and the demo's accounts (docs/accounts.md): the default
demo (seed 42) has three surging companies, each an MQA by the end, and its summary lists the
top accounts with their reasons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.commands.render import print_summary
from leadsync.config.settings import load_settings
from leadsync.pipeline import run_job
from leadsync.runtime import build_runtime
from leadsync.sandbox import Sandbox
from leadsync.sandbox import simulate as simulation
from leadsync.state import InMemoryStateStore

MQA_PREFIX = "[LeadSync] MQA: "


def _demo() -> dict[str, Any]:
    with environ({"LEADSYNC_TIMEZONE": "Asia/Tokyo"}):
        result = CliRunner().invoke(cli, ["demo", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def default_demo() -> Iterator[dict[str, Any]]:
    yield _demo()


def test_the_default_demo_has_its_surging_accounts_as_mqas(default_demo: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    summary = default_demo
    assert summary["accounts"] == {"evaluated": 239, "mqa": 31, "not_mqa": 208}
    assert summary["mqa_tasks_created"] == {"hubspot": 8, "salesforce": 24}
    # the same demo without the surges: the three surging companies are the difference
    monkeypatch.setattr(simulation, "surge_companies", lambda _data: {})
    quiet = _demo()
    assert quiet["accounts"] == {"evaluated": 239, "mqa": 28, "not_mqa": 211}
    assert quiet["mqa_tasks_created"] == {"hubspot": 8, "salesforce": 21}


def test_the_demo_lists_the_top_accounts_with_reasons(default_demo: dict[str, Any]) -> None:
    top = default_demo["top_accounts"]
    assert len(top) == 5
    assert [row["score"] for row in top] == sorted((row["score"] for row in top), reverse=True)
    # an MQA since the first cycle (the sandbox clock's milliseconds vary from run to run)
    assert str(top[0].pop("mqa_at")).startswith("2026-11-20T09:00:00.")
    assert top[0] == {
        "account": "a-1dc0142a8dd08971b91d228e", "name": "青葉商事株式会社",
        "domain": "aoba-175.co.jp", "score": 130, "mqa": True, "engaged": 3, "members": 8,
        "reasons": "+40 3名以上がエンゲージ; +25 ターゲットアカウント; +20 2名以上がエンゲージ; "
                   "+20 部長以上がエンゲージ; +15 上位3名のエンゲージメント合計が100以上; "
                   "+10 従業員500名以上"}
    assert all(row["mqa"] and row["reasons"].startswith("+40 3名以上がエンゲージ") for row in top)
    console = Console(record=True, width=120)
    print_summary(console, default_demo)
    text = console.export_text()
    assert "Top accounts (why: the three biggest reasons)" in text
    assert "aoba-175.co.jp" in text and "+25 ターゲットアカウント" in text
    assert "@" not in text.split("Top accounts")[1].split("Top scores")[0]  # no person named


def test_a_surging_company_becomes_an_mqa_with_one_task() -> None:
    with Sandbox(contacts=300, seed=42) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        data: Any = sb.data
        surges = simulation.surge_companies(data)
        assert {k: (step, len(people)) for k, (step, people) in surges.items()} == \
            {"1040": (1, 4)}
        domain = data.hs_companies["1040"]["domain"]
        [account_id] = [i for i, a in data.sf["Account"].items() if domain in a["Website"]]
        state = InMemoryStateStore()
        settings = load_settings().model_copy(update={"redis_url": None})
        first = run_job(build_runtime(settings, state=state, clock=sb.now), "full")
        assert first.stopped_reason is None
        assert not data.hs_companies["1040"].get("leadsync_mqa_at")
        done = sb.simulate(hours=6)
        assert (done["surges"], done["surge_events"]) == (1, 12)
        second = run_job(build_runtime(settings, state=state, clock=sb.now), "incremental")
        assert second.stopped_reason is None
        assert data.hs_companies["1040"].get("leadsync_mqa_at")
        assert data.sf["Account"][account_id].get("LeadSync_MQA_At__c")
        name = data.sf["Account"][account_id]["Name"]
        subjects = [str(t.get("Subject")) for t in data.sf["Task"].values()]
        subjects += [str(t.get("hs_task_subject")) for t in data.hs_tasks.values()]
        assert len([s for s in subjects if s.startswith(f"{MQA_PREFIX}{name} — ")]) == 1
        assert int(data.sf["Account"][account_id]["LeadSync_Engaged_People__c"]) >= 4
