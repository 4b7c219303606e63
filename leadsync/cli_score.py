"""`leadsync score`: offline scoring of profiles for tuning rules before they go live (DESIGN §8).

Input: JSONL (one profile per line, DESIGN.md §2) or CSV (one event per row, profile columns
repeated; see docs/scoring.md). Output: JSONL (`--format jsonl`, the default, exactly as §8),
CSV for spreadsheets, or a rich `table` summary for people tuning rules. A malformed line is
reported on stderr with its line number and skipped (in CSV, its whole person: never a
silently different score); a repeated id is reported and not scored twice; the run goes on and
exits 1 (`exitcodes.FAILED_RECORDS`) at the end if anything was skipped. A bad rules file
(`--rules`, else `LEADSYNC_RULES_FILE`, else the bundled default), `--now`, an unreadable input
or an unwritable output exits 2 (`exitcodes.CONFIG`) before anything is scored.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

import click

from leadsync import exitcodes
from leadsync.config.rules import RulesError, load_default_rules, load_rules
from leadsync.scoring import (
    Evaluation,
    ProfileError,
    ScoringModel,
    evaluate,
    parse_profile,
    render_reasons,
)
from leadsync.scoring.parse import parse_datetime
from leadsync.scoring.profile import EVENT_TYPES, Profile
from leadsync.scoring.tabular import (
    OUTPUT_COLUMNS,
    CsvRow,
    group_csv_rows,
    output_record,
    output_row,
    summarize,
)

if TYPE_CHECKING:
    from rich.console import Console

_FLUSH_EVERY = 2000
#: The largest CSV cell read (csv's own default limit, 128 KB); a larger one is reported by line
#: and column. Cells are read up to `_CSV_READ_LIMIT` so the column can be named.
CSV_CELL_LIMIT = 128 * 1024
_CSV_READ_LIMIT = 64 * 1024 * 1024
_UNKNOWN_NAMES = 20  # unknown event types named in the summary (the rest are only counted)


class _Run:
    """Counts and reports bad lines; formats evaluations for the chosen output."""

    def __init__(self, fmt: str, out: IO[str]) -> None:
        self.fmt = fmt
        self.out = out
        self.bad = 0
        self.duplicates = 0
        self.scored = 0
        self.unknown: dict[str, int] = {}  # event types the model cannot know, by name
        self.unknown_total = 0
        self.seen: dict[str, int] = {}  # id -> line it was scored from
        self.summarised = False  # the summary line was shown (on a terminal, with timing)
        self.tick: Callable[[], None] | None = None  # progress, every _FLUSH_EVERY profiles
        self.kept: list[Evaluation] = []
        self.pending: list[str] = []
        self.writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self.writer is not None:
            self.writer.writerow(OUTPUT_COLUMNS)

    def error(self, line: int, message: str) -> None:
        self.bad += 1
        click.echo(f"line {line}: {message}", err=True)

    def first_time(self, person_id: str, line: int) -> bool:
        """False (and reported) when this id was already scored from an earlier line."""
        first = self.seen.setdefault(person_id, line)
        if first == line:
            return True
        self.duplicates += 1
        click.echo(f"line {line}: id {person_id[:40]!r} already scored from line {first}: "
                   "duplicate id, not scored twice", err=True)
        return False

    def count_unknown(self, profile: Profile) -> None:
        for event in profile.events:
            if event.type not in EVENT_TYPES:
                self.unknown_total += 1
                name = event.type[:40]
                if name in self.unknown or len(self.unknown) < _UNKNOWN_NAMES:
                    self.unknown[name] = self.unknown.get(name, 0) + 1

    def summary(self, timing: str = "") -> str:
        """One line: what was scored (and how fast, when `timing` says), skipped, ignored."""
        self.summarised = True
        parts = [f"scored {self.scored:,} profile(s){timing}"]
        if self.bad:
            parts.append(f"{self.bad:,} malformed line(s) skipped")
        if self.duplicates:
            parts.append(f"{self.duplicates:,} duplicate id(s) not scored twice")
        if self.unknown_total:
            names = ", ".join(f"{k} {v:,}" for k, v in sorted(self.unknown.items(),
                                                               key=lambda kv: -kv[1]))
            parts.append(f"{self.unknown_total:,} event(s) of unknown type ignored ({names})")
        return "; ".join(parts)

    @property
    def failed(self) -> bool:
        return bool(self.bad or self.duplicates)

    def emit(self, evaluation: Evaluation) -> None:
        self.scored += 1
        if self.tick is not None and self.scored % _FLUSH_EVERY == 0:
            self.tick()
        if self.fmt == "jsonl":
            self.pending.append(json.dumps(output_record(evaluation), ensure_ascii=False))
            if len(self.pending) >= _FLUSH_EVERY:
                self.flush()
        elif self.writer is not None:
            self.writer.writerow(output_row(evaluation))
        else:
            self.kept.append(evaluation)

    def flush(self) -> None:
        if self.pending:
            self.out.write("\n".join(self.pending))
            self.out.write("\n")
            self.pending.clear()


def _score_jsonl(stream: BinaryIO, model: ScoringModel, now: datetime, run: _Run) -> None:
    loads = json.loads
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            profile = parse_profile(loads(line))
        except ProfileError as exc:
            run.error(number, str(exc))
            continue
        except (ValueError, RecursionError) as exc:  # JSON or UTF-8 decoding
            run.error(number, f"invalid JSON: {str(exc)[:120]}")
            continue
        if run.first_time(profile.id, number):
            run.count_unknown(profile)
            run.emit(evaluate(profile, model, now))


class _InputError(Exception):
    """Input that cannot be read on (a CSV cell beyond what the reader takes)."""


def _csv_rows(stream: BinaryIO, run: _Run) -> Iterator[CsvRow]:
    """(line, row, problem) per CSV record; a problem makes the row's person unscorable."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    csv.field_size_limit(_CSV_READ_LIMIT)
    reader = csv.DictReader(text)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise _InputError(f"line 1: unreadable CSV header: {exc}") from None
    if fieldnames is None or "id" not in fieldnames:
        run.error(1, "CSV header must name an 'id' column (see docs/scoring.md)")
        return
    line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _InputError(f"line {reader.line_num}: unreadable CSV ({exc}); "
                              f"cells are limited to {CSV_CELL_LIMIT // 1024} KB") from None
        first, line = line + 1, reader.line_num
        yield first, row, _row_problem(row)


def _row_problem(row: dict[str, str]) -> str | None:
    if None in row:
        return "more cells than header columns"
    for column, value in row.items():
        if value and len(value) > CSV_CELL_LIMIT:
            return (f"column {column[:40]!r}: cell of {len(value) // 1024:,} KB is larger than "
                    f"{CSV_CELL_LIMIT // 1024} KB")
        if value and "\ufffd" in value:
            return f"column {column[:40]!r}: not valid UTF-8"
    return None


def _score_csv(stream: BinaryIO, model: ScoringModel, now: datetime, run: _Run) -> None:
    profiles, errors = group_csv_rows(_csv_rows(stream, run))
    for error in errors:
        run.error(error.line, str(error))
    for entry in profiles:
        person = f"{entry.fields['id']!s:.40}"
        if entry.problems:
            for line, problem in entry.problems:
                run.error(line, problem)
            lines = ", ".join(str(n) for n in entry.lines[:10]) + (
                ", ..." if len(entry.lines) > 10 else "")
            click.echo(f"profile {person} (lines {lines}): not scored, "
                       f"{len(entry.problems)} bad row(s)", err=True)
            continue
        try:
            profile = parse_profile(entry.as_dict())
        except ProfileError as exc:
            run.error(entry.line_for(exc.field), f"profile {person}: {exc}")
            continue
        run.count_unknown(profile)
        run.emit(evaluate(profile, model, now))


def _print_table(evaluations: list[Evaluation], model: ScoringModel, now: datetime, *,
                 limit: int, stream: IO[str]) -> None:
    """A readable summary for people tuning rules: top profiles, rule usage, distributions."""
    from rich.console import Console
    from rich.table import Table

    # as wide as the terminal it is shown on (rich reads its size, or COLUMNS); 120 in a file
    console = Console(file=stream, highlight=False,
                      width=None if stream.isatty() else _file_width())
    summary = summarize(evaluations)
    top = Table(title=f"Top {min(limit, len(evaluations))} of {summary.profiles} profiles "
                f"(model {model.version}, now {now.isoformat()})")
    for column in ("id", "score", "fit", "eng", "grade", "stage", "reasons"):
        top.add_column(column, justify="right" if column in ("score", "fit", "eng") else "left")
    ranked = sorted(evaluations, key=lambda ev: (-ev.score, ev.person_id))[:limit]
    for ev in ranked:
        top.add_row(ev.person_id, str(ev.score), str(ev.fit), str(ev.engagement), ev.grade,
                    ev.stage + (" *" if ev.instant_mql else ""), render_reasons(ev.reasons, 80))
    console.print(top)
    rules = Table(title="Rules (profiles each rule contributed to)")
    for column in ("rule", "label", "profiles", "share", "mean points"):
        rules.add_column(column)
    for stat in summary.rules:
        share = stat.profiles / summary.profiles if summary.profiles else 0.0
        rules.add_row(stat.rule, stat.label, str(stat.profiles), f"{share:.0%}",
                      f"{stat.mean_points:+.1f}")
    console.print(rules)
    console.print("stages: " + ", ".join(f"{k} {v}" for k, v in summary.by_stage.items()))
    console.print("grades: " + ", ".join(f"{k} {v}" for k, v in summary.by_grade.items()))
    console.print("score: " + ", ".join(f"{k} {v}" for k, v in summary.score_quantiles.items())
                  + f"; mql or later: {summary.mql_or_better}  (* = instant MQL occurrence)")


def _file_width() -> int:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 40 else 120


def _status_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@contextmanager
def _progress(run: _Run, source: BinaryIO, size: int | None, show: bool) -> Iterator[None]:
    """A progress bar by bytes read, on a terminal's stderr only (never in pipes or logs),
    then one summary line."""
    console = _status_console()
    if not show or not console.is_terminal or not size:
        yield
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    started = time.monotonic()
    with Progress("scoring", BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("scoring", total=size)
        run.tick = lambda: bar.update(task, completed=source.tell())
        yield
    took = max(time.monotonic() - started, 1e-9)
    console.print(run.summary(f" in {took:.1f} s ({run.scored / took:,.0f}/s)"),
                  highlight=False)


def _load_model(rules: Path | None, from_env: bool) -> ScoringModel:
    try:
        return load_default_rules() if rules is None else load_rules(rules)
    except RulesError as exc:
        source = "LEADSYNC_RULES_FILE" if from_env else "--rules"
        raise click.exceptions.Exit(_fail(f"{source}: {exc}")) from None


def _fail(message: str) -> int:
    click.echo(f"error: {message}", err=True)
    return exitcodes.CONFIG


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = parse_datetime(text, "--now")
    except ProfileError as exc:
        raise click.exceptions.Exit(_fail(str(exc))) from None
    if moment is None:
        raise click.exceptions.Exit(_fail("--now: empty"))
    return moment


@click.command("score")
@click.option("--rules", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="LEADSYNC_RULES_FILE", show_envvar=True,
              help="Rules file (YAML). Default: LEADSYNC_RULES_FILE, else the bundled default.")
@click.option("--input", "input_path", required=True,
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Profiles: JSONL (one per line) or CSV (one event per row); '-' for stdin.")
@click.option("--now", "now_text", default=None,
              help="Evaluation time, ISO-8601 (naive = UTC). Default: the current time.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "table"]), default="jsonl",
              show_default=True, help="Output format.")
@click.option("--input-format", type=click.Choice(["auto", "jsonl", "csv"]), default="auto",
              show_default=True, help="auto: CSV when the file name ends in .csv, else JSONL.")
@click.option("--output", "-o", "output_path", default="-",
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Where to write results; '-' (default) for stdout.")
@click.option("--limit", default=40, show_default=True, type=click.IntRange(min=1),
              help="table: how many top-scoring profiles to list.")
def score(*, rules: Path | None, input_path: Path, now_text: str | None, fmt: str,
          input_format: str, output_path: Path, limit: int) -> None:
    """Score profiles offline with a rules file, for tuning rules before they go live."""
    source_of_rules = click.get_current_context().get_parameter_source("rules")
    model = _load_model(rules, source_of_rules is click.core.ParameterSource.ENVIRONMENT)
    now = _parse_now(now_text)
    as_csv = input_format == "csv" or (
        input_format == "auto" and input_path.suffix.lower() == ".csv")
    stdin, stdout = str(input_path) == "-", str(output_path) == "-"
    try:
        source: BinaryIO = sys.stdin.buffer if stdin else input_path.open("rb")
    except OSError as exc:
        message = f"--input: cannot read {input_path}: {exc.strerror}"
        raise click.exceptions.Exit(_fail(message)) from None
    try:
        sink = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n") if stdout \
            else output_path.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        if not stdin:
            source.close()
        message = f"--output: cannot write {output_path}: {exc.strerror}"
        raise click.exceptions.Exit(_fail(message)) from None
    run = _Run(fmt, sink)
    size = None if stdin else os.fstat(source.fileno()).st_size
    # the bar shares the terminal only with results that come at the end (table) or go elsewhere
    show = fmt == "table" or not stdout or not sys.stdout.isatty()
    unreadable: str | None = None
    try:
        with _progress(run, source, size, show):
            try:
                (_score_csv if as_csv else _score_jsonl)(source, model, now, run)
            except _InputError as exc:
                unreadable = str(exc)
            run.flush()
        if fmt == "table" and unreadable is None:
            _print_table(run.kept, model, now, limit=limit, stream=sink)
    finally:
        sink.flush()
        if stdout:
            sink.detach()
        else:
            sink.close()
        if not stdin:
            source.close()
    if unreadable is not None:
        click.echo(f"error: --input {input_path}: {unreadable}", err=True)
        raise click.exceptions.Exit(exitcodes.CONFIG)
    if not run.summarised and (run.failed or run.unknown_total):
        click.echo(run.summary(), err=True)
    if run.failed:
        raise click.exceptions.Exit(exitcodes.FAILED_RECORDS)
