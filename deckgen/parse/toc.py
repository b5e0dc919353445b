"""The table of contents of a file, the keys that match its entries to headings, and the layout."""
from __future__ import annotations

import functools
import re
from urllib.parse import unquote

from deckgen.ids import QUESTION_MARKER, normalize_key
from deckgen.model import Question, TocEntry
from deckgen.parse.structure import Doc, Heading
from deckgen.parse.text import without_asked

ARTICLE = "article"
KNOWLEDGE_BASE = "knowledge-base"

_ORDERED_MARKER = re.compile(r"\d{1,9}[.)]")


def parse_toc(doc: Doc) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for k, heading in enumerate(doc.headings):
        if not heading.is_toc:
            continue
        stop = doc.headings[k + 1].line if k + 1 < len(doc.headings) else len(doc.lines)
        for n in range(heading.end, stop):
            link = _toc_link(doc.lines[n])
            if link:
                entries.append(TocEntry(link[0], link[1], n + 1))
    return entries


def _toc_link(line: str) -> tuple[str, str] | None:
    """(title, anchor) of a `- [1.title](#anchor)` line; the anchor may hold parentheses (and
    brackets: the title runs to the first `](`)."""
    text = line.strip()
    if text[:1] in ("-", "*", "+"):
        text = text[1:].lstrip()
    else:
        number = _ORDERED_MARKER.match(text)
        if number:
            text = text[number.end() :].lstrip()
    if not (text.startswith("[") and text.endswith(")")):
        return None
    middle = text.find("](")
    if middle < 0:
        return None
    # `](3.标题)` without the `#`: a link GitHub leaves broken, but the author meant an entry
    return text[1:middle].strip(), text[middle + 2 : -1].strip().removeprefix("#")


def detect_layout(doc: Doc) -> str:
    # Counted, not just seen: an article may give a section a raw `<h1 id>`, and a knowledge-base
    # answer may have a `### 【一】` heading of its own.
    marked = sum(1 for h in doc.headings if QUESTION_MARKER.match(h.text))
    raw = sum(
        1 for h in doc.headings if h.raw and not h.is_toc and not QUESTION_MARKER.match(h.text)
    )
    if raw > marked:
        return KNOWLEDGE_BASE
    if marked:
        return ARTICLE
    # no 【一】 question: the knowledge base's readings (numbered headings, `问题N`, the TOC) apply
    return KNOWLEDGE_BASE


def loose(key: str) -> str:
    """A key with punctuation gone too: TOC anchors spell spaces and `?` their own way."""
    return re.sub(r"[\W_]+", "", key)


@functools.lru_cache(maxsize=8192)  # each title is keyed for the TOC, roles and coverage
def _anchor_keys(anchor: str) -> frozenset[str]:
    anchor = unquote(anchor).strip()
    if anchor.lower().startswith("user-content-"):
        anchor = anchor[len("user-content-") :]
    return frozenset({loose(normalize_key(anchor, is_id=True)), loose(normalize_key(anchor))})


@functools.lru_cache(maxsize=8192)
def _title_keys(text: str) -> frozenset[str]:
    return frozenset({loose(normalize_key(text)), loose(normalize_key(without_asked(text)))})


def entry_keys(entry: TocEntry) -> frozenset[str]:
    return (_title_keys(entry.title) | _anchor_keys(entry.anchor)) - {""}


def heading_keys(heading: Heading) -> frozenset[str]:
    keys = _title_keys(heading.text)
    for name in (heading.html_id, heading.pinned_id):
        if name:
            keys |= _anchor_keys(name)
    return keys - {""}


def question_keys(question: Question) -> set[str]:
    keys = {loose(question.key)} | _title_keys(question.title)
    if question.explicit_id:
        keys |= _anchor_keys(question.explicit_id)
    return keys - {""}
