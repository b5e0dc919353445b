"""An audit of a knowledge-base build: which headings are questions, and whether each has a card
of its own. Used by tests/test_kb.py; run it to print the figures:

    python -m tests.kb_audit ../shared/kb

The reference reading of the headings is written here on its own, from the raw lines (a simple
fence toggle, lenient raw-heading reading, TOC titles), not with the parser's code, so a slip in
either shows up as a disagreement:
- a heading is *strong* when it is `问题N` or a table-of-contents entry names it;
- inside a question (a deeper heading after it) a heading that is not strong is a *part*;
- a strong, numbered or raw `<hN id>` heading elsewhere is a question, unless it has nothing under
  it but a deeper heading that is strong (or numbered below an unnumbered one): then it *groups*
  the questions under it;
- a question with nothing under it at all is *empty* (no card, but a warning).
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deckgen.model import Corpus, Diagnostic, Question

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_RAW = re.compile(r"^\s*<h([1-6])\b[^\n]*?\bid\s*=", re.IGNORECASE)
_MD = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_TOC_ENTRY = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s*\[(.*)\]\(#.*\)\s*$")
_NUMBER = re.compile(r"^\s*(?:问题\s*)?\d+(?:\.\d+)*\s*[.．、:：)）]?\s*")
_NUMBERED = re.compile(r"^\s*\d+\s*[.．、]")
_ASKED = re.compile(r"^\s*问题\s*\d+")
_TAGS = re.compile(r"<[^<>]*>")


def loose(title: str) -> str:
    title = _TAGS.sub("", title).replace("*", "")
    return re.sub(r"[\W_]+", "", _NUMBER.sub("", title, count=1)).lower()


@dataclass
class Heading:
    line: int  # 1-based
    level: int
    title: str
    raw: bool
    strong: bool = False
    numbered: bool = False
    body: bool = False  # text (not a heading) before the next heading
    role: str = ""  # question, part, group, empty, other


def _raw_title(line: str, level: str) -> str:
    """The text of a raw heading as its author meant it, even with a quote missing."""
    closing = re.search(rf"</h{level}\s*>", line, re.IGNORECASE)
    inner = line[: closing.start()] if closing else line
    quoted = max(inner.rfind('">'), inner.rfind("'>"))
    start = quoted + 2 if quoted >= 0 else inner.find(">") + 1
    return inner[start:].strip()


def headings(text: str) -> list[Heading]:
    lines = text.replace("\r\n", "\n").split("\n")
    found: list[Heading] = []
    fence = ""
    toc: set[str] = set()
    in_toc = False
    for n, line in enumerate(lines, 1):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            if found and not in_toc:
                found[-1].body = True
            continue
        raw = _RAW.match(line)
        md = _MD.match(line)
        if raw:
            heading = Heading(n, int(raw.group(1)), _raw_title(line, raw.group(1)), True)
        elif md:
            heading = Heading(n, len(md.group(1)), md.group(2), False)
        else:
            if line.strip():
                if in_toc:
                    entry = _TOC_ENTRY.match(line)
                    if entry:
                        toc.add(loose(entry.group(1)))
                elif found:
                    found[-1].body = True
            continue
        in_toc = _TAGS.sub("", heading.title).strip(" :：*") == "目录"
        if not in_toc:
            found.append(heading)
    for heading in found:  # each TOC entry names one heading: the first of that title
        plain = _TAGS.sub("", heading.title).replace("*", "")
        heading.numbered = bool(_NUMBERED.match(plain))
        heading.strong = bool(_ASKED.match(plain)) or loose(heading.title) in toc
        toc.discard(loose(heading.title))
    _roles(found)
    return found


def _number(title: str) -> int | None:
    found = re.match(r"^\s*(?:问题\s*)?(\d+)", _TAGS.sub("", title).replace("*", ""))
    return int(found.group(1)) if found else None


def _is_part(heading: Heading, current: Heading, parts: list[Heading]) -> bool:
    """Whether a heading met in the answer of `current` (with `parts` so far) is a part of it."""
    if heading.strong:
        return False
    if heading.level > current.level:
        return True
    if not (heading.numbered or heading.raw):
        return True
    # under a raw question, a Markdown heading is a part unless it numbers the questions on
    number = _number(heading.title)
    numbers_parts = any(_number(p.title) == (number or 0) - 1 for p in parts)
    return not (heading.raw or not current.raw or (
        number is not None and number == (_number(current.title) or 0) + 1 and not numbers_parts))


def _roles(found: list[Heading]) -> None:
    current: Heading | None = None
    parts: list[Heading] = []
    for k, heading in enumerate(found):
        if current and _is_part(heading, current, parts):
            heading.role = "part"
            parts.append(heading)
            continue
        parts = []
        if not (heading.strong or heading.numbered or heading.raw):
            heading.role, current = "other", None
            continue
        heading.role, current = "question", heading
        nxt = found[k + 1] if k + 1 < len(found) else None
        if heading.body or (nxt is not None and nxt.level > heading.level and not (
                nxt.strong or (nxt.numbered and not heading.numbered))):
            continue
        if nxt is not None and nxt.level > heading.level:
            heading.role, current = "group", None
        elif nxt is not None and _is_part(nxt, heading, []):
            continue
        elif nxt is not None and nxt.raw and not heading.raw and not heading.strong:
            heading.role, current = "group", None  # a Markdown chapter over raw questions
        else:
            heading.role, current = "empty", None


@dataclass
class Audit:
    cards: int = 0
    counted: int = 0  # questions by the reference reading
    exact: int = 0  # cards at a counted question holding no other
    without_card: list[tuple[Path, int, bool]] = field(default_factory=list)  # (file, line, warned)
    merged: list[tuple[Path, int]] = field(default_factory=list)
    bare: list[tuple[Path, int, str]] = field(default_factory=list)  # cards at a part heading
    not_counted: list[tuple[Path, int, str]] = field(default_factory=list)  # cards at no question
    empty_unwarned: list[tuple[Path, int]] = field(default_factory=list)
    silent_files: list[Path] = field(default_factory=list)
    raw_marks: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)
    warnings: Counter = field(default_factory=Counter)

    def report(self) -> str:
        lines = [
            f"Q&A cards: {self.cards}",
            f"questions counted: {self.counted}",
            f"cards matching exactly one question: {self.exact}",
            f"questions without a card of their own: {len(self.without_card)} "
            f"({sum(1 for *_, w in self.without_card if w)} with a warning at their line)",
            f"cards merging two questions: {len(self.merged)}",
            f"cards whose front is a bare part title: {len(self.bare)}",
            f"cards at no counted question: {len(self.not_counted)}",
            f"empty question headings without a warning: {len(self.empty_unwarned)}",
            f"silent files: {len(self.silent_files)}",
        ]
        lines += [f"cards with raw {mark}: {len(where)}" for mark, where in self.raw_marks.items()]
        lines.append("warnings by kind:")
        lines += [f"  {n:5}  {kind}" for kind, n in self.warnings.most_common()]
        return "\n".join(lines)


# Text that is shown as written: code, math, and the heading crumbs.
_VERBATIM = re.compile(r"<(pre|code|script)\b.*?</\1>|\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL)


def visible_marks(html: str, mark: str) -> bool:
    return mark in _VERBATIM.sub("", html)


def audit(kb: Path, corpus: Corpus, answers_html: list[str]) -> Audit:
    result = Audit(cards=len(corpus.questions))
    by_file: dict[Path, list[Question]] = {}
    for question in corpus.questions:
        by_file.setdefault(Path(question.path), []).append(question)
    warned = {(Path(d.path), d.line) for d in corpus.diagnostics}
    about_file = {Path(d.path) for d in corpus.diagnostics}
    for diagnostic in corpus.diagnostics:
        result.warnings[_kind(diagnostic)] += 1
    for path in sorted(p for p in kb.rglob("*.md") if p.name.lower() != "readme.md"):
        text = path.read_text(encoding="utf-8-sig")
        found = headings(text)
        cards = {q.line: q for q in by_file.get(path, [])}
        questions = {h.line: h for h in found if h.role == "question"}
        result.counted += len(questions)
        if not cards and path not in about_file:
            result.silent_files.append(path)
        for h in found:
            if h.role == "empty" and h.line not in cards and (path, h.line) not in warned:
                result.empty_unwarned.append((path, h.line))
        for line in questions:
            if line not in cards:
                result.without_card.append((path, line, (path, line) in warned))
        for line, question in cards.items():
            end = question.answer_line + question.answer.count("\n")
            inside = [q for q in questions if question.answer_line <= q <= end]
            heading = next((h for h in found if h.line == line), None)
            if inside:
                result.merged.append((path, line))
            elif line in questions:
                result.exact += 1
            if heading is not None and heading.role == "part":
                result.bare.append((path, line, question.title))
            elif line not in questions:
                result.not_counted.append((path, line, question.title))
    for mark in ("**", "!["):
        result.raw_marks[mark] = [
            (Path(q.path), q.line) for q, html in zip(corpus.questions, answers_html)
            if visible_marks(html, mark)
        ]
    return result


def _kind(diagnostic: Diagnostic) -> str:
    message = re.sub(r"\d+", "N", diagnostic.message)
    message = message.split(": ")[0] if ": " in message else message
    return f"{diagnostic.level}: {message[:70]}"


def build(kb: Path) -> tuple[Corpus, list[str]]:
    from deckgen.load import load_sources

    corpus, rendered = load_sources([kb], cache_dir=None)
    return corpus, [f"{r.title}\n{r.answer.html}" for r in rendered]


if __name__ == "__main__":
    kb_path = Path(sys.argv[1])
    corpus, html = build(kb_path)
    result = audit(kb_path, corpus, html)
    print(result.report())
    if "-v" in sys.argv:
        for label, rows in (("without card", result.without_card), ("merged", result.merged),
                            ("bare", result.bare), ("not counted", result.not_counted),
                            ("empty unwarned", result.empty_unwarned),
                            ("raw **", result.raw_marks["**"]), ("raw ![", result.raw_marks["!["])):
            for row in rows:
                print(label, *row)
        for path in result.silent_files:
            print("silent", path)
