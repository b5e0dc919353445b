"""A long answer opens with its outline: its parts, each a link to where it starts.

A learner checking recall wants the key points first, then the part they missed. So an answer
that would fill more than about one phone screen gets, before everything else, a list of its
sub-headings (those of the highest level it uses), or else of its first-level list items, each
a link to its part. Nothing of the answer is dropped, changed or reordered: the parts only gain
an `id` (`dg-part-1`, …) and the outline is put in front. Short answers are left as they are.

This works on the answer's final HTML (sanitized, code put back), so it sees what the card
shows. The ids pass the sanitizer's allow-list (deckgen.sanitize), so HTML shipped again is
cleaned without losing them. The links are plain fragment links; the Q&A back template
scrolls to the part itself, since the desktop app refuses to follow a link into its own page.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

PART_ID = "dg-part-{}"
MAX_PARTS = 20  # more entries than this would be a screen of outline: not key points
MIN_PARTS = 2
# One phone screen, in lines of card text: 390 px wide (about 20 CJK characters of 18 px a
# line) and some 700 px high once the question and the app's bar are drawn (29 px a line).
SCREEN_LINES = 26
CHARS_PER_LINE = 20  # CJK characters; a Latin letter or digit counts half
LABEL_CHARS = 36  # a list item's label is cut (at a sentence mark if one comes early) beyond this
HEADING_CHARS = 60  # a heading is its own label, up to this long

_BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div", "blockquote", "tr",
                     "ul", "ol", "table", "details", "summary", "hr", "br"})
_LISTS = frozenset({"ul", "ol"})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "source"})
_WIDE = re.compile(r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]")
_SENTENCE_END = re.compile(r"[：:，,。；;！!？?]")
_KEY_POINT_END = re.compile(r"[：:。；;！!？?]")
_LEAD = re.compile(r"\s*<(strong|b)>(.*?)</\1>", re.DOTALL)
# A tag of the sanitizer's output; attribute values may hold ">" (HTML does not escape it there).
# Unquoted attribute text is taken a run at a time (`+`), not a character at a time: the same
# matches (quotes can only pair one way), a third of the scanning time.
_TAG = re.compile(r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']+|"[^"]*"|'[^']*')*)>""")
_MATH = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL)


@dataclass
class _Part:
    tag: str
    start: int  # offset just after the tag name in "<h3", where the id goes
    label_start: int  # offset where the label's HTML starts (after the start tag)
    label_end: int | None = None


class _Scan:
    """One pass over the answer: its height in lines, its top-level headings and list items.

    A tokenizer of its own rather than html.parser: the HTML is the sanitizer's well-formed
    output, and most of it is highlighted code, skipped here in one step (three times faster
    over the knowledge base).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = 0.0
        self.headings: list[_Part] = []
        self.items: list[_Part] = []
        self._stack: list[str] = []
        self._units = 0.0  # width of the text of the current block, in CJK characters
        self._label: _Part | None = None  # the part whose label is being read

    def run(self) -> _Scan:
        source, position = self.source, 0
        while True:
            tag = _TAG.search(source, position)
            end = tag.start() if tag else len(source)
            if end > position:
                self._text(source[position:end])
            if tag is None:
                break
            position = tag.end()
            name = tag.group(2).lower()
            if tag.group(1):
                self._end(name, tag.start())
            else:
                self._start(name, tag.group(3), tag.start(), tag.end())
                if name == "pre":  # code: its lines, not its markup
                    close = source.find("</pre>", position)
                    close = len(source) if close < 0 else close
                    # 0.8 em at 1.45 line height: a code line is 0.72 of a text line.
                    self.lines += (source.count("\n", position, close) + 1) * 0.72
                    position = close
        self._flush()
        return self

    def _start(self, tag: str, attributes: str, start: int, after: int) -> None:
        if tag in _BLOCKS:
            self._flush()
        depth = len(self._stack)
        if tag in _HEADINGS and depth == 0:
            self._label = _Part(tag, start + 1 + len(tag), after)
            self.headings.append(self._label)
        elif tag == "li" and depth == 1 and self._stack[0] in _LISTS:
            self._label = _Part(tag, start + 1 + len(tag), after)
            self.items.append(self._label)
        elif self._label is not None and self._label.tag == "li" and tag in _BLOCKS - {"br"}:
            if tag == "p" and not self.source[self._label.label_start:start].strip():
                self._label.label_start = after  # <li><p>label</p>…: the first paragraph
            else:
                self._end_label(start)  # an item's label is its text before its first block
        if tag == "img":
            self.lines += 6
        elif tag == "div" and "math" in attributes:
            self.lines += 1.5  # a display formula: taller than a line, with margins
        elif tag == "tr":
            self.lines += 0.3  # cell padding and borders
        if tag not in _VOID and not attributes.endswith("/"):
            self._stack.append(tag)

    def _end(self, tag: str, start: int) -> None:
        if tag in _VOID:
            return
        label = self._label
        if label is not None and (tag == label.tag or (label.tag == "li" and tag == "p")):
            self._end_label(start)
        if tag in _BLOCKS:
            self._flush()
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def _text(self, data: str) -> None:
        # Typeset math is narrower than its TeX. (Math starts with a backslash: text without
        # one, most of it, has none to narrow.)
        text = _MATH.sub(lambda m: "x" * (len(m.group(0)) // 3), data) if "\\" in data else data
        wide = len(text) - len(_WIDE.sub("", text))  # each match is one character
        self._units += wide + (len(text.strip()) - wide) / 2

    def _flush(self) -> None:
        if self._units > 0.5:
            self.lines += math.ceil(self._units / CHARS_PER_LINE) + 0.4
        self._units = 0.0

    def _end_label(self, end: int) -> None:
        if self._label is not None and self._label.label_end is None:
            self._label.label_end = end
        self._label = None


def estimated_lines(answer_html: str) -> float:
    """How many lines of card text the answer fills on a phone (an estimate; see SCREEN_LINES)."""
    return _scan(answer_html).lines


def _scan(answer_html: str) -> _Scan:
    return _Scan(answer_html).run()


def add_outline(answer_html: str) -> str:
    """The answer with an outline in front when it is longer than a phone screen, else as given."""
    if answer_html.count("<h") + answer_html.count("<li") < MIN_PARTS:
        return answer_html  # nothing to outline: no need to read it through
    scan = _scan(answer_html)
    if scan.lines <= SCREEN_LINES:
        return answer_html
    levels = sorted({part.tag for part in scan.headings})
    parts = [p for p in scan.headings if levels and p.tag == levels[0]]
    if len(parts) < MIN_PARTS:
        parts = scan.items
    if not MIN_PARTS <= len(parts) <= MAX_PARTS:
        return answer_html
    entries = []
    pieces = []
    position = 0
    for number, part in enumerate(parts, start=1):
        anchor = PART_ID.format(number)
        label_end = part.label_end if part.label_end is not None else part.label_start
        fragment = answer_html[part.label_start:label_end]
        label = (_item_label(fragment) if part.tag == "li" else _label(fragment, HEADING_CHARS)) or f"{number}"
        entries.append(f'<li><a href="#{anchor}">{label}</a></li>')
        pieces.append(answer_html[position:part.start])
        pieces.append(f' id="{anchor}"')
        position = part.start
    pieces.append(answer_html[position:])
    # A bulleted list: the sources number their headings themselves ("1. 基本打开模式").
    outline = (f'<div class="outline"><div class="outline-title">要点 Outline</div>'
               f'<ul>{"".join(entries)}</ul></div>\n')
    return outline + "".join(pieces)


def _item_label(fragment: str) -> str:
    """A list item's key point: its bold lead-in (`**加权平均**：…`), or its text up to the
    first colon or full stop (`AIGC：图像生成…`)."""
    lead = _LEAD.match(fragment)
    if lead and lead.group(2).strip():
        return _label(lead.group(2), LABEL_CHARS)
    text = _text(fragment)
    mark = _KEY_POINT_END.search(text, 2)
    if mark and not _inside_formula(text, mark.start()):
        text = text[:mark.start()]
    return _label(html.escape(text, quote=False), LABEL_CHARS)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", fragment)).split())


def _inside_formula(text: str, index: int) -> bool:
    return any(m.start() < index < m.end() for m in _MATH.finditer(text))


def _label(fragment: str, limit: int) -> str:
    """An entry's label: the part's text (math kept as TeX, for MathJax), cut short."""
    text = _text(fragment)
    if len(text) > limit:
        text = _shorten(text, limit)
    return html.escape(text, quote=False)


def _shorten(text: str, limit: int) -> str:
    """The text up to an early sentence mark, or cut at `limit`, never inside a formula."""
    mark = _SENTENCE_END.search(text, 4)
    if mark and mark.start() <= limit and not _inside_formula(text, mark.start()):
        return text[:mark.start()]
    cut = limit
    for a, b in (m.span() for m in _MATH.finditer(text)):
        if a < cut < b:
            cut = b if b - a <= limit else a
    return text[:cut].rstrip() + "…"
