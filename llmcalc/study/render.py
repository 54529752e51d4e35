"""A study sheet as plain text, Markdown or one printable HTML page (A4 and US Letter).

The renderers only lay out what the sheet holds: each figure's label, value (core/units.fmt), einsum and
formula as the calculator wrote them. The HTML page is colour-coded by concern (compute blue, memory green,
communication orange) and sized for the smaller of A4 and Letter (210 × 279 mm less margins).
"""

from __future__ import annotations

import html

from ..core.results import Figure
from .sheet import Block, Sheet

CONCERNS = {"compute": "compute", "memory": "memory", "comm": "communication", "info": "other"}


def _value(f: Figure) -> str:
    return f.text()


def text(s: Sheet, explain: bool = False) -> str:
    out = [s.title, s.setting, ""]
    for b in s.blocks:
        out.append(f"[{CONCERNS[b.concern]}] {b.title}")
        if b.rows:
            widths = [max(len(r[i]) for r in (b.header, *b.rows)) for i in range(len(b.header))]
            for j, r in enumerate((b.header, *b.rows)):
                out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
                if j == 0:
                    out.append("  " + "  ".join("-" * w for w in widths))
        if b.figures:
            if explain:
                out += ["  " + ln for f in b.figures for ln in f.explain().splitlines()]
            else:
                w = max(len(f.name) for f in b.figures)
                for f in b.figures:
                    tail = "  ".join(x for x in (f.shape, f.formula) if x)
                    out.append(f"  {f.name.ljust(w)}  {_value(f):>18}  {tail}".rstrip())
        out += [f"  * {n}" for n in b.notes]
        out.append("")
    out += [f"* {n}" for n in s.notes]
    return "\n".join(out).rstrip() + "\n"


def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def markdown(s: Sheet) -> str:
    out = [f"# {s.title}", "", f"_{s.setting}_", ""]
    for b in s.blocks:
        out += [f"## {b.title}", "", f"*{CONCERNS[b.concern]}*", ""]
        if b.rows:
            out.append("| " + " | ".join(_md(h) for h in b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in b.rows]
            out.append("")
        if b.figures:
            out += ["| quantity | value | einsum | formula | values |", "|---|---:|---|---|---|"]
            out += [f"| {_md(f.name)} | {_md(_value(f))} | {_md(f.shape and '`' + f.shape + '`')} | "
                    f"{_md(f.formula and '`' + f.formula + '`')} | "
                    f"{_md(f.substituted if f.substituted != f.formula else '')} |" for f in b.figures]
            out.append("")
        out += [f"- {n}" for n in b.notes]
        if b.notes:
            out.append("")
    out += [f"> {n}" for n in s.notes]
    return "\n".join(out).rstrip() + "\n"


CSS = """
@page { margin: 8mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 7.2pt/1.25 "DejaVu Sans", Arial, sans-serif; margin: 0 auto; max-width: 194mm; color: #111; }
h1 { font-size: 11pt; margin: 0 0 1mm; }
.setting { color: #444; margin-bottom: 1.5mm; }
.legend span { padding: 0 1.5mm; margin-right: 1mm; border-radius: 1mm; }
.cols { column-count: 2; column-gap: 3mm; }
.block { break-inside: avoid; border-left: 1.2mm solid; padding: 0.6mm 1mm; margin-bottom: 1.5mm; }
.block.wide { column-span: all; }
.block h2 { font-size: 7.8pt; margin: 0 0 0.5mm; }
.compute { border-color: #2f6fb2; background: #eef4fb; } .compute h2 { color: #1d4f85; }
.memory { border-color: #2f8a4a; background: #eef8f0; } .memory h2 { color: #1f6634; }
.comm { border-color: #d0761c; background: #fdf3e8; } .comm h2 { color: #97520d; }
.info { border-color: #777; background: #f4f4f4; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 0 0.8mm; vertical-align: top; text-align: left; }
th { font-weight: 600; border-bottom: 0.2mm solid #999; }
td.v { text-align: right; white-space: nowrap; font-weight: 600; }
.wide td { font-size: 6.8pt; } .wide td:nth-child(n+5) { white-space: nowrap; }
td.l { width: 42%; } td.f { width: 38%; }
code { font: 6.4pt "DejaVu Sans Mono", monospace; color: #333; }
.f { font-size: 6.4pt; color: #333; }
ul { margin: 0.3mm 0 0 3mm; padding: 0; } li { color: #444; }
.foot { color: #555; font-size: 6.5pt; }
"""


def _fig_rows(figs) -> str:
    rows = []
    for f in figs:
        detail = html.escape(f"{f.substituted}  [{f.source}]" if f.substituted else f.source)
        form = "<br>".join(f"<code>{html.escape(x)}</code>" for x in (f.shape, f.formula) if x)
        rows.append(f'<tr title="{detail}"><td class="l">{html.escape(f.name)}</td>'
                    f'<td class="v">{html.escape(_value(f))}</td><td class="f">{form}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


def _block(b: Block) -> str:
    wide = " wide" if len(b.header) > 4 else ""
    parts = [f'<div class="block {b.concern}{wide}"><h2>{html.escape(b.title)}</h2>']
    if b.rows:
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b.rows]
        parts.append("</table>")
    if b.figures:
        parts.append(_fig_rows(b.figures))
    if b.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in b.notes) + "</ul>")
    parts.append("</div>")
    return "".join(parts)


def html_page(s: Sheet) -> str:
    legend = "".join(f'<span class="{k}">{v}</span>' for k, v in CONCERNS.items())
    wide = "".join(_block(b) for b in s.blocks if len(b.header) > 4)
    cols = "".join(_block(b) for b in s.blocks if len(b.header) <= 4)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(s.title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(s.title)}</h1>"
            f'<div class="setting">{html.escape(s.setting)} <span class="legend">{legend}</span></div>'
            f'{wide}<div class="cols">{cols}</div>'
            + "".join(f'<p class="foot">{html.escape(n)}</p>' for n in s.notes) + "</body></html>\n")


FORMATS = {"text": text, "md": markdown, "html": html_page}


def render(s: Sheet, fmt: str = "text", explain: bool = False) -> str:
    if fmt not in FORMATS:
        from ..core.errors import LlmcalcError

        raise LlmcalcError(f"--format expects text, md or html, got {fmt!r}")
    return text(s, explain) if fmt == "text" else FORMATS[fmt](s)
