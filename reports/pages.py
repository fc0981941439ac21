"""The report's blocks (heading, paragraph, table, figure, link) as Markdown, and as one self-contained HTML page.

A block is a tuple: ``("h1"|"h2"|"h3", text)``, ``("p", text)``, ``("link", text, href)``,
``("table"|"wide", frame)`` (a wide table scrolls in a box, its columns sort on a click) and
``("figure", title, name, png)`` (``plots/<name>.png`` beside the Markdown; embedded as base64 in the page).
"""

from __future__ import annotations

import base64
import html

import pandas as pd


def markdown(blocks) -> str:
    """The report as Markdown, its figures linked from ``plots/``."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {block[1]}\n")
        elif kind == "p":
            out.append(block[1] + "\n")
        elif kind == "link":
            out.append(f"[{block[1]}]({block[2]})\n")
        elif kind in ("table", "wide"):
            out.append(markdown_table(block[1]))
        elif kind == "figure":
            out.append(f"**{block[1]}**\n\n![{block[1]}](plots/{block[2]}.png)\n")
    return "\n".join(out)


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value):
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; white-space: nowrap; }
td:last-child { white-space: normal; min-width: 16em; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
.scroll { max-width: 100%; max-height: 32em; overflow: auto; border: 1px solid #ddd; margin: 0.5em 0 1.5em; }
.scroll table { margin: 0; } .scroll th { position: sticky; top: 0; cursor: pointer; }
.scroll th[aria-sort=ascending]::after { content: " ▲"; } .scroll th[aria-sort=descending]::after { content: " ▼"; }
"""

#: click a header of a wide table to sort by it (numbers as numbers: "12.4 ms" < "110 ms"), again to reverse
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var scale = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1, "k": 1e3, "M": 1e6, "G": 1e9};
      function key(row) {
        var text = row.cells[col].textContent.trim(), n = parseFloat(text.replace(/^[×x~]/, ""));
        var unit = (text.match(/[0-9.] ?(ns|µs|ms|s|k|M|G)(?![a-z])/) || [])[1];
        return isNaN(n) ? text : n * (scale[unit] || 1);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def html_page(blocks) -> str:
    """The report as one HTML page that needs nothing else (figures embedded, the sorting script inline)."""
    esc = html.escape
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{esc(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{esc(block[1])}</p>")
        elif kind == "link":
            body.append(f'<p><a href="{esc(block[2])}">{esc(block[1])}</a></p>')
        elif kind == "table":
            body.append(block[1].to_html(index=False, escape=True, border=0, na_rep="—"))
        elif kind == "wide":
            table = block[1].to_html(index=False, escape=True, border=0, na_rep="—", classes="sortable")
            body.append(f'<div class="scroll">{table}</div>')
        elif kind == "figure":
            data = base64.b64encode(block[3]).decode()
            body.append(f'<figure><figcaption>{esc(block[1])}</figcaption>'
                        f'<img alt="{esc(block[1])}" src="data:image/png;base64,{data}"></figure>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>seqbench: backend selection report</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + f"\n<script>{SORT_JS}</script>\n</body></html>\n")
