"""The knowledge-base layout (upstream WeThinkIn/Interview-for-Algorithm-Engineer): a `目录` table
of contents, then one raw HTML heading `<hN id="…">33.问题</hN>` per question; the answer runs to
the next question. Topic folder → section, file → subdeck."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from deckgen.ids import strip_number
from deckgen.model import ERROR, Question, TocEntry
from deckgen.parse.answers import cut_answer, make_question
from deckgen.parse.structure import Doc, Heading
from deckgen.parse.text import plain_text, as_tag
from deckgen.parse.toc import entry_keys, heading_keys, is_numbered


def knowledge_base_questions(doc: Doc, toc: list[TocEntry], root: Path) -> list[Question]:
    section, deck = _kb_place(doc.path, root)
    headings = doc.headings
    is_question = _kb_question_headings(headings, toc)
    boundaries = [k for k, h in enumerate(headings) if is_question[k] or h.is_toc]
    # Markdown headings that may turn out to be grouping headings, by their last line
    plain_by_end = {
        h.end - 1: h for k, h in enumerate(headings) if not (h.raw or h.is_toc or is_question[k])
    }
    groups = _Groups()
    questions: list[Question] = []
    if boundaries and is_question[boundaries[0]]:
        first = headings[boundaries[0]].line
        groups.enter_all(_trailing_headings(doc, 0, first, plain_by_end)[1])
    for n, k in enumerate(boundaries):
        heading = headings[k]
        nxt = boundaries[n + 1] if n + 1 < len(boundaries) else None
        stop = headings[nxt].line if nxt is not None else len(doc.lines)
        grouping: list[Heading] = []
        if nxt is not None and is_question[nxt]:
            stop, grouping = _trailing_headings(doc, heading.body_start, stop, plain_by_end)
        if is_question[k]:
            title = strip_number(heading.text)
            answer = cut_answer(doc, heading.body_start, stop, inner=())
            if answer is None:
                # a title with nothing under it: a section title, or a question still unanswered
                if title and not is_numbered(heading.text):
                    groups.enter(heading)
            elif not title:
                doc.diag(heading.line, ERROR, "question heading has no title: no card")
            else:
                tags = (as_tag(section), *groups.tags)
                questions.append(
                    make_question(doc, heading, title, answer, section=section, deck=deck, tags=tags)
                )
        groups.enter_all(grouping)
    return questions


def _kb_question_headings(headings: list[Heading], toc: list[TocEntry]) -> list[bool]:
    """Which headings are questions: raw ones with an id, and numbered Markdown headings that a
    TOC entry links to (an entry no raw heading answers, and only once)."""
    toc_keys: dict[str, int] = {}
    for n, entry in enumerate(toc):
        for key in entry_keys(entry):
            toc_keys.setdefault(key, n)
    claimed = {
        toc_keys[key]
        for h in headings
        if toc_keys and h.raw and not h.is_toc
        for key in heading_keys(h)
        if key in toc_keys
    }
    flags: list[bool] = []
    for heading in headings:
        if heading.is_toc:
            flags.append(False)
        elif heading.raw:
            flags.append(True)
        else:
            hits: set[int] = set()
            if toc_keys and is_numbered(heading.text):
                hits = {toc_keys[key] for key in heading_keys(heading) if key in toc_keys}
                hits -= claimed
            flags.append(bool(hits))
            claimed |= hits
    return flags


def _trailing_headings(
    doc: Doc, start: int, stop: int, plain_by_end: dict[int, Heading]
) -> tuple[int, list[Heading]]:
    """Markdown headings with nothing under them right before the next question.

    Those are grouping headings such as `## 1、Transformer模块`. Returns where the text before
    them ends, and them.
    """
    found: list[Heading] = []
    j = stop - 1
    while j >= start:
        if not doc.lines[j].strip():
            j -= 1
        elif j in plain_by_end and plain_by_end[j].line >= start:
            found.append(plain_by_end[j])
            j = plain_by_end[j].line - 1
        else:
            break
    return j + 1, found[::-1]


@dataclass
class _Groups:
    """The grouping headings in force, as tags: a heading replaces those of its level or deeper."""

    open: list[tuple[int, str]] = field(default_factory=list)  # (level, tag)

    def enter(self, heading: Heading) -> None:
        tag = as_tag(strip_number(plain_text(heading.text)))
        if tag:
            while self.open and self.open[-1][0] >= heading.level:
                self.open.pop()
            self.open.append((heading.level, tag))

    def enter_all(self, headings: list[Heading]) -> None:
        for heading in headings:
            self.enter(heading)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(tag for _, tag in self.open)


def _kb_place(path: Path, root: Path) -> tuple[str, tuple[str, ...]]:
    """The section (topic folder) and deck (section, …folders, file stem) of a file."""
    root_name = Path(os.path.abspath(root)).name
    try:
        folders = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).parts[:-1]
    except ValueError:
        folders = ()
    section = folders[0] if folders else root_name
    return section, (section, *folders[1:], Path(path).stem)

