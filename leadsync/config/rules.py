"""Rules-file loading and validation (DESIGN.md §3) into a compiled `ScoringModel`.

Every error is a `RulesError` whose message names the file, the rule id (when inside a rule)
and the key at fault, e.g. `rules.yaml: rule 'pricing': decay.half_life_days: must be > 0`.
Unknown keys are errors too: a typo such as `max_time` would otherwise silently change scores.
The file reference is docs/scoring.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import yaml

from leadsync.config.rules_parts import (
    RulesError,
    Where,
    number,
    parse_caps,
    parse_engagement_rule,
    parse_fit_rule,
    parse_free_domains,
    parse_grades,
    parse_recency_rule,
    parse_sla,
    section,
)
from leadsync.scoring.model import ScoringModel

__all__ = ["RulesError", "load_default_rules", "load_rules", "parse_rules"]

_TOP_KEYS = frozenset({"version", "thresholds", "sql", "grades", "caps", "fit", "engagement",
                       "recency", "sla", "free_email_domains"})
_MAX_VERSION_LEN = 40  # LeadSync_Model__c is Text(40)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (YAML would keep the last silently)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {line})", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_rules(path: Path) -> ScoringModel:
    """Read, validate and compile a rules file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(str(path), None, "file", f"cannot read: {exc}") from None
    return _parse_text(text, str(path))


def load_default_rules() -> ScoringModel:
    """The bundled default model (leadsync/config/default_rules.yaml)."""
    resource = resources.files("leadsync.config").joinpath("default_rules.yaml")
    return _parse_text(resource.read_text(encoding="utf-8"), "default_rules.yaml")


def _parse_text(text: str, source: str) -> ScoringModel:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RulesError(source, None, "yaml", " ".join(str(exc).split())) from None
    return parse_rules(data, source)


def parse_rules(data: object, source: str) -> ScoringModel:
    """Validate an already-parsed rules document (`source` names it in errors) and compile it."""
    top = Where(source)
    if not isinstance(data, Mapping):
        raise top.error("file", "expected a mapping at the top level (version, fit, ...)")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise top.error(unknown[0], f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    version = data.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version.strip():
        raise top.error("version", "required: a non-empty string written back with every score")
    if len(version) > _MAX_VERSION_LEN:
        raise top.error("version", f"at most {_MAX_VERSION_LEN} characters (CRM field length)")
    thresholds = section(data, "thresholds", top, {"mql"})
    sql = section(data, "sql", top, {"bant_min"})
    bant_min = number(sql, "bant_min", top.at("sql"), default=3, minimum=0, integer=True)
    if bant_min > 4:
        raise top.error("sql.bant_min", "at most 4 (BANT has four items)")
    seen_ids: set[str] = set()
    fit = tuple(parse_fit_rule(raw, i, top, seen_ids) for i, raw in _rules(data, "fit", top))
    engagement = tuple(
        parse_engagement_rule(raw, i, top, seen_ids) for i, raw in _rules(data, "engagement", top)
    )
    recency = tuple(
        parse_recency_rule(raw, i, top, seen_ids) for i, raw in _rules(data, "recency", top)
    )
    return ScoringModel(
        version=version.strip(),
        mql_threshold=number(thresholds, "mql", top.at("thresholds"), default=80),
        bant_min=int(bant_min),
        grades=parse_grades(data.get("grades"), top),
        caps=parse_caps(data.get("caps"), top),
        fit_rules=fit,
        engagement_rules=engagement,
        recency_rules=recency,
        sla=parse_sla(data.get("sla"), top),
        free_email_domains=parse_free_domains(data.get("free_email_domains"), top),
    )


def _rules(data: Mapping[object, object], key: str, top: Where) -> list[tuple[int, object]]:
    raw = data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise top.error(key, "expected a list of rules")
    return list(enumerate(raw))
