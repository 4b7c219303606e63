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

from leadsync.config.rules_accounts import inherit_fit_rule, parse_accounts
from leadsync.config.rules_parts import (
    RulesError,
    Where,
    days,
    number,
    parse_caps,
    parse_engagement_rule,
    parse_fit_rule,
    parse_free_domains,
    parse_grades,
    parse_recency_rule,
    parse_sla,
    points_value,
    section,
)
from leadsync.config.rules_routing import parse_routing
from leadsync.scoring.model import ScoringModel

__all__ = ["RulesError", "load_default_rules", "load_rules", "parse_rules"]

_TOP_KEYS = frozenset({"version", "thresholds", "sql", "grades", "caps", "fit", "engagement",
                       "recency", "sla", "free_email_domains", "horizon_days", "routing",
                       "accounts"})
_MAX_VERSION_LEN = 40  # LeadSync_Model__c is Text(40)


#: A rules file is a page of YAML; a much larger one is a mistake (or an attack).
MAX_RULES_BYTES = 512 * 1024
#: Aliases (`*name`) a rules file may use, and the nodes it may expand to with every alias
#: followed: a "billion laughs" file of nested aliases is refused before it is built.
MAX_ALIASES = 200
MAX_EXPANDED_NODES = 50_000


class _RulesLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (YAML would keep the last silently) and
    counts aliases while composing (`MAX_ALIASES`)."""

    aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name): refused", mark)
        return super().compose_node(parent, index)


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


_RulesLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document with every alias followed (each shared node counted every time it
    is reached), computed once per distinct node; stops counting past the limit."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a cycle (a recursive alias) counts once, then is refused below
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_EXPANDED_NODES + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def load_rules(path: Path) -> ScoringModel:
    """Read, validate and compile a rules file."""
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise RulesError(str(path), None, "file", f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_RULES_BYTES:
        raise RulesError(str(path), None, "file",
                         f"larger than {MAX_RULES_BYTES // 1024} KB: not a rules file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(str(path), None, "file",
                         f"not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    return _parse_text(text, str(path))


def load_default_rules() -> ScoringModel:
    """The bundled default model (leadsync/config/default_rules.yaml)."""
    resource = resources.files("leadsync.config").joinpath("default_rules.yaml")
    return _parse_text(resource.read_text(encoding="utf-8"), "default_rules.yaml")


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    tab = ": YAML indents with spaces, never tabs" if "'\\t'" in str(problem) else ""
    return where + " ".join(str(problem).split()) + tab


def _parse_text(text: str, source: str) -> ScoringModel:
    if len(text) > MAX_RULES_BYTES:
        raise RulesError(source, None, "file",
                         f"larger than {MAX_RULES_BYTES // 1024} KB: not a rules file?")
    loader = _RulesLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return parse_rules(None, source)
        if _expanded_size(node) > MAX_EXPANDED_NODES:
            raise RulesError(source, None, "yaml", f"aliases expand to more than "
                             f"{MAX_EXPANDED_NODES:,} values: refused (nested aliases?)")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise RulesError(source, None, "yaml", _yaml_error(exc)) from None
    except RecursionError:
        raise RulesError(source, None, "yaml", "nested too deeply") from None
    finally:
        loader.dispose()
    if isinstance(data, dict):
        version = _raw_scalar(node, "version")
        if version is not None and isinstance(data.get("version"), int | float):
            data["version"] = version  # as written: `2026.10` stays "2026.10", not 2026.1
    return parse_rules(data, source)


def _raw_scalar(node: yaml.Node, key: str) -> str | None:
    """The text of a top-level scalar as written in the file (before YAML typed it)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None


def parse_rules(data: object, source: str) -> ScoringModel:
    """Validate an already-parsed rules document (`source` names it in errors) and compile it."""
    top = Where(source)
    if not isinstance(data, Mapping):
        raise top.error("file", "expected a mapping at the top level (version, fit, ...)")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise top.error(unknown[0], f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if isinstance(version, float):
        raise top.error("version", f"{version!r} is a number, and YAML drops its trailing "
                        f"zeros: quote it (version: \"{version}\") so it is kept as written")
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
    horizon = days(data, "horizon_days", top, minimum=1, integer=True)
    accounts = parse_accounts(data.get("accounts"), top, seen_ids)
    inherited = inherit_fit_rule(accounts)  # members' inherited points: one more fit rule
    if inherited is not None:
        fit = (*fit, inherited)
    return ScoringModel(
        version=version.strip(),
        mql_threshold=points_value(thresholds, "mql", top.at("thresholds"), default=80),
        bant_min=int(bant_min),
        grades=parse_grades(data.get("grades"), top),
        caps=parse_caps(data.get("caps"), top),
        fit_rules=fit,
        engagement_rules=engagement,
        recency_rules=recency,
        sla=parse_sla(data.get("sla"), top),
        free_email_domains=parse_free_domains(data.get("free_email_domains"), top),
        horizon_days=None if horizon is None else int(horizon),
        routing=parse_routing(data.get("routing"), top),
        accounts=accounts,
    )


def _rules(data: Mapping[object, object], key: str, top: Where) -> list[tuple[int, object]]:
    raw = data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise top.error(key, "expected a list of rules")
    return list(enumerate(raw))
