"""The HTML of bovw's reports: one self-contained page of titled sections, tables and
embedded PNG images. Pure text; no Spark, no plotting."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Section", "escape", "fmt", "html_table", "page", "pct", "png_tag"]

_NUMBER = re.compile(r"-?[0-9.,]+%?|")

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:24px 32px;background:#fff}
.scroll{overflow-x:auto;max-width:100%}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;
border-bottom:2px solid #e3e6ea;padding-bottom:4px} h3{font-size:16px;margin:20px 0 6px}
.sub{color:#666;margin:0 0 16px;font-size:14px;word-break:break-all}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:right}
th{background:#eef1f4} td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc} td.best{font-weight:bold;background:#e3f4e5}
td.low{background:#fde8e8} td.text{text-align:left}
.kv td:first-child{font-weight:600} .kv td{text-align:left}
table.wide{font-size:12px} table.wide th,table.wide td{padding:3px 6px}
img.plot{max-width:100%;border:1px solid #eee;margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.row>div{flex:1 1 420px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(138px,1fr));gap:10px}
figure{margin:0;padding:6px;border:2px solid #c9e7cd;border-radius:6px;background:#fbfefb;
font-size:11px;text-align:center}
figure.wrong{border-color:#e05656;background:#fff5f5}
figure img{width:120px;height:120px;object-fit:contain;display:block;margin:0 auto 4px}
figure .mark{font-weight:bold;color:#c62828}
.note{color:#555;font-size:13px}
details{margin:8px 0} summary{cursor:pointer;color:#345}
pre{background:#f3f4f6;padding:8px;font-size:12px;overflow:auto;max-height:400px}
"""


@dataclass
class Section:
    """A titled block of HTML."""

    title: str
    body: str
    level: int = 2


def escape(value: Any) -> str:
    """`value` as text safe inside HTML (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def png_tag(png: bytes, alt: str) -> str:
    """An <img> with the PNG embedded as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               classes: Sequence[Sequence[str]] | None = None, css: str = "") -> str:
    """A table; `classes` optionally gives each cell a CSS class (e.g. "best")."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            cls = classes[i][j] if classes and classes[i][j] else ""
            if j and not _NUMBER.fullmatch(str(value)):
                cls = (cls + " text").strip()
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f' class="{css}"' if css else ""
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    table = f"<table{attr}>{thead}<tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if css == "wide" else table


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole self-contained HTML document."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{escape(title)}</h1><p class=\"sub\">{escape(subtitle)}</p>"]
    for section in sections:
        parts.append(f"<h{section.level}>{escape(section.title)}</h{section.level}>{section.body}")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a table cell: floats with `digits` decimals, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    """A share (0..1) as a percentage with two decimals; None as empty."""
    return "" if value is None else f"{100 * value:.2f}%"
