"""Suggested points: the logistic model's direction and scale on a synthetic cohort, rules with
too few hits kept, one class refused, and the written rules file valid with the same rules."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from leadsync.config.rules import load_default_rules, load_rules
from leadsync.review.figures import Scored
from leadsync.review.report import rule_points
from leadsync.review.suggest import SuggestError, rules_yaml, suggest_points

DEFAULT = Path(__file__).resolve().parents[2] / "leadsync/config/default_rules.yaml"


def cohort(n: int = 2000, seed: int = 3) -> list[Scored]:
    """`good` triples the outcome rate, `bad` cuts it to a third, `noise` does nothing,
    `rare` hits 5 people."""
    rng = random.Random(seed)
    people = []
    for i in range(n):
        hits = {name for name in ("good", "bad", "noise") if rng.random() < 0.3}
        if i < 5:
            hits.add("rare")
        rate = 0.1 * (3 if "good" in hits else 1) / (3 if "bad" in hits else 1)
        people.append(Scored(f"p{i}", 0, rng.random() < rate, "C", frozenset(hits)))
    return people


RULES = [("good", 5.0), ("bad", 10.0), ("noise", -10.0), ("rare", 7.0)]


def test_direction_scale_and_kept_rules() -> None:
    people = cohort()
    good, bad, noise, rare = suggest_points(people, RULES)
    assert good.suggested > 10 and bad.suggested < -10  # the evidence, whatever the sign was
    assert abs(noise.suggested) < abs(good.suggested) / 3
    assert (rare.kept, rare.suggested, rare.uncertainty, rare.hits) == (True, 7.0, None, 5)
    # the model's own scale: the fitted rules keep their total |points| (within rounding)
    total = abs(good.suggested) + abs(bad.suggested) + abs(noise.suggested)
    assert abs(total - 25) <= 1.5
    for s in (good, bad, noise):
        assert s.uncertainty is not None and 0 < s.uncertainty < abs(good.suggested)
        assert not s.kept
    assert suggest_points(people, RULES) == [good, bad, noise, rare]  # deterministic


def test_one_class_or_no_evidence_is_refused() -> None:
    nobody_won = [replace(s, outcome=False) for s in cohort(200)]
    with pytest.raises(SuggestError, match="with and without"):
        suggest_points(nobody_won, RULES)
    with pytest.raises(SuggestError, match="with and without"):
        suggest_points([], RULES)
    with pytest.raises(SuggestError, match="at least 20"):
        suggest_points(cohort(200), [("rare", 1.0)])


def test_written_rules_file_is_complete_and_valid(tmp_path: Path) -> None:
    model = load_default_rules()
    names = [rule for rule, _, _ in rule_points(model)]
    rng = random.Random(5)
    people = [Scored(f"p{i}", 0, rng.random() < (0.3 if i % 3 == 0 else 0.05), "C",
                     frozenset({"company-100"} if i % 3 == 0 else {"blog"} if i % 2 else set()))
              for i in range(600)]
    suggestions = suggest_points(people, [(r, p) for r, _, p in rule_points(model)])
    source = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
    text = rules_yaml(source, suggestions, people, version="default-2026.11-suggested",
                      header="line one\nline two")
    path = tmp_path / "suggested.yaml"
    path.write_text(text, encoding="utf-8")
    suggested = load_rules(path)
    assert suggested.version == "default-2026.11-suggested"
    assert [rule for rule, _, _ in rule_points(suggested)] == names
    by_rule = {s.rule: s.suggested for s in suggestions}
    assert {r: p for r, _, p in rule_points(suggested)} == by_rule
    assert by_rule["company-100"] > 10 and by_rule["demo"] == 50  # demo: no hits, kept
    # everything but points and version as in the live file
    assert replace(suggested, version=model.version, fit_rules=model.fit_rules,
                   engagement_rules=model.engagement_rules,
                   recency_rules=model.recency_rules) == model
    expected = dict(source, version="default-2026.11-suggested")
    for section in ("fit", "engagement", "recency"):
        expected[section] = [dict(rule, points=by_rule[rule["id"]]) for rule in source[section]]
    assert yaml.safe_load(text) == expected  # the YAML itself: only points and version differ
    assert text.startswith("# line one\n# line two\n")
    assert "  # demo: kept at 50 (only 0 people hit it; at least 20 needed)\n" in text
    assert "  # company-100: 10 -> " in text


def test_report_flags_a_weight_the_evidence_puts_elsewhere() -> None:
    from leadsync.review.report import rules_report

    rng = random.Random(9)
    people = []
    for i in range(3000):
        hits = {name for name in ("blog", "senior-title", "company-100") if rng.random() < 0.4}
        rate = 0.05 * (4 if "blog" in hits else 1)  # blog (+3) is the one that matters
        people.append(Scored(f"p{i}", 0, rng.random() < rate, "C", frozenset(hits)))
    rows = {row["rule"]: row for row in rules_report(people, load_default_rules())}
    assert rows["blog"]["weight_off"] is True and rows["blog"]["suggested_points"] > 3
    assert rows["demo"]["kept"] is True and rows["demo"]["weight_off"] is False
    assert rows["blog"]["contradicts"] is False
    assert rows["senior-title"]["suggested_points"] < rows["blog"]["suggested_points"]
