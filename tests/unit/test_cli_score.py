"""`leadsync score` end to end through click: formats, bad lines, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadsync.cli import cli

NOW = "2026-11-03T00:00:00Z"
GOOD = {
    "id": "p-1", "email": "taro.yamada@example.co.jp", "title": "営業部長", "employees": 150,
    "events": [
        {"type": "page_view", "at": "2026-11-01T10:00:00Z", "url": "https://www.example.com/pricing"},
        {"type": "form_submit", "at": "2026-11-02T09:00:00Z", "form": "demo_request"}],
    "stage": "lead",
}
COLD = {"id": "p-2", "email": "x@gmail.com", "title": "Engineer"}


def invoke(tmp_path: Path, lines: list[str], *args: str, name: str = "in.jsonl"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    return runner.invoke(cli, ["score", "--input", str(path), "--now", NOW, *args])


def test_jsonl_output_is_exactly_the_contract(tmp_path: Path) -> None:
    result = invoke(tmp_path, [json.dumps(GOOD), json.dumps(COLD)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["p-1", "p-2"]
    first = records[0]
    assert list(first) == ["id", "score", "fit", "engagement", "grade", "stage", "instant_mql",
                           "reasons", "model"]
    assert (first["fit"], first["grade"], first["stage"], first["instant_mql"]) == (
        25, "B", "mql", True)
    assert first["score"] == first["fit"] + first["engagement"]
    assert first["reasons"][0] == {"rule": "demo", "label": "デモをリクエスト", "points": 50.0,
                                  "count": 1}
    assert first["model"] == "default-2026.11"
    assert records[1]["reasons"][0]["rule"] in {"free-email", "inactive-90d"}
    assert "デモ" in result.stdout  # not \\u-escaped


def test_bad_lines_are_reported_with_numbers_and_skipped(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD), "{not json", "", json.dumps({"id": "p-3", "events": "x"}),
             json.dumps({"id": "p-4", "events": [{"type": "page_view", "at": "someday"}]}),
             json.dumps(["a list"]), json.dumps(COLD)]
    result = invoke(tmp_path, lines)
    assert result.exit_code == 1
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == ["p-1", "p-2"]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 2: invalid JSON")
    assert errors[1] == "line 4: events: expected a list, got str"
    assert errors[2].startswith("line 5: events[0].at: not an ISO-8601 date")
    assert errors[3].startswith("line 6: profile: expected an object")
    assert errors[-1] == "scored 2 profile(s); 4 malformed line(s) skipped"


def test_invalid_utf8_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"id": "\xff"}\n')
    result = CliRunner().invoke(cli, ["score", "--input", str(path), "--now", NOW])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr.startswith("line 2: invalid JSON")


def test_rules_file_and_its_errors(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: tuned-1\nfit:\n  - {id: jp, label: 日本, points: 7, "
                     "when: {field: email_domain, matches: '\\.jp$'}}\n", encoding="utf-8")
    result = invoke(tmp_path, [json.dumps(GOOD)], "--rules", str(rules))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["fit"], record["model"]) == (7, "tuned-1")
    rules.write_text("version: bad\nfit:\n  - {id: jp, points: 7, when: {field: x, near: 1}}\n",
                     encoding="utf-8")
    result = invoke(tmp_path, [json.dumps(GOOD)], "--rules", str(rules))
    assert result.exit_code == 2
    assert "rules.yaml: rule 'jp': when.near: unknown operator" in result.stderr
    assert result.stdout == ""


def test_bad_now_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(GOOD), encoding="utf-8")
    result = CliRunner().invoke(cli, ["score", "--input", str(path), "--now", "tomorrow"])
    assert result.exit_code == 2 and "--now" in result.stderr


def test_now_changes_the_result(tmp_path: Path) -> None:
    later = invoke(tmp_path, [json.dumps(GOOD)])
    result = CliRunner().invoke(cli, ["score", "--input", str(tmp_path / "in.jsonl"),
                                      "--now", "2027-06-01T00:00:00+09:00"])
    assert json.loads(result.stdout)["score"] < json.loads(later.stdout)["score"]


CSV_HEADER = ["id", "email", "title", "employees", "bant_budget", "plan", "event_type",
              "event_at", "event_url", "event_form"]


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def test_csv_input_groups_rows_by_id(tmp_path: Path) -> None:
    text = csv_text([
        ["p-1", "taro.yamada@example.co.jp", "営業部長", "150", "true", "gold", "page_view",
         "2026-11-01T19:00:00+09:00", "https://www.example.com/pricing", ""],
        ["p-2", "x@gmail.com", "Engineer", "", "", "", "", "", "", ""],
        ["p-1", "", "", "", "", "", "form_submit", "2026-11-02T09:00:00Z", "", "demo_request"],
    ])
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["score", "--input", str(path), "--now", NOW])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["p-1", "p-2"]
    assert (records[0]["fit"], records[0]["stage"], records[0]["instant_mql"]) == (25, "mql", True)
    # same person as JSONL gives the same answer
    jsonl = invoke(tmp_path, [json.dumps(GOOD)])
    assert json.loads(jsonl.stdout)["score"] == records[0]["score"]


def test_csv_bad_rows_name_their_line(tmp_path: Path) -> None:
    text = csv_text([
        ["p-1", "a@example.com", "", "", "", "", "page_view", "2026-11-01", "/x", ""],
        ["", "b@example.com", "", "", "", "", "", "", "", ""],
        ["p-1", "", "", "", "", "", "page_view", "not a date", "/y", ""],
        ["p-2", "c@example.com", "", "", "", "", "", "", "", ""],
    ])
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["score", "--input", str(path), "--now", NOW])
    assert result.exit_code == 1
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == ["p-2"]
    assert "line 3: id: missing" in result.stderr
    assert "line 4: profile p-1: events[1].at" in result.stderr


def test_csv_output_format(tmp_path: Path) -> None:
    result = invoke(tmp_path, [json.dumps(GOOD)], "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "score", "fit", "engagement", "grade", "stage", "instant_mql",
                       "reasons", "model"]
    assert rows[1][0] == "p-1" and rows[1][6] == "true"
    assert rows[1][7].startswith("+50 デモをリクエスト; +15 役職が部長以上")


def test_table_format_summarises(tmp_path: Path) -> None:
    result = invoke(tmp_path, [json.dumps(GOOD), json.dumps(COLD)], "--format", "table")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Top 2 of 2 profiles" in out and "p-1" in out and "p-2" in out
    assert "senior-title" in out and "stages:" in out and "grades:" in out


def test_output_file_and_stdin(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["score", "--input", "-", "--now", NOW, "-o", str(out)],
                                input=json.dumps(GOOD) + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["id"] == "p-1"


@pytest.mark.parametrize("missing", ["--input"])
def test_input_is_required(missing: str) -> None:
    result = CliRunner().invoke(cli, ["score", "--now", NOW])
    assert result.exit_code == 2 and missing in result.output


def test_progress_and_summary_on_a_terminal_only(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from leadsync import cli_score

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=100)
    monkeypatch.setattr(cli_score, "_status_console", lambda: terminal)
    monkeypatch.setattr(cli_score, "_FLUSH_EVERY", 10)  # ticks on a small file
    lines = [json.dumps({**GOOD, "id": f"p-{i}"}) for i in range(45)] + ["{broken"]
    out = tmp_path / "out.jsonl"
    result = invoke(tmp_path, lines, "-o", str(out))
    assert result.exit_code == 1  # the broken line
    assert len(out.read_text(encoding="utf-8").splitlines()) == 45
    shown = screen.getvalue()
    assert "scored 45 profile(s) in " in shown and "; 1 malformed line(s) skipped" in shown
    monkeypatch.setattr(cli_score, "_status_console", lambda: Console(file=io.StringIO()))
    plain = invoke(tmp_path, lines[:3])
    assert plain.exit_code == 0 and "scored" not in plain.output  # not a terminal: silent


# --- issue 10: rules from the environment, bad rows, duplicates, time formats, exit codes ----

def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def score(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["score", "--now", NOW, *args], env=env)


def test_rules_file_from_the_environment(tmp_path: Path) -> None:
    data = write(tmp_path, "in.jsonl", json.dumps(GOOD) + "\n")
    rules = write(tmp_path, "env.yaml", "version: from-env\nthresholds: {mql: 5}\n")
    result = score("--input", str(data), env={"LEADSYNC_RULES_FILE": str(rules)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "from-env"
    # --rules wins over the environment
    other = write(tmp_path, "cli.yaml", "version: from-cli\n")
    result = score("--input", str(data), "--rules", str(other),
                   env={"LEADSYNC_RULES_FILE": str(rules)})
    assert json.loads(result.stdout)["model"] == "from-cli"


def test_a_missing_rules_file_from_the_environment_is_an_error(tmp_path: Path) -> None:
    data = write(tmp_path, "in.jsonl", json.dumps(GOOD) + "\n")
    missing = tmp_path / "nope.yaml"
    result = score("--input", str(data), env={"LEADSYNC_RULES_FILE": str(missing)})
    assert result.exit_code == 2
    assert result.stderr == (f"error: LEADSYNC_RULES_FILE: {missing}: file: cannot read: "
                             "No such file or directory\n")
    assert result.stdout == ""


def test_csv_person_with_a_bad_row_is_reported_and_not_scored(tmp_path: Path) -> None:
    text = csv_text([
        ["p-1", "taro.yamada@example.co.jp", "営業部長", "150", "", "", "page_view",
         "2026-11-01T10:00:00Z", "https://www.example.com/pricing", ""],
        ["p-2", "x@gmail.com", "Engineer", "", "", "", "", "", "", ""],
        ["p-1", "", "", "", "", "", "form_submit", "2026-11-02T09:00:00Z", "", "demo_request",
         "stray"],  # one cell too many: the demo request would silently be lost
    ])
    result = score("--input", str(write(tmp_path, "in.csv", text)))
    assert result.exit_code == 1
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == ["p-2"]
    assert result.stderr.splitlines() == [
        "line 4: more cells than header columns",
        "profile p-1 (lines 2, 4): not scored, 1 bad row(s)",
        "scored 1 profile(s); 1 malformed line(s) skipped",
    ]


def test_csv_conflicting_profile_cells_under_one_id(tmp_path: Path) -> None:
    text = csv_text([
        ["p-1", "a@example.com", "", "", "", "", "", "", "", ""],
        ["p-2", "b@example.com", "", "", "", "", "", "", "", ""],
        ["p-1", "someone.else@example.com", "", "", "", "", "", "", "", ""],
    ])
    result = score("--input", str(write(tmp_path, "in.csv", text)))
    assert result.exit_code == 1
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == ["p-2"]
    assert result.stderr.splitlines()[:2] == [
        "line 4: email: 'someone.else@example.com' differs from 'a@example.com' on line 2 "
        "for id p-1 (two people share an id?)",
        "profile p-1 (lines 2, 4): not scored, 1 bad row(s)",
    ]


def test_jsonl_duplicate_ids_are_reported_and_not_scored_twice(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD), json.dumps(COLD), json.dumps({**GOOD, "title": "Engineer"})]
    result = score("--input", str(write(tmp_path, "in.jsonl", "\n".join(lines) + "\n")))
    assert result.exit_code == 1
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["p-1", "p-2"]
    assert records[0]["fit"] == 25  # the first one, not the duplicate
    assert result.stderr.splitlines() == [
        "line 3: id 'p-1' already scored from line 1: duplicate id, not scored twice",
        "scored 2 profile(s); 1 duplicate id(s) not scored twice",
    ]


@pytest.mark.parametrize(("demo_at", "pricing_at"), [
    ("2026-11-02T09:00:00Z", "2026-11-01T10:00:00Z"),  # ISO
    ("1793610000", "1793527200"),  # epoch seconds
    ("1793610000000", "1793527200000"),  # epoch milliseconds
    ("1793610000.0", "1793527200.0"),
])
def test_csv_accepts_the_same_time_formats_as_jsonl(tmp_path: Path, demo_at: str,
                                                   pricing_at: str) -> None:
    text = csv_text([
        ["p-1", "taro.yamada@example.co.jp", "営業部長", "150", "", "", "page_view", pricing_at,
         "https://www.example.com/pricing", ""],
        ["p-1", "", "", "", "", "", "form_submit", demo_at, "", "demo_request"],
    ])
    from_csv = score("--input", str(write(tmp_path, "in.csv", text)))
    from_jsonl = score("--input", str(write(tmp_path, "in.jsonl", json.dumps(GOOD))))  # ISO
    assert from_csv.exit_code == from_jsonl.exit_code == 0, from_csv.output
    assert json.loads(from_csv.stdout) == json.loads(from_jsonl.stdout)
    assert json.loads(from_csv.stdout)["score"] == 89


def test_unknown_event_types_are_counted_in_the_summary(tmp_path: Path) -> None:
    events = [*GOOD["events"], {"type": "mystery", "at": "2026-11-01T00:00:00Z"},  # type: ignore[misc]
              {"type": "Mystery", "at": "2026-11-01T00:00:00Z"},
              {"type": "pageview", "at": "2026-11-01T00:00:00Z"}]
    result = score("--input", str(write(tmp_path, "in.jsonl", json.dumps({**GOOD,
                                                                          "events": events}))))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["score"] == 89
    assert result.stderr == ("scored 1 profile(s); 3 event(s) of unknown type ignored "
                             "(mystery 2, pageview 1)\n")


def test_a_csv_cell_over_128_kb_names_line_and_column(tmp_path: Path) -> None:
    text = csv_text([
        ["p-1", "a@example.com", "", "", "", "", "page_view", "2026-11-01", "/x", ""],
        ["p-1", "", "", "", "", "", "page_view", "2026-11-01", "https://x/" + "a" * 200_000, ""],
        ["p-2", "b@example.com", "", "", "", "", "", "", "", ""],
    ])
    result = score("--input", str(write(tmp_path, "in.csv", text)))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert [json.loads(x)["id"] for x in result.stdout.splitlines()] == ["p-2"]
    assert result.stderr.splitlines()[:2] == [
        "line 3: column 'event_url': cell of 195 KB is larger than 128 KB",
        "profile p-1 (lines 2, 3): not scored, 1 bad row(s)",
    ]


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    data = write(tmp_path, "in.jsonl", json.dumps(GOOD) + "\n")
    result = score("--input", str(data), "-o", "/nonexistent/dir/x")
    assert result.exit_code == 2
    assert result.stderr == ("error: --output: cannot write /nonexistent/dir/x: "
                             "No such file or directory\n")


def test_unreadable_input_is_a_clear_error(tmp_path: Path) -> None:
    result = score("--input", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: --input: cannot read {tmp_path / 'missing.jsonl'}: "
                             "No such file or directory\n")


@pytest.mark.parametrize("columns", ["60", "100", "160"])
def test_table_fits_the_width_it_is_given(tmp_path: Path, columns: str) -> None:
    lines = [json.dumps({**GOOD, "id": f"person-{i:03d}"}) for i in range(5)]
    result = score("--input", str(write(tmp_path, "in.jsonl", "\n".join(lines))),
                   "--format", "table", env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    widths = [len(line) for line in result.stdout.splitlines()]
    assert max(widths) <= int(columns)
    assert "Top 5 of 5" in result.stdout and "stages: mql 5" in result.stdout
    if int(columns) >= 100:
        assert "person-000" in result.stdout



def test_horizon_applies_in_score_exactly_as_in_the_core(tmp_path: Path) -> None:
    from leadsync.config.rules import load_rules
    from leadsync.scoring import evaluate, parse_profile
    from leadsync.scoring.parse import parse_datetime

    rules = write(tmp_path, "h.yaml", (
        "version: h\nhorizon_days: 365\nengagement:\n"
        "  - {id: demo, label: デモ, points: 50, event: form_submit, instant_mql: true}\n"))
    old = {"id": "old", "stage": "lead", "events": [
        {"type": "form_submit", "at": "2025-12-31T00:00:00Z"}]}  # 307 days before NOW
    older = {"id": "older", "stage": "lead", "events": [
        {"type": "form_submit", "at": "2025-10-31T00:00:00Z"}]}  # 368 days before NOW
    data = write(tmp_path, "in.jsonl", "\n".join(json.dumps(p) for p in [old, older]))
    result = score("--input", str(data), "--rules", str(rules))
    records = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert (records["old"]["score"], records["old"]["stage"]) == (50, "mql")
    assert (records["older"]["score"], records["older"]["stage"]) == (0, "lead")
    now = parse_datetime(NOW, "now")
    assert now is not None
    for obj in (old, older):
        core = evaluate(parse_profile(obj), load_rules(rules), now)
        assert (core.score, core.stage) == (records[obj["id"]]["score"],  # type: ignore[index]
                                            records[obj["id"]]["stage"])  # type: ignore[index]
