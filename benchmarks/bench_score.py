"""Benchmark the scoring core and `leadsync score` with the bundled default model.

Generates N profiles (default 100,000, about 8 events each, seeded) as JSONL, then measures:
- core_profiles_per_s: `evaluate()` over already-parsed profiles, one process (one core);
- parse_profiles_per_s: `json.loads` + `parse_profile` alone;
- cli_profiles_per_s: `leadsync score --input FILE --output FILE` end to end (a subprocess);
- io_floor_profiles_per_s: the same file merely parsed and re-serialised (json.loads +
  json.dumps per line, a subprocess with the same read/write pattern);
- cli_vs_floor_ratio: floor rate / CLI rate (target <= 3);
- core_business_hours_profiles_per_s: `evaluate()` again with the same model on business hours
  (Asia/Tokyo, 9-18 on weekdays, Japanese holidays: docs/sla.md), and sla_clocks, the
  evaluations with a running SLA clock (each one a deadline and a warning in working time).
Prints one JSON object. Usage: python benchmarks/bench_score.py [--profiles N] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadsync.config.rules import load_default_rules
from leadsync.config.rules_hours import parse_business_hours
from leadsync.config.rules_parts import Where
from leadsync.scoring import evaluate, parse_profile

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
TITLES = ["CEO", "CTO", "VP of Sales", "Director of Marketing", "Head of IT", "Sales Manager",
          "Engineer", "Analyst", "", "代表取締役社長", "営業部長", "部長代理", "本部長", "課長",
          "マネージャー", "担当", "Team Lead", "Vice President", "Founder", "Supervisor"]
DOMAINS = ["example.co.jp", "acme.com", "gmail.com", "yahoo.co.jp", "corp.example",
           "outlook.com", "kaisha.jp", "widgets.io"]
PAGES = ["/pricing", "/blog/how-to", "/blog/news", "/careers", "/product", "/", "/docs/start"]
FORMS = ["demo_request", "case-study-acme", "newsletter", "contact"]
STAGES = [None, "subscriber", "lead", "lead", "lead", "mql", "sql", "recycled"]
FLOOR_SCRIPT = (
    "import json,sys\n"
    "out=open(sys.argv[2],'w',encoding='utf-8')\n"
    "buf=[]\n"
    "for line in open(sys.argv[1],'rb'):\n"
    "    buf.append(json.dumps(json.loads(line),ensure_ascii=False))\n"
    "    if len(buf)>=2000:\n"
    "        out.write('\\n'.join(buf)+'\\n'); buf.clear()\n"
    "out.write('\\n'.join(buf)+'\\n' if buf else ''); out.close()\n"
)


def _event(rng: random.Random) -> dict[str, object]:
    at = NOW - timedelta(seconds=rng.randrange(0, 200 * 86400))
    kind = rng.choices(
        ["page_view", "form_submit", "email_open", "email_click", "webinar_attended",
         "sales_touch"], weights=[60, 8, 15, 10, 2, 5])[0]
    event: dict[str, object] = {"type": kind, "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if kind in ("page_view", "email_click"):
        event["url"] = "https://www.example.com" + rng.choice(PAGES)
    elif kind == "form_submit":
        event["form"] = rng.choice(FORMS)
    elif kind == "sales_touch":
        event["channel"] = rng.choice(["call", "email", "meeting"])
    return event


def generate(path: Path, count: int, seed: int) -> None:
    """Write `count` profiles with 4-12 events each (mean 8) as JSONL."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            profile = {
                "id": f"p-{i}", "email": f"user{i}@{rng.choice(DOMAINS)}",
                "first_name": "太郎", "last_name": "山田", "title": rng.choice(TITLES),
                "company": f"Company {i % 997}", "employees": rng.choice([5, 40, 120, 800, None]),
                "industry": "manufacturing", "country": "JP", "lead_source": "webinar",
                "bant": {"budget": rng.random() < 0.3, "authority": rng.random() < 0.3,
                         "need": rng.random() < 0.4, "timeline": None},
                "events": [_event(rng) for _ in range(rng.randint(4, 12))],
                "stage": rng.choice(STAGES), "owner": "rep@example.com",
            }
            out.write(json.dumps(profile, ensure_ascii=False) + "\n")


def _timed_run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    model = load_default_rules()
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "profiles.jsonl", Path(tmp) / "out.jsonl"
        generate(data, options.profiles, options.seed)
        lines = data.read_bytes().splitlines()
        start = time.perf_counter()
        profiles = [parse_profile(json.loads(line)) for line in lines]
        parse_s = time.perf_counter() - start
        events = sum(len(p.events) for p in profiles) / len(profiles)
        # The parsed input is long-lived: keep the cyclic GC from re-walking it during the
        # timed loop (the CLI holds one profile at a time, so it never pays this).
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        for profile in profiles:
            evaluate(profile, model, NOW)
        core_s = time.perf_counter() - start
        business = replace(model, sla=replace(model.sla, calendar=parse_business_hours(
            {"timezone": "Asia/Tokyo"}, Where("bench"))))
        assert business.sla.calendar is not None  # once per process: import `holidays`
        business.sla.calendar.is_working_day(NOW.date())
        start = time.perf_counter()
        clocks = sum(evaluate(p, business, NOW).sla_due is not None for p in profiles)
        business_s = time.perf_counter() - start
        gc.unfreeze()
        floor_s = _timed_run([sys.executable, "-c", FLOOR_SCRIPT, str(data), str(out)])
        cli_s = _timed_run([sys.executable, "-m", "leadsync.cli", "score", "--input", str(data),
                            "--now", NOW.isoformat(), "--output", str(out)])
        scored = sum(1 for _ in out.open("rb"))
    n = options.profiles
    print(json.dumps({
        "profiles": n,
        "events_per_profile": round(events, 2),
        "core_profiles_per_s": round(n / core_s),
        "core_business_hours_profiles_per_s": round(n / business_s),
        "sla_clocks": clocks,
        "parse_profiles_per_s": round(n / parse_s),
        "cli_profiles_per_s": round(n / cli_s),
        "io_floor_profiles_per_s": round(n / floor_s),
        "cli_vs_floor_ratio": round(cli_s / floor_s, 2),
        "cli_profiles_written": scored,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + "; one process, timings include subprocess start-up for cli and floor",
    }))


if __name__ == "__main__":
    main()
