"""The account phase scores the run's accounts a chunk at a time, members read back from the
store (issue 9, memory flat in the number of people): chunks of one account give the same
scores, writes and MQA task (with this run's engaged people named) as one chunk of all."""

from __future__ import annotations

import pytest

from leadsync.accounts import phase as phase_module
from leadsync.pipeline import run_job
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector
from tests.unit.test_accounts_phase import engage
from tests.unit.test_pipeline import Clock, make_runtime

ACCOUNTS = {"0011": ("甲株式会社", "kou.co.jp"), "0012": ("乙株式会社", "otsu.co.jp"),
            "0013": ("丙株式会社", "hei.co.jp")}
TITLES = ("営業部長", "主任", "担当", "担当")


def run(chunk: int, monkeypatch: pytest.MonkeyPatch
        ) -> tuple[dict[str, dict[str, object]], list[str], InMemoryStateStore, object]:
    monkeypatch.setattr(phase_module, "CHUNK_ACCOUNTS", chunk)
    clock = Clock()
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    for n, (account, (name, domain)) in enumerate(ACCOUNTS.items()):
        sf.add_account(account, name, f"https://www.{domain}/", owner_id=f"owner-{n}")
        for i, title in enumerate(TITLES, start=1):
            ref = sf.add("Contact", f"003{n}{i}", email=f"p{i}@{domain}", title=title,
                         last_name=f"山田{n}{i}")
            sf.link(ref, account)
            if i <= 3 - n:  # 3, 2 and 1 engaged people: one MQA
                engage(sf, ref, clock)
    state = InMemoryStateStore()
    report = run_job(make_runtime((hs, sf), clock, state), "full")
    fields = {key: {k: acc.current.get(k) for k in ("account_score", "engaged_people")}
              for key, acc in sorted(sf.accounts.items())}
    return fields, [t.subject for t in sf.tasks], state, report


def test_chunks_of_one_account_score_write_and_hand_off_as_one_chunk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    one_fields, one_tasks, _, one = run(500, monkeypatch)
    fields, tasks, state, report = run(1, monkeypatch)
    assert fields == one_fields
    assert [fields[k]["engaged_people"] for k in ACCOUNTS] == [3, 2, 1]
    assert tasks == one_tasks and len(tasks) == 1
    # this run's engaged people are named (the store keeps no name)
    assert tasks[0].startswith("[LeadSync] MQA: 甲株式会社 — 3 people engaged: 山田0")
    assert "?" not in tasks[0]
    assert (report.accounts_evaluated, report.accounts_mqa) == (3, 1)  # type: ignore[attr-defined]
    assert (one.accounts_evaluated, one.accounts_mqa) == (3, 1)  # type: ignore[attr-defined]
    assert dict(report.account_records_written) == {"salesforce": 3}  # type: ignore[attr-defined]
    # the run's record keys (what an unfinished phase retries) are blanked at its end
    assert state.get_fingerprints(phase_module.RUN_KEYS_KIND, ["0"]) in ({}, {"0": ""})
