"""What a build did (or `deckgen status` says the next build would do), as lines a user reads.

Every note that Anki will add or update on import is named, at file:line, with what happened
to it; the per-section counts follow; the totals say what the import log will say.
"""
from __future__ import annotations

from collections import Counter

from deckgen.build import BuildReport
from deckgen.ids import REMOVED_TAG, SettledNote

# The order changes are listed and counted in.
KINDS = ("added", "updated", "renamed", "moved", "restored", "removed", "unchanged")
# What Anki's importer does with a note of each kind: new, updated, or nothing.
ANKI_ADDS = frozenset({"added"})
ANKI_UPDATES = frozenset({"updated", "renamed", "moved", "restored", "removed"})


def count(n: int, noun: str) -> str:
    """`1 code note`, `2 code notes`, `0 images`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def note_lines(report: BuildReport) -> list[str]:
    """A line per note that changes in Anki, in source order; none for a first build, where every
    note is new (the counts say so)."""
    lines: list[str] = []
    listed = [n for n in report.notes if n.change in ANKI_ADDS | ANKI_UPDATES]
    if report.first_build:
        listed = [n for n in listed if n.change not in ANKI_ADDS]
    for note in listed:
        lines.append(_note_line(note))
    for old in report.lost:
        what = f"'{old.title}'" if old.note_type == "qa" else f"code note of '{old.title}'"
        lines.append(f"removed   {what} ({old.section}): it is not in the previous build either, so it "
                     "cannot be shipped tagged; find it in Anki and delete it by hand")
    return lines


def _note_line(note: SettledNote) -> str:
    what = f"'{note.title}'" if note.note_type == "qa" else f"code note of '{note.title}'"
    kind = f"{note.change:<9} "
    if note.change == "renamed":
        return f"{kind}{note.where}  '{note.old_title}' → '{note.title}' (the same note: {note.why})"
    if note.change == "moved":
        return (f"{kind}{note.where}  {what} from {note.old_section} to {note.section}: Anki keeps its "
                "card in the old deck (Browse → Change Deck moves it)")
    if note.change == "removed":
        return f"{kind}{what} ({note.section}): shipped tagged {REMOVED_TAG}"
    if note.change == "restored":
        return f"{kind}{note.where}  {what}: back in the source, no longer tagged {REMOVED_TAG}"
    if note.change == "updated" and note.why:
        return f"{kind}{note.where}  {what} ({note.why})"
    return f"{kind}{note.where}  {what}"


def section_lines(report: BuildReport) -> list[str]:
    lines = []
    for s in report.sections:
        code = sum(s.code_notes.values())
        statuses = ", ".join(f"{n} {k}" for k, n in sorted(s.code_notes.items()) if n)
        code_part = count(code, "code note")
        details = [part for part in (_changes(s.code_changes), statuses) if part]
        if code and details:
            code_part += f" ({'; '.join(details)})"
        images = count(s.images, "image") + (f" ({s.remote_images} remote)" if s.remote_images else "")
        lines.append(f"{s.name}: {count(s.cards, 'question')} ({_changes(s.changes) or 'none'}); "
                     f"{code_part}; {images}; {count(s.warnings, 'warning')}")
        if s.code_dropped:
            dropped = ", ".join(f"{n} {k}" for k, n in sorted(s.code_dropped.items()))
            lines.append(f"  code blocks left on the Q&A card only: {dropped}")
    return lines


def _changes(counts: Counter) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in KINDS if counts.get(k))


def failure_lines(report: BuildReport) -> list[str]:
    return [f"{f.where}: example {f.status}: {f.reason}" for f in report.failed]


def import_line(report: BuildReport, *, would: bool = False) -> str:
    """What Anki's import log will say: how many notes it adds and how many it updates."""
    anki = "on import, Anki would" if would else "on import, Anki"
    kinds = Counter(n.change for n in report.notes)
    added = sum(kinds[k] for k in ANKI_ADDS)
    updated = sum(kinds[k] for k in ANKI_UPDATES)
    if not added and not updated:
        return f"{anki} {'change' if would else 'changes'} nothing: every note is as it was"
    parts = [f"{'add' if would else 'adds'} {count(added, 'note')}"] if added else []
    if updated:
        parts.append(f"{'update' if would else 'updates'} {count(updated, 'note')}")
    return f"{anki} {' and '.join(parts)}"
