"""Markdown source files → the data model (`deckgen.model`), for both source layouts.

Two layouts, one parser:

- **article**: `# 章节` section headings, `## 【一】问题` question headings below them; the
  answer runs to the next heading of the question's level or shallower.
- **knowledge-base** (upstream WeThinkIn/Interview-for-Algorithm-Engineer): a `目录` table of
  contents, then one raw HTML heading `<hN id="…">33.问题</hN>` per question; the answer runs to
  the next question. Topic folder → section, file → subdeck.

The jobs, a module each: `files` (reading and finding source files), `structure` (one file's
block structure: headings, fences, front matter), `toc` (table of contents, heading keys, which
layout), `article` and `knowledge_base` (the two layouts' questions), `answers` (an answer's
lines → a Question), `coverage` (TOC against questions), `text` (heading text helpers). This
module wires them: a file → ParsedFile, files → Corpus.

Every answer keeps the file's line numbering (`answer_line + i` is the file
line of answer line `i`), so later stages can point at the right line.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it.token import Token

from deckgen.model import ERROR, Corpus, Diagnostic, Question, Section, SourceFile
from deckgen.parse.article import article_questions
from deckgen.parse.coverage import coverage, silent_file
from deckgen.parse.files import normalize_text, discover, read_source
from deckgen.parse.knowledge_base import knowledge_base_questions
from deckgen.parse.structure import Doc, fence_closed, read_structure
from deckgen.parse.toc import ARTICLE, KNOWLEDGE_BASE, detect_layout, parse_toc

__all__ = [
    "ARTICLE", "KNOWLEDGE_BASE", "Linter", "ParsedFile", "assemble", "coverage", "discover",
    "load_file", "parse_document", "parse_file", "parse_sources", "read_source",
]


def parse_sources(paths: Sequence[Path]) -> Corpus:
    """Every source file under `paths`, parsed; sections of the same name merged in order."""
    pairs, diagnostics = discover(paths)
    return assemble([load_file(root, path) for root, path in pairs], diagnostics)


def load_file(root: Path, path: Path, lint: Linter | None = None) -> ParsedFile:
    """One file read, parsed, checked against its table of contents (and linted, given a
    linter); its source is None when it cannot be read."""
    text, diagnostics = read_source(path)
    if text is None:
        return ParsedFile(None, diagnostics)
    try:
        parsed = parse_document(path, text, root=root, lint=lint)
    except Exception as exc:  # a parser bug must cost one file, not the whole build
        message = f"internal error while parsing (please report): {exc!r}"
        return ParsedFile(None, [*diagnostics, Diagnostic(path, 0, ERROR, message)])
    assert parsed.source is not None
    found = diagnostics + parsed.diagnostics + coverage(parsed.source, parsed.accounted)
    parsed.diagnostics = silent_file(parsed.source, found) + found
    return parsed


def assemble(loaded: Iterable[ParsedFile], diagnostics: list[Diagnostic]) -> Corpus:
    """Parsed files in order as one corpus: sections of the same name merged in order."""
    corpus = Corpus(diagnostics=list(diagnostics))
    sections: dict[str, Section] = {}
    for parsed in loaded:
        source = parsed.source
        corpus.diagnostics.extend(parsed.diagnostics)
        if source is None:
            continue
        corpus.files.append(source)
        for question in source.questions:
            section = sections.get(question.section)
            if section is None:
                section = sections[question.section] = Section(question.section)
                corpus.sections.append(section)
            section.questions.append(question)
        for description in source.descriptions:
            sections[description.section].descriptions.append(description)
    return corpus



Linter = Callable[[Path, str, list[Token]], list[Diagnostic]]  # (path, text, block tokens)


@dataclass
class ParsedFile:
    """One source file parsed: its questions and problems, and the parser's own output for
    each answer, so the renderer need not parse the text a second time."""

    source: SourceFile | None  # None when the file could not be read
    diagnostics: list[Diagnostic]
    # Per question: its answer's block tokens, lines counted from the answer's first line;
    # None where the file's parse does not give them exactly as the answer alone would.
    answer_tokens: list[list[Token] | None] = field(default_factory=list)
    # Keys of the headings that are no question but accounted for (parts, groups, empty ones)
    accounted: set[str] = field(default_factory=set)


def parse_file(
    path: Path, text: str, *, root: Path, lint: Linter | None = None
) -> tuple[SourceFile, list[Diagnostic]]:
    """The questions, table of contents and front matter of one source file; with a linter,
    its findings too, from the same parse."""
    parsed = parse_document(path, text, root=root, lint=lint)
    assert parsed.source is not None
    return parsed.source, parsed.diagnostics


def parse_document(path: Path, text: str, *, root: Path, lint: Linter | None = None) -> ParsedFile:
    """parse_file, keeping each answer's block tokens for the renderer."""
    text = normalize_text(text)
    doc = read_structure(path, text)
    if lint is not None:
        doc.diagnostics.extend(lint(path, text, doc.tokens))
    source, accounted = _source_file(doc, root)
    doc.diagnostics.sort(key=lambda d: d.line)
    return ParsedFile(source, doc.diagnostics, _answer_tokens(doc, source.questions), accounted)


def _source_file(doc: Doc, root: Path) -> tuple[SourceFile, set[str]]:
    toc = parse_toc(doc)
    layout = detect_layout(doc)
    source = SourceFile(path=doc.path, layout=layout, toc=toc, front_matter=doc.front_matter)
    accounted: set[str] = set()
    if layout == KNOWLEDGE_BASE:
        found = knowledge_base_questions(doc, toc, root)
        source.questions, accounted = found.questions, found.accounted
    else:
        source.questions, source.descriptions = article_questions(doc)
    return source, accounted


def _answer_tokens(doc: Doc, questions: Sequence[Question]) -> list[list[Token] | None]:
    """The file's block tokens of each answer, where they are what parsing the answer alone
    gives: its lines unchanged since the parse, no block crossing its edges, no reference
    definitions elsewhere in the file it might use, no unclosed fence running past its end."""
    if not doc.tokenized:
        return [None] * len(questions)
    blocks = []  # (index, first line, last line + 1 without trailing blank lines) of top-level blocks
    for index, token in enumerate(doc.tokens):
        if token.level == 0 and token.map:
            begin, end = token.map
            while end > begin + 1 and not doc.tokenized[end - 1].strip():
                end -= 1  # a list's range takes in the blank lines after it
            blocks.append((index, begin, end))
    begins = [begin for _, begin, _ in blocks]
    return [_slice(doc, blocks, begins, q) for q in questions]


def _slice(doc: Doc, blocks: list[tuple[int, int, int]], begins: list[int],
           question: Question) -> list[Token] | None:
    start = question.answer_line - 1
    stop = start + question.answer.count("\n") + 1
    if "\n".join(doc.tokenized[start:stop]) != question.answer:
        return None
    first = bisect.bisect_left(begins, start)
    last = bisect.bisect_left(begins, stop)
    if first > 0 and blocks[first - 1][2] > start or last > 0 and blocks[last - 1][2] > stop:
        return None  # a block crossing the answer's edge
    if first == last:
        return []
    end_index = blocks[last][0] if last < len(blocks) else len(doc.tokens)
    picked = doc.tokens[blocks[first][0]:end_index]
    if any(t.type == "fence" and not fence_closed(t, doc.tokenized) for t in picked):
        return None  # it runs on over the blank lines after the answer
    for token in picked:  # each token belongs to one answer: renumbered in place
        if token.map:
            token.map = [token.map[0] - start, min(token.map[1], stop) - start]
    return picked

