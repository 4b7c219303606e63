"""`leadsync review --html`: one self-contained, offline page whose every chart renders in a
headless Chromium (the system package; .ci/run installs it) with no console message."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.review.html import CHARTS
from leadsync.sandbox import Sandbox

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def browser(page: Path, *, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """(the DOM Chromium built, its console lines) for a local page, headless."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
            "--v=0", "--hide-scrollbars", "--window-size=1400,2200"]
    if screenshot is not None:
        subprocess.run([*args, f"--screenshot={screenshot}", page.as_uri()], check=True,
                       capture_output=True, timeout=120)
    done = subprocess.run([*args, "--dump-dom", page.as_uri()], check=True,
                          capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


class _Refs(HTMLParser):
    """Every src/href and every tag the page opens (it must load nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]


def test_the_browser_check_sees_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script>'
                    "</body></html>", encoding="utf-8")
    _dom, console = browser(page)
    assert len(console) == 1 and '"boom"' in console[0]


def test_review_page_is_offline_and_renders_every_chart(tmp_path: Path) -> None:
    page = tmp_path / "review.html"
    with Sandbox(contacts=800, seed=11, now=datetime.now(UTC), deals=True,
                 hubspot_rate_limit=1000) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": "", "LEADSYNC_RULES_FILE": ""}):
        result = CliRunner().invoke(cli, ["review", "--html", str(page), "--candidate",
                                          str(Path(__file__).resolve().parents[2]
                                              / "leadsync/config/default_rules.yaml")])
    assert result.exit_code == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(text)
    assert refs.refs == []  # no stylesheet, script, font or image is fetched
    assert "<link" not in text and "@import" not in text and "url(" not in text
    for chart in CHARTS:  # each chart's SVG is well-formed XML
        found = re.search(rf'<figure class="chart" id="chart-{chart}">.*?(<svg.*?</svg>)', text)
        assert found, chart
        ElementTree.fromstring(found.group(1))
    assert "スコアリングモデルのレビュー / Scoring model review" in text
    dom, console = browser(page, screenshot=tmp_path / "review.png")
    assert f'data-charts="{len(CHARTS)}"' in dom  # every chart drawn, counted by the page
    assert console == []
    assert (tmp_path / "review.png").stat().st_size > 10_000
