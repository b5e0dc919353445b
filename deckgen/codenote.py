"""What a code note shows: its fields, its back, and a first field of its own.

A code note's front asks what its block does or prints; its back answers with what the code
really printed and the article's own explanation of it (deckgen.quiz finds that explanation).
The note type's fields are fixed (deckgen.notetypes): this module says what each one holds.
"""
from __future__ import annotations

import dataclasses
import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deckgen.notetypes import CODE_FIELDS

if TYPE_CHECKING:
    from deckgen.ids import PlannedNote
    from deckgen.load import CodeCard
    from deckgen.run import RunResult

_SECTION = CODE_FIELDS.index("Section")


@dataclass(frozen=True)
class CodeBack:
    """What a code note's back shows besides the article's explanation."""

    output: str  # HTML: what the code printed, an exception as its line with the traceback folded
    claimed: str  # the article's output, escaped, when it is worth showing: not run, or different
    check: str  # how the article's output compares with the real one ("" when it shows none)
    mismatch: bool


def back(card: CodeCard, result: RunResult) -> CodeBack | None:
    """The back of a code note, or None when it would answer nothing.

    The article's claimed output is shown once: as the real output when they agree.
    """
    from deckgen.run import FAILED, RAN, outputs_match

    output = _output_html(result.output, result.status == FAILED)
    claimed, check, mismatch = "", "", False
    written = card.block.claimed_output
    if written is not None:
        if result.status not in (RAN, FAILED):
            claimed, check = html.escape(written, quote=False), "the article's output; not run here"
        elif outputs_match(written, result.output):
            check = "as the article shows"
        else:
            claimed, check, mismatch = (html.escape(written, quote=False),
                                        "differs from the real output", True)
    if not (card.explanation or card.comments or output or claimed):
        return None
    return CodeBack(output, claimed, check, mismatch)


_TRACEBACK = "Traceback (most recent call last):"


def _output_html(output: str, failed: bool) -> str:
    """The output as the card shows it; an exception is a result like any other: its line
    stays in sight, the traceback above it folds away."""
    if not output.strip():
        return ""
    start = output.find(_TRACEBACK) if failed else -1
    if start < 0:
        return f'<pre class="output">{html.escape(output, quote=False)}</pre>'
    printed, trace = output[:start], output[start:].rstrip("\n").split("\n")
    shown = printed + trace[-1] + "\n"
    return (f'<pre class="output">{html.escape(shown, quote=False)}</pre>'
            f'<details class="traceback"><summary>Traceback</summary>'
            f'<pre>{html.escape(chr(10).join(trace[:-1]), quote=False)}</pre></details>')


def unique_first_fields(notes: list[PlannedNote], indices: Sequence[int]) -> None:
    """Anki's Find Duplicates pairs notes of a type by their first field (HTML stripped): a
    label the note's code, then its deck, then a number set each code note's apart."""
    def text(fields: tuple[str, ...]) -> str:
        return html.unescape(re.sub(r"<[^>]*>", "", fields[0]))

    seen = Counter(text(notes[i].fields) for i in indices)
    for i in indices:
        note = notes[i]
        if seen[text(note.fields)] > 1:
            first = note.fields[0].replace("</span>", f" · {note.fields[_SECTION]}</span>", 1)
            notes[i] = dataclasses.replace(note, fields=(first, *note.fields[1:]))
    taken: Counter = Counter()
    for i in indices:
        note = notes[i]
        plain = text(note.fields)
        taken[plain] += 1
        if taken[plain] > 1:
            first = note.fields[0].replace("</span>", f" ({taken[plain]})</span>", 1)
            notes[i] = dataclasses.replace(note, fields=(first, *note.fields[1:]))


def fields(title: str, label: str, card: CodeCard, result: RunResult, shown: CodeBack,
           crumb: str, source: str) -> tuple[str, ...]:
    """The note's fields, in CODE_FIELDS' order. Their names are fixed since the first release
    (renaming one would make Anki create a second note type), so some hold what their name no
    longer says: ExitCode carries the article's explanation, RawCode the code with its comments."""
    return (
        f'{title}<span class="which"> · {html.escape(label, quote=False)}</span>',
        card.front,
        card.full if card.full != card.front else "",  # the comments the front left out
        html.escape(card.block.language),
        shown.output,
        result.status,
        html.escape(result.reason, quote=False),
        card.explanation,
        shown.claimed,
        shown.check,
        crumb,
        source,
    )
