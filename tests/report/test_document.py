"""The report document model: Markdown and self-contained HTML rendering."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from extractbench.report.document import Est, Figure, Section, Table, num, usd
from extractbench.report.html_page import render_html
from extractbench.report.markdown import render_markdown

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def sections(tmp_path: Path) -> list[Section]:
    png = tmp_path / "plot.png"
    png.write_bytes(PNG_1PX)
    svg = tmp_path / "plot.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"/>')
    table = Table(
        ["rank", "profile", "worst case @ q30", "worst case @ q300"],
        [["=1", "a|b <script>", Est("0.40", "0.30", "0.50", note="random-pool"), Est("–")],
         ["2", "plain", Est("0.10"), Est("0.20", "0.10", "0.30")]],
        definitions={"rank": "position; `=k` is a tie", "worst case @ q30": "max over attacks",
                     "worst case @ q300": "max over attacks"},
        legend=True,
    )
    return [Section("", bullets=["runs: `r1`"], after=["*Transfer* is defined below."]),
            Section("Ranked <profiles>", ["Some **bold** and `code`."], table=table),
            Section("Plots", figures=[Figure(png, "A plot & its caption", svg)])]


def test_markdown_tables_and_legend(tmp_path: Path) -> None:
    text = render_markdown("board", sections(tmp_path))
    assert text.startswith("# board\n")
    assert "| =1 | a\\|b <script> | 0.40 [0.30, 0.50] (random-pool) | – |" in text
    assert "| 2 | plain | 0.10 | 0.20 [0.10, 0.30] |" in text
    # one legend line for the columns that share a definition
    assert text.count("max over attacks") == 1
    assert "- **worst case @ budget**: max over attacks" in text
    assert "![A plot & its caption](plot.png)" in text


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    page = render_html("board", sections(tmp_path))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "a|b &lt;script&gt;" in page
    assert "<h2 id=\"ranked-profiles\">Ranked &lt;profiles&gt;</h2>" in page
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert "<em>Transfer</em>" in page
    # the figure is embedded (the SVG, preferred over the PNG), nothing is fetched
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 1 and sources[0].startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(sources[0].split(",", 1)[1]).startswith(b"<svg")
    assert not re.search(r'(src|href)="(https?:|//|[^#d])', page)
    assert 'title="position; =k is a tie"' in page  # header tooltip, without markup
    assert '<td class="num">0.40 <span class="ci">[0.30, 0.50]</span>' in page


def test_html_falls_back_to_png(tmp_path: Path) -> None:
    png = tmp_path / "only.png"
    png.write_bytes(PNG_1PX)
    page = render_html("b", [Section("Plots", figures=[Figure(png, "png only")])])
    assert 'src="data:image/png;base64,' in page


def test_number_formats() -> None:
    assert num(None) == "–" and num(float("nan")) == "–"
    assert num(1234.0) == "1,234" and num(0.123) == "0.12" and num(7) == "7"
    assert num(float("inf")) == "not reached"
    assert usd(0.0123) == "$0.0123" and usd(12.5) == "$12.5" and usd(None) == "–"
