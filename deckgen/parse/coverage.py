"""Coverage: what a file gives against what it promises (its table of contents, any card at all)."""
from __future__ import annotations

from collections.abc import Collection

from deckgen.ids import normalize_key
from deckgen.model import ERROR, WARNING, Diagnostic, SourceFile
from deckgen.parse.toc import entry_keys, loose, question_keys


def coverage(file: SourceFile, accounted: Collection[str] = ()) -> list[Diagnostic]:
    """Differences between a file's table of contents and its questions, as warnings.
    `accounted`: keys of the headings that are no question but part of an answer or a group
    (the parser's reading), which the TOC may name."""
    if not file.toc:
        return []
    by_key: dict[str, list[int]] = {}
    for n, question in enumerate(file.questions):
        for key in question_keys(question):
            by_key.setdefault(key, []).append(n)
    # TOC lines that name a section or a grouping heading are not missing questions
    group_keys = {
        loose(normalize_key(name))
        for q in file.questions
        for name in (q.section, *q.tags)
    } | set(accounted)
    group_keys.discard("")
    covered: set[int] = set()
    diagnostics: list[Diagnostic] = []
    for entry in file.toc:
        keys = entry_keys(entry)
        hits = {n for key in keys for n in by_key.get(key, ())}
        if hits:
            covered |= hits
        elif not keys & group_keys:
            message = f"TOC entry without a question: {entry.title}"
            diagnostics.append(Diagnostic(file.path, entry.line, WARNING, message))
    # A TOC that lists a group's title and none of its questions lists the group as a whole
    named = {key for entry in file.toc for key in entry_keys(entry)}
    listed_groups = {q.context for n, q in enumerate(file.questions) if n in covered}
    for n, question in enumerate(file.questions):
        by_group = question.context not in listed_groups and any(
            loose(normalize_key(title)) in named for title in question.context)
        if n not in covered and not by_group:
            message = f"question not in the table of contents: {question.title}"
            diagnostics.append(Diagnostic(file.path, question.line, WARNING, message))
    return sorted(diagnostics, key=lambda d: d.line)


def silent_file(file: SourceFile, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A warning for a file that gives no card while nothing said so yet (an error, or a
    heading's own "no card"): a file never gives zero cards silently."""
    if file.questions or any(d.level == ERROR or "no card" in d.message for d in diagnostics):
        return []
    return [Diagnostic(file.path, 0, WARNING, "no question found: this file gives no cards")]
