"""The knowledge-base layout (upstream WeThinkIn/Interview-for-Algorithm-Engineer): a `目录` table
of contents, then the questions as headings; the answer runs to the next question. Topic folder →
section, file → subdeck.

Questions are recognised by what they are, in each form the knowledge base writes them: raw
`<hN id="…">33.问题</hN>`, Markdown `### 1. 问题` or `### 问题1：…`, at whatever level a file
uses (a file may mix forms and levels). Each heading of a file plays one role:
- a *question*: named by the table of contents, or `问题N`, or numbered or raw outside any
  question, or numbered in sequence after the question before it;
- a *part* of the answer it sits in: any other heading inside a question (deeper than it, or a
  Markdown heading restarting the numbering under a raw question: `### 1. 显存需求` under
  `<h3 id>40.…</h3>`);
- a *group* (context): a heading with nothing of its own under it that opens questions (a
  chapter, a company's set of questions): its title becomes the questions' tag and crumb;
- *empty*: a question heading with nothing under it, reported at its line.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from deckgen.ids import strip_number
from deckgen.model import ERROR, WARNING, Question, TocEntry
from deckgen.parse.answers import cut_answer, make_question
from deckgen.parse.structure import Doc, Heading
from deckgen.parse.text import ASKED, as_tag, plain_text, without_asked
from deckgen.parse.toc import entry_keys, heading_keys

QUESTION, PART, GROUP, EMPTY, OTHER = "question", "part", "group", "empty", "other"

_NUMBER = re.compile(r"^(\d{1,9})\s*(?:[.．、)）:：]|\s)")


@dataclass
class _Look:
    """What a heading looks like, before its place decides its role."""

    strong: bool  # `问题N`, or an entry of the table of contents names it
    number: int | None  # its leading number (`33.`, `问题3`)
    body: bool  # text of its own before the next heading


@dataclass
class KbFile:
    """The questions of one file, and the headings that are not questions but are accounted
    for (parts of answers, groups, empty headings already reported), for coverage."""

    questions: list[Question]
    accounted: set[str]  # keys of those headings (see toc.heading_keys)


def knowledge_base_questions(doc: Doc, toc: list[TocEntry], root: Path) -> KbFile:
    section, deck = _kb_place(doc.path, root)
    headings = doc.headings
    roles = classify(doc, toc)
    boundaries = [k for k, h in enumerate(headings) if roles[k] in (QUESTION, GROUP, EMPTY)
                  or h.is_toc]
    # Markdown headings that may turn out to be grouping headings, by their last line
    plain_by_end = {h.end - 1: h for k, h in enumerate(headings) if roles[k] == PART and not h.raw}
    groups = _Groups()
    questions: list[Question] = []
    accounted = {key for k, h in enumerate(headings) if roles[k] in (PART, GROUP, EMPTY)
                 for key in heading_keys(h)}

    def parts(k: int, nxt: int | None) -> list[Heading]:
        return [h for j, h in enumerate(headings[k + 1 : nxt], k + 1) if roles[j] == PART]

    if boundaries and roles[boundaries[0]] in (QUESTION, GROUP):
        first = headings[boundaries[0]].line
        groups.enter_all(_trailing_headings(doc, 0, first, plain_by_end)[1])
    for n, k in enumerate(boundaries):
        heading = headings[k]
        nxt = boundaries[n + 1] if n + 1 < len(boundaries) else None
        stop = headings[nxt].line if nxt is not None else len(doc.lines)
        grouping: list[Heading] = []
        if nxt is not None and roles[nxt] in (QUESTION, GROUP):
            stop, grouping = _trailing_headings(doc, heading.body_start, stop, plain_by_end)
        if roles[k] == GROUP:
            below = k + 1 < len(headings) and headings[k + 1].level > heading.level
            groups.enter(heading, parent=below)
        elif roles[k] == EMPTY:
            doc.diag(heading.line, WARNING, "nothing under this heading: no card")
        elif roles[k] == QUESTION:
            title = question_title(heading.text)
            answer = cut_answer(doc, heading.body_start, stop, inner=parts(k, nxt))
            if answer is None:
                accounted |= heading_keys(heading)
                if _number(heading.text) is None and title and nxt is not None:
                    groups.enter(heading)  # a title with nothing under it: a section title
                else:
                    doc.diag(heading.line, WARNING, "nothing under this heading: no card")
            elif not title:
                doc.diag(heading.line, ERROR, "question heading has no title: no card")
            else:
                tags = (as_tag(section), *groups.tags)
                question = make_question(doc, heading, title, answer, section=section, deck=deck,
                                         tags=tags)
                question.context = groups.titles
                questions.append(question)
        if nxt is not None and roles[nxt] == QUESTION:
            groups.leave(headings[nxt])  # before the groups right above it
        groups.enter_all(grouping)
    return KbFile(questions, accounted)


def question_title(text: str) -> str:
    """A question heading's title without its number (`33.`, `问题3：`) or a colon after it."""
    return strip_number(without_asked(text)).rstrip(":：").strip()


def classify(doc: Doc, toc: list[TocEntry]) -> list[str]:
    """The role of each heading of a knowledge-base file (see the module's docstring)."""
    headings = doc.headings
    looks = _looks(doc, toc)
    nesting = _nesting_keys(doc, toc)
    roles = [OTHER] * len(headings)
    current: int | None = None  # the question whose answer we are in
    numbered_parts: set[int] = set()  # numbers of its parts so far (`### 1.`, `### 2.` …)
    for k, heading in enumerate(headings):
        look = looks[k]
        if heading.is_toc:
            current = None
            continue
        if current is None:
            opens = look.strong or look.number is not None or heading.raw
        else:
            opens = _next_question(heading, look, headings[current], looks[current],
                                   numbered_parts)
        if not opens:
            roles[k] = PART if current is not None else OTHER
            if current is not None and look.number is not None:
                numbered_parts.add(look.number)
            continue
        roles[k], current = QUESTION, k
        numbered_parts = set()
        if look.body:
            continue
        following = k + 1 if k + 1 < len(headings) else None
        if following is None or headings[following].is_toc:
            roles[k], current = EMPTY, None
            continue
        child, child_look = headings[following], looks[following]
        if child.level > heading.level:
            # nothing of its own, then deeper questions: it groups them
            if child_look.strong or (child_look.number is not None and look.number is None):
                roles[k], current = GROUP, None
        elif _next_question(child, child_look, heading, look, set()):
            # nothing of its own before the next question at its level
            if not heading.raw and child.raw and not look.strong:
                roles[k], current = GROUP, None  # a Markdown chapter heading over raw questions
            elif look.number is None and not look.strong and child.level == heading.level:
                roles[k], current = GROUP, None
            elif look.strong and heading_keys(heading) & nesting:
                roles[k], current = GROUP, None
            else:
                roles[k], current = EMPTY, None
    return roles


def _next_question(heading: Heading, look: _Look, current: Heading, current_look: _Look,
                   numbered_parts: set[int]) -> bool:
    """Whether a heading met inside a question's answer starts the next question."""
    if look.strong:
        return True
    if heading.level > current.level:
        return False  # a part of the answer: `<h3 id="git">Git</h3>` under `<h2>1.Git…</h2>`
    if heading.raw:
        return True
    if look.number is None:
        return False
    # a Markdown numbered heading: in a file of Markdown questions it is the next one; under a
    # raw question, only if it carries the questions' numbering on (`### 1.` under
    # `<h3>40.</h3>` is a part), not the numbering of the answer's parts (`### 1.`, `### 2.`)
    if not current.raw:
        return True
    return (current_look.number is not None and look.number == current_look.number + 1
            and look.number - 1 not in numbered_parts)


def _nesting_keys(doc: Doc, toc: list[TocEntry]) -> set[str]:
    """Keys of the TOC entries that list entries under them (the next entry is indented more)."""
    keys: set[str] = set()
    for entry, following in zip(toc, toc[1:]):
        if _indent(doc.lines[following.line - 1]) > _indent(doc.lines[entry.line - 1]):
            keys |= entry_keys(entry)
    return keys


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _looks(doc: Doc, toc: list[TocEntry]) -> list[_Look]:
    headings = doc.headings
    named = _toc_named(headings, toc)
    looks = []
    for k, heading in enumerate(headings):
        stop = headings[k + 1].line if k + 1 < len(headings) else len(doc.lines)
        body = any(doc.lines[n].strip() for n in range(heading.body_start, stop))
        asked = ASKED.match(plain_text(heading.text)) is not None
        looks.append(_Look(named[k] or asked, _number(heading.text), body))
    return looks


def _number(text: str) -> int | None:
    plain = plain_text(text)
    found = ASKED.match(plain) or _NUMBER.match(plain)
    return int(found.group(1)) if found else None


def _toc_named(headings: list[Heading], toc: list[TocEntry]) -> list[bool]:
    """Which headings an entry of the table of contents names: each entry names one heading,
    raw headings first (the knowledge base's own form), then the others in order."""
    toc_keys: dict[str, int] = {}
    for n, entry in enumerate(toc):
        for key in entry_keys(entry):
            toc_keys.setdefault(key, n)
    named = [False] * len(headings)
    claimed: set[int] = set()
    for raw_first in (True, False):
        for k, heading in enumerate(headings):
            if heading.is_toc or heading.raw != raw_first or not toc_keys:
                continue
            hits = {toc_keys[key] for key in heading_keys(heading) if key in toc_keys} - claimed
            if hits:
                named[k] = True
                claimed |= hits
    return named


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
    """The grouping headings in force: a heading replaces those of its level or deeper."""

    # (level, whether its questions sit below it, title)
    open: list[tuple[int, bool, str]] = field(default_factory=list)

    def enter(self, heading: Heading, parent: bool = False) -> None:
        title = question_title(plain_text(heading.text))
        if as_tag(title):
            while self.open and self.open[-1][0] >= heading.level:
                self.open.pop()
            self.open.append((heading.level, parent, title))

    def leave(self, question: Heading) -> None:
        """A question at the level of a group over deeper questions, or above it, ends it (a
        chapter at the questions' own level lasts to the next chapter)."""
        while self.open and self.open[-1][1] and self.open[-1][0] >= question.level:
            self.open.pop()

    def enter_all(self, headings: list[Heading]) -> None:
        for heading in headings:
            self.enter(heading)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(as_tag(title) for *_, title in self.open)

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(title for *_, title in self.open)


def _kb_place(path: Path, root: Path) -> tuple[str, tuple[str, ...]]:
    """The section (topic folder) and deck (section, …folders, file stem) of a file."""
    root_name = Path(os.path.abspath(root)).name
    try:
        folders = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).parts[:-1]
    except ValueError:
        folders = ()
    section = folders[0] if folders else root_name
    return section, (section, *folders[1:], Path(path).stem)

