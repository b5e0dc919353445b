"""A question's answer cut from its file's lines, and the Question made of it."""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from deckgen.ids import normalize_key
from deckgen.model import CodeBlock, Question
from deckgen.parse.structure import Doc, Heading


@dataclass
class Answer:
    text: str
    line: int  # 0-based
    end: int


def cut_answer(doc: Doc, start: int, stop: int, inner: Sequence[Heading]) -> Answer | None:
    """Lines [start, stop) without blank lines at either end; None when nothing is left.

    Raw headings inside the answer (its parts) were blanked for the parse: they come back as
    one-line Markdown headings, which need no blank line after them (where text glued after
    the closing tag holds the line, the text is kept instead)."""
    restored = {
        h.line: f"{'#' * h.level} {h.text}"
        for h in inner
        if h.raw and start <= h.line < stop and not doc.lines[h.line].strip()
    }

    def line(n: int) -> str:
        return restored.get(n, doc.lines[n])

    while start < stop and not line(start).strip():
        start += 1
    while stop > start and not line(stop - 1).strip():
        stop -= 1
    if start >= stop:
        return None
    return Answer("\n".join(line(n) for n in range(start, stop)), start, stop)


def make_question(
    doc: Doc,
    heading: Heading,
    title: str,
    answer: Answer,
    *,
    section: str,
    deck: tuple[str, ...],
    tags: tuple[str, ...],
) -> Question:
    explicit = heading.pinned_id or heading.html_id
    key = normalize_key(explicit, is_id=True) if explicit else ""
    return Question(
        title=title,
        answer=answer.text,
        path=doc.path,
        line=heading.line + 1,
        answer_line=answer.line + 1,
        section=section,
        deck=deck,
        key=key or normalize_key(title),
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        explicit_id=explicit,
        pinned=heading.pinned_id is not None,
        code_blocks=_code_blocks(doc, answer.line, answer.end),
    )


def _code_blocks(doc: Doc, start: int, stop: int) -> list[CodeBlock]:
    lo, hi = bisect.bisect_left(doc.fence_lines, start), bisect.bisect_left(doc.fence_lines, stop)
    blocks: list[CodeBlock] = []
    by_index: dict[int, CodeBlock] = {}
    for fence in doc.fences[lo:hi]:
        code = fence.code
        if fence.end > stop:  # an unclosed fence: the answer ends it, as it will on the card
            kept = code.split("\n")[:-1][: stop - fence.line - 1]
            code = "".join(line + "\n" for line in kept)
        owner = by_index.get(fence.output_of) if fence.output_of is not None else None
        if owner is not None:
            owner.claimed_output, owner.claimed_output_line = code, fence.line + 1
            continue
        block = CodeBlock(fence.language, code, fence.line + 1)
        by_index[fence.index] = block
        blocks.append(block)
    return blocks

