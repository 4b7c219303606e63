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


# --- what the CRM fields can hold, YAML pitfalls, hostile files (issue 10) --------------------

def load_text(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(RulesError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'rules.yaml'}: "), message  # names the file
    return message[len(str(tmp_path / "rules.yaml")) + 2:]


FIT = "  - {id: big, label: Big, points: %s, when: {field: email, exists: true}}\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("version: x\ncaps: {engagement: {max: 100000}}\n",
     "caps.engagement.max: 100000 is beyond what the CRM fields hold: score, fit and engagement "
     "are written to CRM fields Number(4,0) (-9999..9999)"),
    ("version: x\ncaps: {fit: {min: -10000}}\n",
     "caps.fit.min: -10000 is beyond what the CRM fields hold: score, fit and engagement are "
     "written to CRM fields Number(4,0) (-9999..9999)"),
    ("version: x\ncaps: {fit: {max: 5000}, engagement: {max: 5000}}\n",
     "caps.engagement.max: fit.max 5000 + engagement.max 5000 allows a score of 10000: score, "
     "fit and engagement are written to CRM fields Number(4,0) (-9999..9999); lower one of them"),
    ("version: x\ncaps: {fit: {min: -4999.5}, engagement: {min: -4999.5}}\n",
     "caps.engagement.min: fit.min -4999.5 + engagement.min -4999.5 allows a score of -10000: "
     "score, fit and engagement are written to CRM fields Number(4,0) (-9999..9999); lower one "
     "of them"),
    ("version: x\nfit:\n" + FIT % "99999999999999999999999",
     "rule 'big': points: 99999999999999999999999 is beyond what the CRM fields hold: score, "
     "fit and engagement are written to CRM fields Number(4,0) (-9999..9999)"),
    ("version: x\nfit:\n" + FIT % "1e308",
     "rule 'big': points: expected a number, got the text '1e308': YAML reads an exponent "
     "without a dot and a sign as text; write the number out (e.g. 1000) or as 1.0e+3"),
    ("version: x\nfit:\n" + FIT % "1.0e+308",
     "rule 'big': points: 1e+308 is beyond what the CRM fields hold: score, fit and engagement "
     "are written to CRM fields Number(4,0) (-9999..9999)"),
    ("version: x\nfit:\n" + FIT % ".inf",
     "rule 'big': points: expected a finite number, got inf"),
    ("version: x\nengagement:\n  - {id: e, points: 1, event: page_view, max_points: 12000}\n",
     "rule 'e': max_points: 12000 is beyond what the CRM fields hold: score, fit and engagement "
     "are written to CRM fields Number(4,0) (-9999..9999)"),
    ("version: x\nengagement:\n  - {id: e, points: 1, event: page_view, within_days: 1.0e+300}\n",
     "rule 'e': within_days: must be <= 36500, got 1e+300"),
    ("version: x\nengagement:\n  - {id: e, points: 1, event: page_view, "
     "decay: {half_life_days: 1.0e+200}}\n",
     "rule 'e': decay.half_life_days: must be <= 36500, got 1e+200"),
    ("version: x\nthresholds: {mql: 1e308}\n",
     "thresholds.mql: expected a number, got the text '1e308': YAML reads an exponent without "
     "a dot and a sign as text; write the number out (e.g. 1000) or as 1.0e+3"),
    ("version: x\nrecency:\n  - {id: 'cap:fit', points: -5, inactive_days: 9}\n",
     "recency[0].id: 'cap:fit': ids starting with 'cap:' are reserved for the caps' reason lines"),
    ("version: x\nhorizon_days: 0\n", "horizon_days: must be >= 1, got 0"),
    # a tab in the indentation: YAML's message, and what to do about it
    ("version: x\nrouting:\n\tpools: {}\n",
     "yaml: line 3, column 1: found character '\\t' that cannot start any token: YAML indents "
     "with spaces, never tabs"),
    # business-hours SLA hours that end past a century (was: OverflowError, exit 1 as a bug)
    ("version: x\nsla:\n  mql_hours: 100000\n  business_hours: {timezone: Asia/Tokyo, "
     "days: [sun], hours: ['00:00-00:01'], holidays: none}\n",
     "sla.mql_hours: 100000 working hours take about 114,990 years at sla.business_hours' "
     "0.0167 open hours a week: at most 86 (a century)"),
    ("version: x\nsla:\n  mql_hours: 24\n  sql_hours: 300000\n  business_hours: "
     "{timezone: Asia/Tokyo}\n",
     "sla.sql_hours: 300000 working hours take about 128 years at sla.business_hours' 45 open "
     "hours a week: at most 234,642 (a century)"),
    # a routing target who counts as nobody would be routed again every cycle
    ("version: x\nrouting:\n  unassigned_owners: [Integration@corp.example]\n  pools: "
     "{kanto: {members: [a@corp.example, integration@corp.example]}}\n  rules:\n"
     "  - {id: kanto, when: {field: state, eq: 東京都}, pool: kanto}\n",
     "routing.pools.kanto.members[1]: integration@corp.example is also in "
     "routing.unassigned_owners (owners who count as nobody): a person routed there would be "
     "routed again every cycle"),
    ("version: x\nrouting:\n  unassigned_owners: [integration@corp.example]\n  rules:\n"
     "  - {id: all, when: {field: country, eq: JP}, owner: INTEGRATION@corp.example}\n",
     "rule 'all': owner: integration@corp.example is also in routing.unassigned_owners "
     "(owners who count as nobody): a person routed there would be routed again every cycle"),
    # a quoted number is text, and the message says so (no talk of exponents)
    ("version: x\nfit:\n" + FIT % "'5'",
     "rule 'big': points: expected a number, got the text '5': write it without quotes"),
    ("version: x\nthresholds: {mql: \"inf\"}\n",
     "thresholds.mql: expected a finite number, got the text 'inf'"),
    # `attributes.state` names no fact (attributes are read by their bare name): refused, as it
    # would never match, in fit, account and routing conditions alike
    ("version: x\nfit:\n  - {id: tokyo, points: 5, when: {field: attributes.state, "
     "eq: 東京都}}\n",
     "rule 'tokyo': when.field: 'attributes.state': attributes are read by their bare name "
     "(field: state)"),
    ("version: x\nrouting:\n  rules:\n  - {id: kanto, when: {any: [{field: country, eq: JP}, "
     "{field: attributes.pref, eq: x}]}, owner: a@corp.example}\n",
     "rule 'kanto': when.any[1].field: 'attributes.pref': attributes are read by their bare "
     "name (field: pref)"),
    ("version: x\naccounts:\n  mqa: 10\n  rules: [{id: t, points: 5, when: {field: "
     "attributes., eq: true}}]\n",
     "rule 't': when.field: 'attributes.': attributes are read by their bare name (field: NAME)"),
    ("version: [2026]\n", "version: required: a non-empty string written back with every score"),
])
def test_refused_with_file_rule_and_key(tmp_path: Path, text: str, expected: str) -> None:
    assert refused(tmp_path, text) == expected


def test_version_keeps_what_was_written(tmp_path: Path) -> None:
    assert load_text(tmp_path, "version: 2026.10\n").version == "2026.10"
    assert load_text(tmp_path, "version: 2026.100\n").version == "2026.100"
    assert load_text(tmp_path, "version: 007\n").version == "007"
    assert load_text(tmp_path, "version: '2026.10'\n").version == "2026.10"
    # an already-parsed document has lost the text: refused, with what to do
    with pytest.raises(RulesError, match=r"^r\.yaml: version: 2026\.1 is a number, and YAML "
                       r"drops its trailing zeros: quote it \(version: \"2026\.1\"\)"):
        parse_rules({"version": 2026.1}, "r.yaml")


def alias_bomb(levels: int) -> str:
    """A rules file whose one condition doubles with every level of nested aliases."""
    parts = ["{any: &x0 [{field: email, eq: a}, {field: email, eq: b}]}"]
    parts += [f"{{any: &x{i} [{{any: *x{i - 1}}}, {{any: *x{i - 1}}}]}}" for i in range(1, levels)]
    return ("version: x\nfit:\n  - id: z\n    points: 1\n    when: {any: ["
            + ", ".join(parts) + "]}\n")


def test_alias_bombs_are_refused_in_well_under_a_second(tmp_path: Path) -> None:
    import time

    text = alias_bomb(30)
    assert len(text.encode()) < 1400  # about the 1.3 KB file that took 34 s to load
    started = time.monotonic()
    message = refused(tmp_path, text)
    assert time.monotonic() - started < 0.5
    assert message == ("yaml: aliases expand to more than 50,000 values: refused "
                       "(nested aliases?)")


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    model = load_text(tmp_path, alias_bomb(4))
    assert [r.id for r in model.fit_rules] == ["z"]


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    rule = "  - {id: r%d, points: 1, event: page_view, where: *w}\n"
    text = ("version: x\nengagement:\n  - {id: r0, points: 1, event: page_view, "
            "where: &w {url: {contains: /x}}}\n" + "".join(rule % i for i in range(1, 202)))
    message = refused(tmp_path, text)
    assert message.startswith("yaml: line 204, column ")
    assert message.endswith("more than 200 aliases (*name): refused")


def test_huge_files_are_refused_before_parsing(tmp_path: Path) -> None:
    text = "version: x\n" + "# padding\n" * 60_000
    assert refused(tmp_path, text) == "file: larger than 512 KB: not a rules file?"


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(RulesError, match=r"missing\.yaml: file: cannot read: No such file"):
        load_rules(path)
    path.write_bytes(b"version: \xff\n")
    with pytest.raises(RulesError, match=r"missing\.yaml: file: not UTF-8 text \(byte 9\)"):
        load_rules(path)
