"""A report.html as a person reads it: per section, its headings, the rows of its tables, its
figures by kind, and every tag with its attributes (for the injection checks). The structure
tests compare these, not bytes: a change of wording or style does not break them, a lost
section, row or figure does."""
from __future__ import annotations

import base64
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

SVG_PREFIX = "data:image/svg+xml;base64,"
GOLDEN = Path(__file__).resolve().parent / "golden" / "report"
NUMBER = re.compile(r"(?<![\w.])\d+(\.\d+)?(e[-+]?\d+)?")
TIME = re.compile(r"^(N (ms|s)|—)$")


@dataclass
class Section:
    title: str = ""
    headings: list[str] = field(default_factory=list)              # h3, as text
    tables: dict[str, list[list[str]]] = field(default_factory=dict)   # class -> rows of cell texts
    figures: list[str] = field(default_factory=list)               # figure kinds, in order
    text: str = ""


class ReportPage(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, Section] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._section: Section | None = None
        self._heading: list[str] | None = None
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_title = False
        self.feed(html)

    @classmethod
    def read(cls, path: str | Path) -> ReportPage:
        return cls(Path(path).read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section":
            self._section = self.sections.setdefault(attributes.get("id") or "", Section())
        elif tag == "title":
            self._in_title = True
        elif self._section is None:
            return
        elif tag in ("h2", "h3"):
            self._heading = []
        elif tag == "table":
            self._table = self._section.tables.setdefault(attributes.get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "figure":
            self._section.figures.append(attributes.get("class") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "title":
            self._in_title = False
        elif tag in ("h2", "h3") and self._heading is not None and self._section is not None:
            text = " ".join("".join(self._heading).split())
            if tag == "h2":
                self._section.title = text
            else:
                self._section.headings.append(text)
            self._heading = None
        elif tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        for sink in (self._heading, self._cell):
            if sink is not None:
                sink.append(data)
        if self._section is not None:
            self._section.text += data

    # ------------------------------------------------------------ what tests ask
    def rows(self, section: str, table: str) -> list[list[str]]:
        """The data rows (not the header) of a table of a section."""
        return self.sections[section].tables[table][1:]

    def images(self) -> list[str]:
        return [attrs.get("src") or "" for tag, attrs in self.tags if tag == "img"]

    def svgs(self) -> list[ElementTree.Element]:
        """Every figure, decoded and parsed as XML (a figure that is not well-formed fails here)."""
        found = []
        for src in self.images():
            assert src.startswith(SVG_PREFIX), src[:60]
            found.append(ElementTree.fromstring(base64.b64decode(src[len(SVG_PREFIX):])))
        return found


def assert_inert(page: ReportPage) -> None:
    """No script anywhere, no event handler attribute, nothing loaded from outside the file, and
    the figures carry none either."""
    for tag, attrs in page.tags:
        assert tag not in ("script", "iframe", "object", "embed", "link", "base"), tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("src", "href", "action", "srcset"):
            value = attrs.get(name) or ""
            assert not value or value.startswith(("data:image/svg+xml;base64,", "#")), (tag, name, value[:80])
    for svg in page.svgs():
        for element in svg.iter():
            assert not element.tag.endswith("}script") and element.tag != "script"
            assert not [a for a in element.attrib if a.lower().startswith("on")], element.attrib
            for a, value in element.attrib.items():
                assert not a.endswith("href") or value.startswith(("#", "data:image/")), (element.tag, a, value[:80])


def outline(page: ReportPage) -> dict[str, dict]:
    """Per section: title, headings, figure kinds and table rows (cells joined by ` | `), numbers
    masked (metrics move with library versions; what is shown does not) and times left out."""
    def words(text: str) -> str:
        return NUMBER.sub("N", text)

    return {name: {"title": section.title, "headings": [words(h) for h in section.headings],
                   "figures": section.figures,
                   "tables": {cls: [" | ".join(words(c) for c in row if not TIME.match(words(c))) for row in rows]
                              for cls, rows in section.tables.items()}}
            for name, section in page.sections.items()}


def assert_outline(page: ReportPage, name: str) -> None:
    """The page's outline equals tests/golden/report/NAME.json (UPDATE_GOLDEN=1 rewrites it)."""
    golden = GOLDEN / f"{name}.json"
    text = json.dumps(outline(page), indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden outline {golden}: run with UPDATE_GOLDEN=1 and review it"
    expected = golden.read_text(encoding="utf-8")
    assert text == expected, "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                                          str(golden), "this page"))
