"""`leadsync check` on a rules file with `sla.business_hours`: a good one says how SLA hours are
counted; a bad time zone, hours ending before they start and an unknown holiday country are each
refused with exit 2 and one message naming the file and the key (a subprocess, clean env)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leadsync import exitcodes
from tests.integration.test_cli_bad_inputs import clean_env

SECTIONS = {
    "good": ("timezone: Asia/Tokyo\n    hours: ['09:00-12:00', '13:00-18:00']\n"
             "    closed_dates: [2026-12-30, 2026-12-31]"),
    "bad-zone": "timezone: Japan/Tokyo",
    "bad-hours": "timezone: Asia/Tokyo\n    hours: ['18:00-09:00']",
    "bad-country": "timezone: Asia/Tokyo\n    holidays: JA",
}


def check(tmp_path: Path, name: str) -> tuple[int, dict[str, object], str]:
    rules = tmp_path / f"{name}.yaml"
    rules.write_text(f"version: bh\nsla:\n  business_hours:\n    {SECTIONS[name]}\n",
                     encoding="utf-8")
    env = clean_env({"LEADSYNC_RULES_FILE": str(rules)}, str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "leadsync", "check", "--json"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), str(rules)


@pytest.mark.parametrize(("name", "message"), [
    ("bad-zone", "sla.business_hours.timezone: 'Japan/Tokyo': not a known IANA time zone name"),
    ("bad-hours", "sla.business_hours.hours[0]: '18:00-09:00' ends before it starts"),
    ("bad-country", "sla.business_hours.holidays: 'JA' is not a country the holidays package "
                    "knows"),
])
def test_check_refuses_bad_business_hours(tmp_path: Path, name: str, message: str) -> None:
    code, out, rules = check(tmp_path, name)
    assert code == exitcodes.CONFIG
    assert out["ok"] is False and out["exit_code"] == exitcodes.CONFIG
    assert out["errors"][0].startswith(f"rules file: {rules}: {message}"), out

def test_check_says_sla_hours_are_business_hours(tmp_path: Path) -> None:
    code, out, _ = check(tmp_path, "good")
    text = json.dumps(out, ensure_ascii=False)
    assert "SLA hours are business hours: Asia/Tokyo, mon-fri 09:00-12:00, 13:00-18:00, JP " \
           "public holidays, 2 extra closed dates" in text, out
    assert "sla.business_hours" not in text
