"""The day's page as one self-contained HTML file: no external script, font or style sheet, so it opens
offline from S3 or a laptop. Standard library only (nothing added to the Lambda bundle): text is escaped
with `html.escape`, the heatmaps are drawn on canvases by a small inline script from compact JSON (one
character per cell: a 10,000-account organization stays a few MB), the trend is inline SVG.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from lambdas.collector.report.heat import BUCKETS, Grid
from lambdas.collector.report.view import Change, PageView, ProblemGroup, Series

COLOURS = ("#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#2166ac")  # never … 30 days or less
NOT_ALLOWED_COLOUR = "#f2f2f2"
TREND_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
header{background:#232f3e;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#d5dbdb}main{padding:8px 24px 40px}h2{font-size:17px;margin:28px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;
min-width:120px}.card b{display:block;font-size:22px}.card span{color:#57606a;font-size:12px}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:6px 0 10px;font-size:12px}.legend i{display:inline-block;
width:12px;height:12px;margin-right:4px;vertical-align:-2px;border:1px solid #ccc}
.hm{display:flex;align-items:flex-start;overflow-x:auto;border:1px solid #eaecef;padding:6px}
.hm-labels{flex:none;padding-top:var(--head);font-size:11px}.hm-row{height:14px;line-height:14px;
white-space:nowrap;max-width:260px;overflow:hidden;text-overflow:ellipsis}.hm-row.ACCOUNT{color:#57606a}
.hm-grid canvas{display:block}#tip{position:fixed;pointer-events:none;background:#24292f;color:#fff;
padding:4px 8px;border-radius:4px;font-size:12px;display:none;z-index:9;max-width:420px}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #eaecef;padding:4px 10px 4px 0;
text-align:left;vertical-align:top}th{color:#57606a;font-weight:600}.num{text-align:right}
.muted{color:#57606a}details>summary{cursor:pointer;font-weight:600;margin:8px 0}code{font-size:12px}
"""

# Draws each heatmap from its JSON when shown; a tooltip names the target, the service and its last use.
_SCRIPT = """
(function(){
var COL=%(colours)s, NA=%(na)s, LABEL=%(labels)s, CELL=12, ROW=14, HEAD=110, CHUNK=1000;
var tip=document.getElementById('tip');
function draw(id){
  var box=document.getElementById(id); if(!box||box.dataset.drawn)return; box.dataset.drawn='1';
  var d=JSON.parse(document.getElementById(id+'-data').textContent);
  var grid=box.querySelector('.hm-grid'), n=d.columns.length+1, w=n*CELL+90;
  for(var start=0;start<d.rows.length||start===0;start+=CHUNK){
    var rows=d.rows.slice(start,start+CHUNK), head=start===0?HEAD:0;
    var c=document.createElement('canvas'); c.width=w; c.height=head+rows.length*ROW; grid.appendChild(c);
    var g=c.getContext('2d'); g.font='10px sans-serif';
    if(head){ for(var j=0;j<n;j++){ g.save(); g.translate(j*CELL+9,HEAD-4); g.rotate(-Math.PI/3);
      g.fillStyle='#333'; g.fillText(j<d.columns.length?d.columns[j]:d.never+' never used',0,0); g.restore(); } }
    for(var i=0;i<rows.length;i++){ var cells=d.cells[start+i];
      for(var j=0;j<n;j++){ var k=j<d.columns.length?cells.charAt(j):(d.neverCounts[start+i]?'0':'-');
        g.fillStyle=k==='-'?NA:COL[+k]; g.fillRect(j*CELL,head+i*ROW+1,CELL-1,ROW-2); } }
    (function(c,start,head){
      c.addEventListener('mousemove',function(e){ var r=c.getBoundingClientRect();
        var i=Math.floor((e.clientY-r.top-head)/ROW), j=Math.floor((e.clientX-r.left)/CELL), row=start+i;
        if(i<0||row>=d.rows.length||j<0||j>=n){tip.style.display='none';return;}
        var t, label=d.rows[row].label;
        if(j<d.columns.length){ var k=d.cells[row].charAt(j);
          if(k==='-'){ t='not allowed by the SCPs'; } else { var days=d.days.length?d.days[row][j]:null;
            t=days===null?LABEL[+k]:(days+' days since last use ('+LABEL[+k]+')'); }
          t=label+' · '+d.names[j]+' ('+d.columns[j]+'): '+t;
        } else { t=label+' · '+d.neverCounts[row]+' allowed services never used anywhere in the organization'; }
        tip.textContent=t; tip.style.display='block';
        tip.style.left=(e.clientX+12)+'px'; tip.style.top=(e.clientY+12)+'px'; });
      c.addEventListener('mouseleave',function(){tip.style.display='none';});
    })(c,start,head);
  }
}
draw('heat-ous');
var acc=document.getElementById('accounts-view');
function accounts(){ if(acc.open)draw('heat-accounts'); }
if(acc){ acc.addEventListener('toggle',accounts); accounts(); }
})();
"""


def _grid_json(grid: Grid) -> str:
    data = {
        "columns": grid.columns,
        "names": grid.names,
        "never": grid.never_anywhere,
        "rows": [{"id": r.id, "label": r.label} for r in grid.rows],
        "cells": grid.cells,
        "days": grid.days,
        "neverCounts": grid.never_counts,
    }
    # Inside a <script> element no "<" may open a tag (nor "</script>" end it): JSON's \u escapes keep the text.
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _heatmap(element_id: str, grid: Grid) -> str:
    labels = "".join(
        f'<div class="hm-row {r.kind}" data-id="{escape(r.id)}" style="padding-left:{r.depth * 10}px" '
        f'title="{escape(r.id)}">{escape(r.label)}</div>'
        for r in grid.rows
    )
    return (
        f'<div class="hm" id="{element_id}" style="--head:110px"><div class="hm-labels">{labels}</div>'
        f'<div class="hm-grid"></div></div>'
        f'<script type="application/json" id="{element_id}-data">{_grid_json(grid)}</script>'
    )


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{escape(label)}</span>'
        for colour, label in zip(COLOURS, BUCKETS, strict=True)
    )
    na = f'<span><i style="background:{NOT_ALLOWED_COLOUR}"></i>not allowed</span>'
    return f'<div class="legend" id="legend">{items}{na}</div>'


def _trend(series: Sequence[Series]) -> str:
    points = [p for s in series for p in s.points]
    if not points:
        return '<p class="muted">No history yet: the trend starts with this snapshot.</p>'
    days = sorted({d for d, _ in points})
    top = max(1, *(v for _, v in points))
    width, height, left, bottom = 760, 220, 48, 24
    span = max(1, (days[-1] - days[0]).days)

    def xy(day: object, value: int) -> str:
        x = left + (width - left - 10) * ((day - days[0]).days / span if len(days) > 1 else 0.5)  # type: ignore[operator]
        y = 10 + (height - bottom - 10) * (1 - value / top)
        return f"{x:.1f},{y:.1f}"

    lines, keys = [], []
    for n, s in enumerate(series[: len(TREND_COLOURS)]):
        colour = TREND_COLOURS[n]
        placed = [(d, v, xy(d, v)) for d, v in s.points]
        path = " ".join(point for _, _, point in placed)
        title = f"<title>{escape(s.label)}</title>"
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">{title}</polyline>')
        for d, v, point in placed:
            x, y = point.split(",")
            dot = f"<title>{escape(s.label)} {d}: {v} unused</title>"
            lines.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}">{dot}</circle>')
        keys.append(f'<span><i style="background:{colour}"></i>{escape(s.label)}</span>')
    axes = (
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#999"/>'
        f'<text x="{left - 6}" y="14" font-size="11" text-anchor="end">{top}</text>'
        f'<text x="{left - 6}" y="{height - bottom}" font-size="11" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 6}" font-size="11">{days[0]}</text>'
        f'<text x="{width}" y="{height - 6}" font-size="11" text-anchor="end">{days[-1]}</text>'
    )
    label = 'role="img" aria-label="unused services per day"'
    svg = f'<svg id="trend" width="{width}" height="{height}" {label}>{axes}{"".join(lines)}</svg>'
    return f'<div class="legend">{"".join(keys)}</div>{svg}'


def _changes(changes: Sequence[Change], compared_with: str | None, limit: int) -> str:
    if compared_with is None:
        return '<p class="muted">No previous snapshot to compare with.</p>'
    if not changes:
        return f'<p class="muted">Nothing changed since {escape(compared_with)}.</p>'
    rows = "".join(
        f"<tr><td>{escape(c.label)} <span class=muted>{escape(c.target_id)}</span></td>"
        f"<td class=num>{len(c.newly_unused)}</td><td>{escape(', '.join(c.newly_unused[:12]))}</td>"
        f"<td class=num>{len(c.newly_used)}</td><td>{escape(', '.join(c.newly_used[:12]))}</td></tr>"
        for c in changes[:limit]
    )
    more = f'<p class="muted">… and {len(changes) - limit} more targets.</p>' if len(changes) > limit else ""
    return (
        f'<p class="muted">Since {escape(compared_with)}.</p><table id="changes"><tr><th>root / OU</th>'
        f"<th>newly unused</th><th></th><th>newly used</th><th></th></tr>{rows}</table>{more}"
    )


def _proposals(view: PageView, limit: int) -> str:
    if not view.proposals:
        return '<p class="muted">No guardrail proposal today.</p>'
    rows = "".join(
        f"<tr><td>{escape(p.target_name or p.target_id)} <span class=muted>{escape(p.target_id)}</span></td>"
        f"<td>{escape(p.status)}</td><td class=num>{p.services}</td><td class=num>{p.policies}</td>"
        f"<td class=num>{p.largest_chars:,}</td><td class=num>{p.new}</td><td class=num>{p.withdrawn}</td>"
        f"<td class=muted>{escape(p.reason or '')}</td></tr>"
        for p in view.proposals[:limit]
    )
    return (
        '<table id="proposals"><tr><th>target</th><th>status</th><th>services denied</th><th>SCPs</th>'
        f"<th>largest SCP (chars)</th><th>new</th><th>withdrawn</th><th></th></tr>{rows}</table>"
        '<p class="muted">Each proposal, with its SCP text and evidence, is in '
        f"<code>recommendations/dt={escape(view.glance.dt)}/&lt;target&gt;.json</code>; "
        "nothing is attached for you.</p>"
    )


def _problems(groups: Sequence[ProblemGroup]) -> str:
    if not groups:
        return '<p class="muted">Every report job of the run completed.</p>'
    rows = "".join(
        f"<tr><td><code>{escape(g.code)}</code></td><td class=num>{g.count}</td>"
        f"<td>{escape(', '.join(g.examples))}</td><td>{escape(g.fix or '')}</td></tr>"
        for g in groups
    )
    return f'<table id="problems"><tr><th>error</th><th>jobs</th><th>for example</th><th>fix</th></tr>{rows}</table>'


def _card(value: object, label: str) -> str:
    shown = f"{value:,}" if isinstance(value, int) else escape(str(value))
    return f'<div class="card"><b>{shown}</b><span>{escape(label)}</span></div>'


_KINDS = {"ROOT": ("root", "roots"), "ORGANIZATIONAL_UNIT": ("OU", "OUs"), "ACCOUNT": ("account", "accounts")}


def _kinds(targets: dict[str, int]) -> str:
    order = [k for k in _KINDS if k in targets] + sorted(set(targets) - set(_KINDS))
    return ", ".join(f"{targets[k]:,} {_KINDS.get(k, (k, k))[targets[k] != 1]}" for k in order)


def render(view: PageView, *, max_listed: int = 50) -> str:
    g = view.glance
    unused = g.allowed - g.used
    cards = "".join(
        [
            _card(sum(g.targets.values()), f"targets ({_kinds(g.targets)})"),
            _card(g.allowed, "services allowed"),
            _card(g.used, f"used in {g.window_days} days"),
            _card(unused, f"unused {g.window_days}+ days"),
            _card(g.never_used, "never used (400 days)"),
            _card(g.jobs_not_completed, "report jobs not completed"),
            _card(f"{g.oldest_days} d", f"oldest data ({g.carried:,} targets carried)"),
        ]
    )
    accounts = (
        f'<details id="accounts-view"><summary>Accounts ({len(view.accounts.rows):,}), under their OUs</summary>'
        f"{_heatmap('heat-accounts', view.accounts)}</details>"
        if view.accounts is not None and view.accounts.rows
        else ""
    )
    script = _SCRIPT % {
        "colours": json.dumps(COLOURS),
        "na": json.dumps(NOT_ALLOWED_COLOUR),
        "labels": json.dumps(BUCKETS),
    }
    title = f"IAM access report {g.organization_id} {g.dt}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body><header><h1>IAM Organizations access report: {escape(g.organization_id)}</h1>
<p>Snapshot {escape(g.dt)} · run {escape(g.run_id)} · collected {g.collected_at:%Y-%m-%d %H:%M} UTC</p></header>
<main>
<section id="glance"><h2>At a glance</h2><div class="cards">{cards}</div></section>
<section id="heatmap-section"><h2>Where services go unused: roots and OUs by services</h2>
<p class="muted">Columns: services used somewhere, most used first; the last column counts the allowed services
nobody in the organization used in 400 days. Hover a cell for the days since its last use in that scope.</p>
{_legend()}{_heatmap("heat-ous", view.ous)}{accounts}</section>
<section id="trend-section"><h2>Unused services per day: the root and each top-level OU</h2>
{_trend(view.trend)}</section>
<section id="changes-section"><h2>Changes since the previous snapshot</h2>
{_changes(view.changes, view.compared_with, max_listed)}</section>
<section id="guardrails-section"><h2>Guardrail proposals</h2>{_proposals(view, max_listed)}</section>
<section id="problems-section"><h2>Problem jobs</h2>{_problems(view.problems)}</section>
<p class="muted">Everything here is in Athena: tables <code>access_details</code>, <code>report_jobs</code>,
<code>scp_recommendations</code> and <code>unused_summary</code>, partition <code>dt = '{escape(g.dt)}'</code>.</p>
</main><div id="tip"></div><script>{script}</script></body></html>
"""
