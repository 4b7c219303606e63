"""The look-back horizon (DESIGN.md §3a) is applied identically by a sync against the sandbox,
`leadsync explain` and `leadsync score`: an old demo request counts, or not, in all three."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.explain import gather
from leadsync.identity import group_records, merge_profile
from leadsync.pipeline import run_job
from leadsync.runtime import build_runtime
from leadsync.sandbox import Sandbox
from leadsync.sandbox.hs_marketing import form_guid
from leadsync.scoring import profile_to_dict
from leadsync.state import InMemoryStateStore

DEFAULT_RULES = Path(__file__).parents[2] / "leadsync" / "config" / "default_rules.yaml"
#: days before the wall clock, which `leadsync sync` and `explain` run on (as an admin's would)
AGES = {"recent": 60, "old": 300, "ancient": 400}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=40, seed=21) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


def plant_demo_requests(sb: Sandbox) -> dict[str, str]:
    """One HubSpot contact per age (who never asked for a demo) gets one demo request dated
    that many days ago. Returns age name -> email."""
    guid = form_guid("demo_request")
    with sb.data.lock:
        asked = {row[2] for row in sb.data.hs_form_submissions[guid]}
        emails = sorted({c["email"] for c in sb.data.hs_contacts.values()
                         if c.get("email") and c["email"] not in asked})
        counts: dict[str, int] = {}
        for c in sb.data.hs_contacts.values():
            if c.get("email"):
                counts[c["email"]] = counts.get(c["email"], 0) + 1
        chosen = [e for e in emails if counts[e] == 1][: len(AGES)]
        planted = dict(zip(AGES, chosen, strict=True))
        rows = sb.data.hs_form_submissions[guid]
        for seq, (name, email) in enumerate(planted.items(), 10**9):
            ms = int((datetime.now(UTC) - timedelta(days=AGES[name])).timestamp() * 1000)
            rows.append((ms, seq, email, {"pageUrl": "https://www.example.com/demo"}))
        rows.sort(key=lambda row: (row[0], row[1]))
    return planted


def written_scores(sb: Sandbox, emails: dict[str, str]) -> dict[str, int]:
    with sb.data.lock:
        by_email = {c["email"]: c for c in sb.data.hs_contacts.values() if c.get("email")}
    return {name: int(by_email[email]["leadsync_score"]) for name, email in emails.items()}


@pytest.mark.parametrize(("rules_text", "counted"), [
    # the bundled default: horizon 365 and a 90-day window on the demo rule
    (None, {"recent"}),
    # the same model without the demo window: the horizon alone decides
    ("window-less", {"recent", "old"}),
])
def test_sync_explain_and_score_agree_on_old_events(
    sandbox: Sandbox, tmp_path: Path, rules_text: str | None, counted: set[str]
) -> None:
    rules = DEFAULT_RULES
    if rules_text is not None:
        rules = tmp_path / "rules.yaml"
        rules.write_text(DEFAULT_RULES.read_text(encoding="utf-8").replace(
            "within_days: 90, instant_mql: true", "instant_mql: true"), encoding="utf-8")
        assert "within_days: 90" not in rules.read_text(encoding="utf-8")
    planted = plant_demo_requests(sandbox)
    with environ({"LEADSYNC_RULES_FILE": str(rules)}):
        settings = load_settings().model_copy(update={"redis_url": None})
        runtime = build_runtime(settings, state=InMemoryStateStore())
        assert runtime.model.horizon_days == 365
        report = run_job(runtime, "full")
        assert report.stopped_reason is None and not report.failed
        written = written_scores(sandbox, planted)

        # the profiles `explain` builds (its reads, its merge, fresh state), scored offline
        runtime = build_runtime(settings, state=InMemoryStateStore())
        now = runtime.clock()
        profiles = []
        for name, email in planted.items():
            records, events = gather(runtime, email)
            group = group_records(records)
            assert len(group) == 1
            pid = group[0][0].ref.key
            own = [ev for rec in group[0] for ev in events.get(rec.ref.key, ())]
            demo_ages = sorted(round((now - e.at).total_seconds() / 86400) for e in own
                               if e.type == "form_submit" and e.props.get("form") ==
                               "demo_request")
            # explain reads the events the sync keeps: the 400-day-old one is never read
            assert demo_ages == ([] if name == "ancient" else [AGES[name]])
            profile = merge_profile(pid, group[0], own, {})
            profiles.append({**profile_to_dict(profile), "id": name})
        data = tmp_path / "people.jsonl"
        data.write_text("\n".join(json.dumps(p) for p in profiles) + "\n", encoding="utf-8")
        runner = CliRunner()
        offline = runner.invoke(cli, ["score", "--input", str(data), "--now", now.isoformat()])
        assert offline.exit_code == 0, offline.output
        scored = {r["id"]: r for r in map(json.loads, offline.stdout.splitlines())}

        for name, email in planted.items():
            explained = runner.invoke(cli, ["explain", email], catch_exceptions=False)
            assert explained.exit_code == 0, explained.output
            text = " ".join(explained.output.split())
            has_demo = any(r["rule"] == "demo" for r in scored[name]["reasons"])
            assert has_demo == (name in counted), (name, scored[name])
            assert (f"Score {written[name]} = fit" in text), (name, written[name], text)
            assert scored[name]["score"] == written[name], name
            assert ("デモをリクエスト" in text) == (name in counted), name
            if name in counted:
                assert scored[name]["instant_mql"] is True
