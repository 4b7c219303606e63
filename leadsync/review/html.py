"""The review as one self-contained HTML page (pure: the report dict in, text out).

Offline: no CDN, no web font, no external script; the charts are inline SVG drawn here
(funnel, conversion by score band, ROC, rule lift, SLA) and the tables are plain HTML. Labels
are Japanese and English, as the rules file's labels are. A few lines of inline script count
the drawn charts into `body[data-charts]` (what the browser test reads); the page reads fine
without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

STAGE_LABELS = {"lead": "リード / Lead", "mql": "MQL", "sql": "SQL",
                "opportunity": "商談 / Opportunity", "won": "受注 / Won"}
BLUE, ORANGE, RED, GREY, GREEN = "#2b6cb0", "#dd6b20", "#c53030", "#a0aec0", "#2f855a"
CHARTS = ("funnel", "bands", "roc", "lift", "sla")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _svg(chart: str, width: int, height: int, title: str, body: Sequence[str]) -> str:
    return (f'<figure class="chart" id="chart-{chart}"><figcaption>{escape(title)}'
            f'</figcaption><svg xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{escape(title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(body)}</svg></figure>')


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12,
          fill: str = "#1a202c") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}">{escape(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" ' \
           f'fill="{fill}"/>'


def funnel_chart(funnel: dict[str, Any]) -> str:
    counts, rates = funnel["overall"]["counts"], funnel["overall"]["rates"]
    top = max(counts.values(), default=0) or 1
    body, y = [], 10
    previous = None
    for stage, label in STAGE_LABELS.items():
        width = 420 * counts[stage] / top
        body.append(_rect(170, y, width, 26, BLUE))
        body.append(_text(160, y + 18, label, anchor="end"))
        rate = "" if previous is None else f"  ({_pct(rates[f'{previous}->{stage}'])})"
        body.append(_text(176 + width, y + 18, f"{counts[stage]:,}{rate}"))
        previous, y = stage, y + 36
    return _svg("funnel", 720, y + 4, "ファネル / Funnel: lead → MQL → SQL → opportunity → won",
                body)


def bands_chart(report: dict[str, Any]) -> str:
    bands = report["bands"]["deciles"]
    overall = report["outcomes"] / report["people"] if report["people"] else 0.0
    peak = max([b["rate"] or 0.0 for b in bands] + [overall, 0.01])
    body = [f'<line x1="50" y1="220" x2="{60 + 56 * max(len(bands), 1)}" y2="220" '
            f'stroke="{GREY}"/>']
    for i, band in enumerate(bands):
        height = 190 * (band["rate"] or 0.0) / peak
        x = 60 + 56 * i
        body.append(_rect(x, 220 - height, 40, height, BLUE))
        body.append(_text(x + 20, 236, band["label"], anchor="middle", size=11))
        body.append(_text(x + 20, 214 - height, _pct(band["rate"]), anchor="middle", size=10))
    line = 220 - 190 * overall / peak
    body.append(f'<line x1="50" y1="{line:.1f}" x2="{60 + 56 * max(len(bands), 1)}" '
                f'y2="{line:.1f}" stroke="{ORANGE}" stroke-dasharray="4 3"/>')
    body.append(_text(50, line - 4, f"全体 / all {_pct(overall)}", size=10, fill=ORANGE))
    return _svg("bands", 60 + 56 * max(len(bands), 1) + 20, 250,
                "スコア帯別の成果率 / Outcome rate by score decile (as of the snapshot)", body)


def roc_chart(report: dict[str, Any]) -> str:
    size, pad = 260, 40
    body = [_rect(pad, 10, size, size, "#f7fafc"),
            f'<line x1="{pad}" y1="{10 + size}" x2="{pad + size}" y2="10" stroke="{GREY}" '
            f'stroke-dasharray="4 3"/>',
            _text(pad + size / 2, size + 40, "偽陽性率 / false positive rate", anchor="middle",
                  size=11),
            f'<text x="14" y="{10 + size / 2:.1f}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 14 {10 + size / 2:.1f})">'
            f'{escape("真陽性率 / true positive rate")}</text>']
    legend = 24
    for key, colour in (("current", BLUE), ("candidate", ORANGE)):
        points = report.get("roc", {}).get(key)
        if not points:
            continue
        path = " ".join(f"{pad + x * size:.1f},{10 + size - y * size:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"/>')
        value = report["auc"].get(key, {}).get("value")
        body.append(_text(pad + size + 12, legend, f"{key}: AUC {_num(value)}", fill=colour))
        legend += 18
    return _svg("roc", pad + size + 190, size + 50, "ROC曲線 / ROC curve", body)


def lift_chart(rules: Sequence[dict[str, Any]]) -> str:
    body, y = [], 10
    centre, half = 520, 160
    body.append(f'<line x1="{centre}" y1="4" x2="{centre}" y2="{14 + 26 * len(rules)}" '
                f'stroke="{GREY}"/>')
    for row in rules:
        lift = row["lift"]
        label = f"{row['label']} ({row['rule']}, {row['points']:+g})"
        body.append(_text(centre - half - 10, y + 15, label, anchor="end", size=11))
        if lift:
            span = max(-1.0, min(1.0, math.log2(lift) / 2)) * half
            colour = RED if row["contradicts"] else GREEN if span > 0 else GREY
            body.append(_rect(min(centre, centre + span), y + 3, abs(span), 16, colour))
            body.append(_text(centre + half + 8, y + 15, f"×{lift:.2f}", size=11))
        else:
            body.append(_text(centre + half + 8, y + 15, "— (no hits or no contrast)", size=11))
        y += 26
    body.append(_text(centre, y + 14, "← 逆効果 / worse   lift (log scale)   better / 有効 →",
                      anchor="middle", size=10))
    return _svg("lift", 880, y + 24,
                "ルール別リフト / Rule lift: outcome rate with the rule ÷ without "
                "(red: evidence against its sign)", body)


def sla_chart(sla: dict[str, Any]) -> str:
    body, y = [], 10
    for stage in ("mql", "sql"):
        f = sla[stage]
        share = f["share_met"] or 0.0
        body.append(_text(90, y + 15, f"{stage.upper()} SLA", anchor="end"))
        body.append(_rect(100, y + 2, 300, 18, "#edf2f7"))
        body.append(_rect(100, y + 2, 300 * share, 18, GREEN))
        body.append(_text(408, y + 15, f"{_pct(f['share_met'])} 遵守 / met of {f['decided']}"))
        y += 28
    buckets = sla["mql"]["time_to_first_touch"]
    peak = max(buckets.values(), default=0) or 1
    y += 10
    body.append(_text(10, y + 4, "MQL 初回接触までの時間 / time to first touch", size=11))
    y += 12
    for i, (label, count) in enumerate(buckets.items()):
        height = 90 * count / peak
        x = 30 + 70 * i
        body.append(_rect(x, y + 90 - height, 46, height, BLUE))
        body.append(_text(x + 23, y + 104, label, anchor="middle", size=10))
        body.append(_text(x + 23, y + 86 - height, str(count), anchor="middle", size=10))
    return _svg("sla", 620, y + 112, "SLA遵守 / SLA compliance since the snapshot", body)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    head = report["auc"]["current"]
    strongest = sorted((r for r in report["rules"] if r["lift"]), key=lambda r: -r["lift"])
    thresholds = [[f"{r['threshold']:g}" + (" ← 現在 / current" if r["current"] else ""),
                   str(r["volume"]), _num(r["per_month"], 1), _pct(r["precision"]),
                   _pct(r["recall"])] for r in report["thresholds"]["rows"]]
    misfit_rows = {key: [[m["id"], f"{m['score']:g}", m["grade"], m["reasons"],
                          " ".join(m["records"])] for m in report["misfits"][key]]
                   for key in ("high_score_no_outcome", "low_score_outcome")}
    parts = [
        f"<h1>スコアリングモデルのレビュー / Scoring model review: "
        f"{escape(report['model'])}</h1>",
        f"<p class=lead>基準日 / snapshot {escape(report['as_of'][:19])} UTC — 成果 / outcome "
        f"<b>{escape(report['outcome'])}</b> until {escape(report['window_end'][:19])} UTC. "
        f"{report['people']:,} 人 / people, {report['outcomes']:,} reached it. "
        f"<b>AUC {_num(head['value'])}</b> (95% {_num(head['low'])}–{_num(head['high'])}).</p>",
        "<p>最も効くルール / strongest rules: "
        + escape(", ".join(f"{r['rule']} ×{r['lift']:.2f}" for r in strongest[:3]))
        + "; 最も弱いルール / weakest: "
        + escape(", ".join(f"{r['rule']} ×{r['lift']:.2f}" for r in strongest[-3:][::-1]))
        + "</p>",
        '<div class="grid">',
        funnel_chart(report["funnel"]), bands_chart(report), roc_chart(report),
        lift_chart(report["rules"]), sla_chart(report["sla"]),
        "</div>",
        "<h2>閾値 / Thresholds</h2>",
        _table(["threshold", "MQLs", "per month", "precision", "recall"], thresholds),
        "<h2>高スコアだが成果なし / High score but no outcome</h2>",
        _table(["person", "score", "grade", "reasons", "records"],
               misfit_rows["high_score_no_outcome"]),
        "<h2>低スコアだが成果あり / Low score but reached the outcome</h2>",
        _table(["person", "score", "grade", "reasons", "records"],
               misfit_rows["low_score_outcome"]),
    ]
    if "candidate" in report:
        c = report["candidate"]
        parts += [f"<h2>候補モデル / Candidate {escape(c['model'])}</h2>", _table(
            ["model", "AUC", "top-band lift", "MQLs", "outcomes captured"],
            [[c[s]["model"], _num(c[s]["auc"]), _num(c[s]["top_band_lift"]),
              str(c[s]["mql_volume"]), str(c[s]["outcomes_captured"])]
             for s in ("current", "candidate")]),
            f"<p>ステージが変わる人 / people who would change stage: {c['stage_changes']:,}</p>"]
    script = ("document.body.dataset.charts=String(Array.from(document.querySelectorAll("
              "'figure.chart svg')).filter(function(s){return s.childElementCount>0;}).length);")
    return (
        "<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>leadsync review — {escape(report['model'])}</title><style>"
        "body{font-family:system-ui,'Hiragino Sans','Noto Sans CJK JP',sans-serif;margin:24px;"
        "color:#1a202c}h1{font-size:22px}h2{font-size:17px;margin-top:28px}"
        ".lead{font-size:15px}.grid{display:flex;flex-wrap:wrap;gap:18px}"
        "figure.chart{margin:0;padding:10px;border:1px solid #e2e8f0;border-radius:6px}"
        "figcaption{font-weight:600;margin-bottom:6px;font-size:13px}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #e2e8f0;"
        "padding:3px 6px;text-align:left;vertical-align:top}"
        "</style></head><body data-charts=\"0\">" + "".join(parts)
        + f"<script>{script}</script></body></html>\n")
