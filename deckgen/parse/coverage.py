"""Coverage: a file's table of contents against the questions found."""
from __future__ import annotations

from deckgen.ids import normalize_key
from deckgen.model import WARNING, Diagnostic, SourceFile
from deckgen.parse.toc import entry_keys, loose, question_keys


def coverage(file: SourceFile) -> list[Diagnostic]:
    """Differences between a file's table of contents and its questions, as warnings."""
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
    } - {""}
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
    for n, question in enumerate(file.questions):
        if n not in covered:
            message = f"question not in the table of contents: {question.title}"
            diagnostics.append(Diagnostic(file.path, question.line, WARNING, message))
    return sorted(diagnostics, key=lambda d: d.line)

