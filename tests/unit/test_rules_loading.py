"""Rules-file loading (DESIGN.md §3): the bundled default, and errors naming file, rule, key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadsync.config.rules import RulesError, load_default_rules, load_rules, parse_rules

DEFAULT_FILE = Path(__file__).parents[2] / "leadsync" / "config" / "default_rules.yaml"


def default_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_default_model_is_the_design_model() -> None:
    model = load_default_rules()
    assert model.version == "default-2026.11"
    assert model.mql_threshold == 80 and model.bant_min == 3
    assert [(g.grade, g.min) for g in model.grades] == [("A", 40), ("B", 25), ("C", 10),
                                                         ("D", None)]
    assert (model.caps.fit_min, model.caps.fit_max) == (-100, 100)
    assert (model.caps.engagement_min, model.caps.engagement_max) == (-100, 150)
    assert [r.id for r in model.fit_rules] == ["senior-title", "company-100", "free-email"]
    assert [r.id for r in model.engagement_rules] == [
        "pricing", "case-study", "blog", "demo", "careers", "revisit-30d"]
    pricing = model.engagement_rules[0]
    assert (pricing.points, pricing.max_times, pricing.decay and pricing.decay.half_life_days) \
        == (15, 3, 30)
    revisit = model.engagement_rules[-1]
    assert (revisit.within_days, revisit.min_count, revisit.max_times) == (30, 2, 1)
    assert [r.id for r in model.engagement_rules if r.instant_mql] == ["demo"]
    assert [(r.id, r.points, r.inactive_days) for r in model.recency_rules] == [
        ("inactive-90d", -20, 90)]
    sla = model.sla
    assert (sla.mql_hours, sla.sql_hours, sla.mql_warn_hours, sla.sql_warn_hours) == (24, 48, 4, 8)


def test_load_rules_from_a_file_equals_the_default(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DEFAULT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_rules(path).version == load_default_rules().version


def test_free_email_domains_extend_the_builtin_list() -> None:
    data = default_data()
    data["free_email_domains"] = ["Mail.Example"]
    model = parse_rules(data, "x.yaml")
    assert "mail.example" in model.free_email_domains and "gmail.com" in model.free_email_domains


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(default_data())
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "rule", "key", "message"),
    [
        (["fit", 0, "when", "field"], "seniority", None, None, None),  # sanity: valid
        (["fit", 0, "when"], {"field": "seniority", "among": ["vp"]}, "senior-title",
         "when.among", "unknown operator"),
        (["fit", 1, "points"], _DELETE, "company-100", "points", "required"),
        (["fit", 1, "points"], "ten", "company-100", "points", "expected a number"),
        (["fit", 1, "points"], True, "company-100", "points", "expected a number"),
        (["fit", 2, "id"], "senior-title", "senior-title", "id", "duplicate rule id"),
        (["engagement", 0, "id"], "free-email", "free-email", "id", "duplicate rule id"),
        (["engagement", 0, "decay"], {"half_life_days": 0}, "pricing",
         "decay.half_life_days", "must be > 0"),
        (["engagement", 0, "decay"], {"half_life": 30}, "pricing", "decay", "exactly one"),
        (["engagement", 0, "decay"], {"half_life_days": 3, "lifespan_days": 9}, "pricing",
         "decay", "exactly one"),
        (["engagement", 5, "within_days"], -30, "revisit-30d", "within_days", "must be > 0"),
        (["engagement", 5, "min_count"], 0, "revisit-30d", "min_count", ">= 1"),
        (["engagement", 5, "max_times"], 1.5, "revisit-30d", "max_times", "whole number"),
        (["engagement", 0, "max_time"], 3, "pricing", "max_time", "unknown key"),
        (["engagement", 0, "event"], "page_visit", "pricing", "event", "expected one of"),
        (["engagement", 0, "where"], {"url": {"contain": "/pricing"}}, "pricing",
         "where.url.contain", "unknown operator"),
        (["engagement", 0, "where"], {"url": {"matches": "(unclosed"}}, "pricing",
         "where.url.matches", "invalid regular expression"),
        (["engagement", 3, "instant_mql"], "yes", "demo", "instant_mql", "true or false"),
        (["engagement", 0, "max_points"], -5, "pricing", "max_points", "must be > 0"),
        (["recency", 0, "inactive_days"], -1, "inactive-90d", "inactive_days", ">= 0"),
        (["recency", 0, "active_days"], 5, "inactive-90d", "inactive_days", "exactly one"),
        (["fit", 0, "when"], {"all": []}, "senior-title", "when.all", "non-empty list"),
        (["fit", 0, "when"], {"field": "seniority"}, "senior-title", "when", "no operator"),
        (["fit", 0, "when"], {"field": "x", "in": "vp"}, "senior-title", "when.in",
         "non-empty list"),
        (["fit", 0, "when"], {"field": "x", "gte": "many"}, "senior-title", "when.gte",
         "finite number"),
        (["fit", 0, "when"], {"field": "x", "exists": "yes"}, "senior-title", "when.exists",
         "true or false"),
        (["fit", 0, "id"], "", None, "fit[0].id", "required"),
        (["fit", 0], "not a rule", None, "fit[0]", "rule mapping"),
        (["grades", 3, "min"], 0, None, "grades[3].min", "last grade has no min"),
        (["grades", 1, "min"], 50, None, "grades[1].min", "decrease"),
        (["grades", 0, "grade"], "AA", None, "grades[0].grade", "one character"),
        (["caps", "fit", "min"], 200, None, "caps.fit.min", "must not exceed max"),
        (["sla", "mql_hours"], 0, None, "sla.mql_hours", "must be > 0"),
        (["sla", "warn_hours", "sql"], 50, None, "sla.warn_hours.sql", "must not exceed"),
        (["sql", "bant_min"], 5, None, "sql.bant_min", "at most 4"),
        (["thresholds", "mql"], "eighty", None, "thresholds.mql", "expected a number"),
        (["version"], _DELETE, None, "version", "required"),
        (["thresold"], {"mql": 80}, None, "thresold", "unknown key"),
        (["fit"], {"id": "x"}, None, "fit", "list of rules"),
    ],
)
def test_validation_errors_name_file_rule_and_key(path: list[Any], value: Any,
                                                  rule: str | None, key: str | None,
                                                  message: str | None) -> None:
    data = mutate(path, value)
    if message is None:
        parse_rules(data, "team.yaml")
        return
    with pytest.raises(RulesError) as caught:
        parse_rules(data, "team.yaml")
    error = caught.value
    assert (error.source, error.rule_id, error.key) == ("team.yaml", rule, key)
    assert message in error.message
    text = str(error)
    assert text.startswith("team.yaml: ")
    assert (f"rule {rule!r}" in text) if rule else ("rule '" not in text)
    assert key in text


def test_yaml_errors_and_duplicate_keys_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: x\nfit: [\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"broken\.yaml: yaml: "):
        load_rules(broken)
    dup = tmp_path / "dup.yaml"
    dup.write_text("version: a\nversion: b\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"dup\.yaml: yaml: .*duplicate key 'version'"):
        load_rules(dup)
    with pytest.raises(RulesError, match=r"missing\.yaml: file: cannot read"):
        load_rules(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RulesError, match=r"empty\.yaml: file: expected a mapping"):
        load_rules(empty)


def test_version_must_fit_the_crm_field() -> None:
    with pytest.raises(RulesError, match="at most 40"):
        parse_rules({"version": "v" * 41}, "x.yaml")


def test_minimal_file_uses_documented_defaults() -> None:
    model = parse_rules({"version": 3}, "min.yaml")
    assert model.version == "3" and model.mql_threshold == 80 and model.bant_min == 3
    assert [g.grade for g in model.grades] == ["A", "B", "C", "D"]
    assert model.horizon_days is None  # every event counts (DESIGN.md §3a)
    assert model.lookback_days == 20_000  # so the sync reads all the engagement a CRM has
