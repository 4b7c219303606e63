"""`leadsync review`: check the scoring model against outcomes (docs/review.md).

Reads both CRMs through the connectors (`leadsync.review.read`), scores every person as they
stood at the snapshot with the live rules (and `--candidate`), and reports what happened after
it: funnel, conversion by score band and grade, AUC, thresholds, rule lift, misfits and SLA.
Arguments are checked before any call (exit 2); an unreachable CRM exits 4, a spent budget 3.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table

from leadsync import exitcodes
from leadsync.commands.common import (
    FiniteFloatRange,
    checked_settings,
    console,
    err_console,
    fail,
    outcome,
    reported,
)

DEFAULT_LOOKBACK_DAYS = 90


def _bad(message: str) -> NoReturn:
    fail(message, exitcodes.CONFIG, stopped_reason="settings")


def _as_of(text: str | None, lookback: int | None, now: datetime) -> datetime:
    if text is not None and lookback is not None:
        _bad("--as-of and --lookback-days: give one of them, not both")
    if text is None:
        return now - timedelta(days=lookback or DEFAULT_LOOKBACK_DAYS)
    from leadsync.scoring import ProfileError, parse_datetime

    try:
        moment = parse_datetime(text, "--as-of")
    except ProfileError as exc:
        _bad(f"{exc}; expected ISO-8601 such as 2026-09-01T00:00:00Z")
    if moment is None:
        _bad("--as-of: empty; expected ISO-8601 such as 2026-09-01T00:00:00Z")
    if moment >= now:
        _bad(f"--as-of: {moment.isoformat()} is not before now ({now.isoformat()}): "
             "nothing can have happened after it yet")
    return moment


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


@click.command()
@click.option("--as-of", "as_of_text", default=None,
              help="Snapshot time, ISO-8601 (naive = UTC). Default: now - lookback.")
@click.option("--lookback-days", type=click.IntRange(min=1), default=None,
              help=f"Snapshot this many days ago (default {DEFAULT_LOOKBACK_DAYS}).")
@click.option("--outcome", "outcome_kind", type=click.Choice(["opportunity", "won"]),
              default="opportunity", show_default=True,
              help="What counts as the outcome after the snapshot.")
@click.option("--horizon-days", type=click.IntRange(min=1), default=None,
              help="Outcomes count within this many days of the snapshot. Default: up to now.")
@click.option("--candidate", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Another rules file to backtest on the same history, side by side.")
@click.option("--capacity", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="MQLs sales can work per month: report the threshold that fits it.")
@click.option("--max-calls", type=click.IntRange(min=1), default=None,
              help="Stop (exit 3) after this many API calls over both CRMs.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the as-of profiles (JSONL, DESIGN §2) with outcome and "
              "as_of, for `leadsync score --now AS_OF`.")
@click.option("--suggest", "suggest_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write a rules file with the re-weighted points (same rule "
              "ids), ready for --candidate and `leadsync score --rules`.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the review as one self-contained, offline HTML page "
              "with charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@reported()
def review(*, as_of_text: str | None, lookback_days: int | None, outcome_kind: str,
           horizon_days: int | None, candidate: Path | None, capacity: float | None,
           max_calls: int | None, export_path: Path | None, suggest_path: Path | None,
           html_path: Path | None, as_json: bool) -> None:
    """Check the scoring model against what happened after a snapshot (PDCA's check)."""
    from leadsync.config.rules import RulesError, load_rules

    candidate_model = None
    if candidate is not None:
        try:
            candidate_model = load_rules(candidate)
        except RulesError as exc:
            _bad(f"--candidate: {exc}")
    settings = checked_settings()
    if not (settings.hubspot.enabled or settings.salesforce.enabled):
        _bad("no CRM is configured: set LEADSYNC_HUBSPOT__ACCESS_TOKEN and/or the "
             "LEADSYNC_SALESFORCE__* credentials")
    from leadsync.runtime import build_runtime

    runtime = build_runtime(settings)
    run_review(runtime, as_of_text=as_of_text, lookback_days=lookback_days,
               outcome_kind=outcome_kind, horizon_days=horizon_days,
               candidate_model=candidate_model, capacity=capacity, max_calls=max_calls,
               export_path=export_path, suggest_path=suggest_path, html_path=html_path,
               as_json=as_json)


def run_review(runtime: Any, *, as_of_text: str | None = None, lookback_days: int | None = None,
               outcome_kind: str = "opportunity", horizon_days: int | None = None,
               candidate_model: Any = None, capacity: float | None = None,
               max_calls: int | None = None, export_path: Path | None = None,
               suggest_path: Path | None = None, html_path: Path | None = None,
               as_json: bool = False, quiet: bool = False, say: Any = None) -> dict[str, Any]:
    """The review over a built runtime (the command, the demo, benchmarks and tests share
    it); `quiet` prints nothing (the caller shows what it needs), `say` takes the progress
    lines (default: stderr)."""
    from leadsync.review.asof import score_cohort
    from leadsync.review.read import read_histories
    from leadsync.review.report import build_report

    now = runtime.clock()
    as_of = _as_of(as_of_text, lookback_days, now)
    horizon = timedelta(days=horizon_days) if horizon_days else now - as_of
    model = runtime.model
    if export_path is not None:
        _writable(export_path, "--export")
    if html_path is not None:
        _writable(html_path, "--html")
    if suggest_path is not None:
        source = _rules_source(runtime.settings.rules_file)
        _writable(suggest_path, "--suggest")
    lookback = max(model.lookback_days,
                   candidate_model.lookback_days if candidate_model else 0.0)
    since = as_of - timedelta(days=min(lookback, 3 * 365.0))
    histories, stats = read_histories(runtime.connectors, since, max_calls=max_calls,
                                      say=say or _say)
    cases = score_cohort(histories, model, as_of, horizon, outcome_kind,  # type: ignore[arg-type]
                         candidate=candidate_model)
    report = build_report(cases, histories, model, as_of=as_of, now=now, horizon=horizon,
                          outcome=outcome_kind, candidate=candidate_model,  # type: ignore[arg-type]
                          capacity=capacity)
    report["read"] = {"calls": stats.calls, "records": stats.records, "events": stats.events,
                      "deals": stats.deals, "unmatched_events": stats.unmatched_events}
    if export_path is not None:
        from leadsync.scoring import profile_to_dict

        with export_path.open("w", encoding="utf-8", newline="\n") as sink:
            for case in cases:
                line = {**profile_to_dict(case.profile), "outcome": case.outcome,
                        "as_of": as_of.isoformat()}
                sink.write(json.dumps(line, ensure_ascii=False) + "\n")
    if suggest_path is not None:
        report["suggested_rules"] = _write_suggestion(
            suggest_path, source, cases, model, as_of=as_of, outcome_kind=outcome_kind)
    if html_path is not None:
        from leadsync.review.html import render_html

        html_path.write_text(render_html(report), encoding="utf-8")
        report["html"] = str(html_path)
        (say or _say)(f"wrote {html_path}")
    if quiet:
        return report
    if as_json:
        click.echo(json.dumps({**outcome(exitcodes.OK), **report}, ensure_ascii=False))
    else:
        render(report)
    return report


def _rules_source(rules_file: Path | None) -> dict[str, Any]:
    """The live rules file as YAML data (LEADSYNC_RULES_FILE, else the bundled default)."""
    import yaml

    path = rules_file or Path(__file__).resolve().parents[1] / "config" / "default_rules.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        _bad(f"--suggest: cannot read the live rules file {path}: {exc}")
    if not isinstance(data, dict):
        _bad(f"--suggest: the live rules file {path} is not a mapping")
    return data


def _writable(path: Path, option: str) -> None:
    """Checked before any call, without creating or truncating the file."""
    if path.is_dir():
        _bad(f"{option}: {path} is a directory; expected a file path")
    if not path.parent.is_dir():
        _bad(f"{option}: cannot write {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        _bad(f"{option}: cannot write {path}: permission denied")


def _write_suggestion(path: Path, source: dict[str, Any], cases: Any, model: Any, *,
                      as_of: datetime, outcome_kind: str) -> dict[str, Any]:
    """Fit, write and re-load the suggested rules file (a file leadsync itself refuses is a
    bug, never written silently); what was written, for the report."""
    from leadsync.config.rules import RulesError, load_rules
    from leadsync.review.asof import sequence_of
    from leadsync.review.report import rule_points
    from leadsync.review.suggest import SuggestError, rules_yaml, suggest_points

    scored = sequence_of(cases)
    try:
        suggestions = suggest_points(scored, [(r, p) for r, _, p in rule_points(model)])
    except SuggestError as exc:
        fail(f"--suggest: cannot fit a model on this cohort: {exc}", exitcodes.FAILED_RECORDS,
             stopped_reason="suggest")
    version = f"{model.version}-suggested"[:40]
    header = (f"Suggested by `leadsync review --suggest` from {len(scored):,} people as of "
              f"{as_of.isoformat()} (outcome: {outcome_kind}).\n"
              "Points re-weighted by an L2-regularised logistic model over rule hits, mapped to "
              "the model's own scale\n(same total |points|); ± is one standard error. Only "
              "`points` and `version` differ from the live file.")
    path.write_text(rules_yaml(source, suggestions, scored, version=version, header=header),
                    encoding="utf-8")
    try:
        load_rules(path)
    except RulesError as exc:  # pragma: no cover - a bug in rules_yaml
        raise RuntimeError(f"the suggested rules file does not load: {exc}") from exc
    _say(f"wrote {path}: {sum(not s.kept for s in suggestions)} rule(s) re-weighted, "
         f"{sum(s.kept for s in suggestions)} kept (too few hits)")
    return {"path": str(path), "version": version,
            "changed": sum(1 for s in suggestions if s.suggested != s.points)}


# -- terminal rendering -------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        f"{value:.{digits}f}")


def render(report: dict[str, Any]) -> None:
    out = console
    head = report["auc"]["current"]
    out.print(f"[bold]Review of {report['model']}[/bold]: snapshot {report['as_of']}, outcome "
              f"'{report['outcome']}' until {report['window_end']}; {report['people']:,} people, "
              f"{report['outcomes']:,} reached it.  AUC {_num(head['value'])} "
              f"(95% {_num(head['low'])}–{_num(head['high'])})")
    _funnel(report["funnel"])
    bands = Table(title="Conversion by score band (as of the snapshot)")
    for column in ("band", "scores", "people", "outcomes", "rate"):
        bands.add_column(column, justify="left" if column in ("band", "scores") else "right")
    for band in report["bands"]["deciles"] + report["bands"]["threshold"]:
        bands.add_row(band["label"], f"{band['low']:g}..{band['high']:g}", str(band["people"]),
                      str(band["outcomes"]), _pct(band["rate"]))
    for grade in report["grades"]:
        bands.add_row(f"grade {grade['label']}", "", str(grade["people"]),
                      str(grade["outcomes"]), _pct(grade["rate"]))
    out.print(bands)
    _thresholds(report["thresholds"])
    rules = Table(title="Rule lift (rate with / rate without; ! = evidence against its sign, "
                        "~ = its points outside the suggestion ±2 SE)")
    for column in ("rule", "label", "points", "hits", "with", "without", "lift", "suggested"):
        rules.add_column(column, justify="left" if column in ("rule", "label") else "right")
    for row in report["rules"]:
        if row["suggested_points"] is None:
            suggested = "—"
        elif row["kept"]:
            suggested = f"{row['suggested_points']:+g} (kept)"
        else:
            suggested = f"{row['suggested_points']:+g} ±{row['uncertainty']:g}"
        mark = (" !" if row["contradicts"] else "") + (" ~" if row["weight_off"] else "")
        rules.add_row(row["rule"] + mark, row["label"],
                      f"{row['points']:+g}", str(row["hits"]), _pct(row["rate_with"]),
                      _pct(row["rate_without"]), _num(row["lift"]), suggested)
    out.print(rules)
    _misfits(report["misfits"])
    _sla(report["sla"])
    if "candidate" in report:
        _candidate(report["candidate"])
    read = report["read"]
    out.print("API calls: " + ", ".join(f"{k} {v:,}" for k, v in read["calls"].items())
              + f"; {read['records']:,} records, {read['events']:,} events, "
              f"{read['deals']:,} deal links")


def _funnel(f: dict[str, Any]) -> None:
    table = Table(title="Funnel (everyone read): lead → MQL → SQL → opportunity → won")
    table.add_column("cohort")
    for column in ("lead", "mql", "sql", "opportunity", "won", "lead→won"):
        table.add_column(column, justify="right")

    def row(name: str, part: dict[str, Any]) -> None:
        counts, rates = part["counts"], part["rates"]
        cells = [f"{counts['lead']:,}"]
        for a, b in (("lead", "mql"), ("mql", "sql"), ("sql", "opportunity"),
                     ("opportunity", "won")):
            cells.append(f"{counts[b]:,} ({_pct(rates[f'{a}->{b}'])})")
        table.add_row(name, *cells, _pct(rates["lead->won"]))

    row("all", f["overall"])
    for source, part in f["by_source"].items():
        row(f"source {source}", part)
    for month, part in f["by_mql_month"].items():
        row(f"MQL {month}", part)
    console.print(table)
    medians = ", ".join(f"{k} {_num(v, 1)} d" for k, v in f["median_days_in_stage"].items())
    console.print(f"Median time in stage: {medians}")


def _thresholds(t: dict[str, Any]) -> None:
    table = Table(title=f"Thresholds (MQL volume per month over {t['months']:.1f} months)")
    for column in ("threshold", "MQLs", "per month", "outcomes", "precision", "recall"):
        table.add_column(column, justify="right")
    for r in t["rows"]:
        mark = " ← current" if r["current"] else ""
        table.add_row(f"{r['threshold']:g}{mark}", str(r["volume"]), _num(r["per_month"], 1),
                      str(r["outcomes"]), _pct(r["precision"]), _pct(r["recall"]))
    console.print(table)
    if "capacity" in t:
        fit = t["capacity_threshold"]
        console.print(f"Capacity {t['capacity']:g} MQLs/month: "
                      + ("no threshold fits it" if fit is None else f"threshold {fit:g} fits"))


def _misfits(m: dict[str, Any]) -> None:
    for key, title in (("high_score_no_outcome", "High score but no outcome"),
                       ("low_score_outcome", "Low score but reached the outcome")):
        table = Table(title=title)
        for column in ("person", "score", "grade", "reasons", "records"):
            table.add_column(column)
        for e in m[key]:
            table.add_row(e["id"], f"{e['score']:g}", e["grade"], e["reasons"],
                          " ".join(e["records"]))
        console.print(table)


def _sla(s: dict[str, Any]) -> None:
    table = Table(title="SLA since the snapshot (clocks decided; met share; outcome met/breached)")
    for column in ("clock", "decided", "met", "share", "open", "outcome met", "outcome breached"):
        table.add_column(column, justify="left" if column == "clock" else "right")
    for stage in ("mql", "sql"):
        f = s[stage]
        table.add_row(stage, str(f["decided"]), str(f["met"]), _pct(f["share_met"]),
                      str(f["open"]), _pct(f["outcome_rate_met"]),
                      _pct(f["outcome_rate_breached"]))
    console.print(table)
    for stage in ("mql", "sql"):
        f = s[stage]
        buckets = ", ".join(f"{k} {v}" for k, v in f["time_to_first_touch"].items())
        console.print(f"{stage} time to first touch: {buckets}")
        owners = ", ".join(f"{o} {_pct(v['met'] / v['decided'] if v['decided'] else None)} "
                           f"of {v['decided']}" for o, v in f["by_owner"].items())
        if owners:
            console.print(f"{stage} met by owner: {owners}", markup=False)


def _candidate(c: dict[str, Any]) -> None:
    table = Table(title=f"Candidate {c['model']} against the live rules")
    for column in ("model", "AUC", "top-band lift", "MQLs", "outcomes captured"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for side in ("current", "candidate"):
        b = c[side]
        table.add_row(b["model"], _num(b["auc"]), _num(b["top_band_lift"]), str(b["mql_volume"]),
                      str(b["outcomes_captured"]))
    console.print(table)
    console.print(f"People who would change stage (MQL or not): {c['stage_changes']:,}")


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The review in a few numbers (what `leadsync demo` ends with): AUC, the three strongest
    and the three weakest rules by lift, SLA compliance."""
    ranked = sorted((r for r in report["rules"] if r["lift"] is not None),
                    key=lambda r: (-r["lift"], r["rule"]))
    return {"as_of": report["as_of"], "people": report["people"],
            "outcomes": report["outcomes"], "auc": report["auc"]["current"]["value"],
            "strongest": [(r["rule"], round(r["lift"], 2)) for r in ranked[:3]],
            "weakest": [(r["rule"], round(r["lift"], 2)) for r in ranked[-3:][::-1]],
            "sla_met": {stage: report["sla"][stage]["share_met"] for stage in ("mql", "sql")},
            "html": report.get("html")}


def print_headline(head: dict[str, Any]) -> None:
    lifts = "; ".join(f"{name}: " + (", ".join(f"{rule} ×{lift:.2f}" for rule, lift in head[name])
                                     or "— (no lift measured)")
                      for name in ("strongest", "weakest"))
    console.print(f"[bold]Review[/bold] (snapshot {head['as_of'][:10]}, {head['people']:,} "
                  f"people, {head['outcomes']:,} opportunities since): AUC {_num(head['auc'])}; "
                  f"{lifts}; SLA met: MQL {_pct(head['sla_met']['mql'])}, SQL "
                  f"{_pct(head['sla_met']['sql'])}" + (f"; page: {head['html']}"
                                                       if head["html"] else ""))
