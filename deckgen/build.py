"""The build pipeline: settings → source files → questions → notes → packages and lock file.

Each step is a function of the one before; the CLI only wires a Settings in and prints the
BuildReport that comes out. Nothing is written unless every step succeeded.
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import html
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deckgen import code_fingerprint
from deckgen.config import Settings
from deckgen.ids import (
    REMOVED_TAG,
    Identity,
    Lock,
    PlannedNote,
    Settlement,
    content_hash,
    guid_for_key,
    previous_key,
    resolve_identities,
    settle,
)
from deckgen.model import WARNING, CodeBlock, Corpus, Diagnostic, MediaFile, Question

if TYPE_CHECKING:  # the rendering stack is imported only when a build has work to do
    from deckgen.load import Progress, RenderedQuestion


@dataclass
class SectionReport:
    name: str
    cards: int = 0
    code_notes: Counter = field(default_factory=Counter)  # by run status
    images: int = 0
    remote_images: int = 0
    warnings: int = 0
    changes: Counter = field(default_factory=Counter)  # added / updated / renamed / removed / unchanged
    code_dropped: Counter = field(default_factory=Counter)  # blocks kept off code notes, by reason


@dataclass
class BuildReport:
    sections: list[SectionReport] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    packages: list[Path] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # renamed / moved / removed, a line each
    up_to_date: bool = False

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


@dataclass
class Planned:
    """Step 2's result: every note of the build, before times are given."""

    notes: list[PlannedNote]
    media: dict[str, dict[str, MediaFile]]  # section → packed name → file
    identities: list[Identity]
    diagnostics: list[Diagnostic]
    sections: dict[str, SectionReport]


# Step 1, source files → questions and their HTML, is deckgen.load's.

# --- Step 2: questions → planned notes (identify, run the code) ------------------------------------


def plan_notes(corpus: Corpus, rendered: Sequence[RenderedQuestion], lock: Lock,
               settings: Settings) -> Planned:
    """Every note of the build, from the questions, their HTML, and what their code printed."""
    from deckgen.quiz import NOTHING, distinct_labels
    from deckgen.run import Cell, CodeRunner

    questions = corpus.questions
    identities, diagnostics = resolve_identities(questions, lock)
    runner = CodeRunner(
        cache_dir=settings.cache_dir / "run",
        timeout=settings.timeout,
        memory_mb=settings.memory_mb,
        enabled=settings.run_code,
    )
    # A question's blocks run as one notebook: in order, in one folder (deckgen.run).
    notebooks = [[Cell(c.block.code, c.block.language, c.block.line) for c in html_of.code]
                 for html_of in rendered]
    results_of = iter(runner.run_notebooks(notebooks))

    plan = Planned([], {}, identities, diagnostics, {})
    code_notes: list[int] = []  # where in plan.notes, for the first fields made unique at the end
    for question, identity, html_of in zip(questions, identities, rendered):
        report = plan.sections.setdefault(question.section, SectionReport(question.section))
        answer = html_of.answer
        diagnostics.extend(answer.diagnostics)
        plan.media.setdefault(question.section, {}).update({m.name: m for m in answer.media})
        report.images += len(answer.media)
        report.remote_images += answer.remote_images
        report.cards += 1
        report.code_dropped.update(html_of.dropped)
        title = html_of.title
        deck = "::".join(part.replace("::", ":") for part in (settings.root, *question.deck))
        # Every field is HTML a card shows: text from headings and file names is escaped.
        crumb = html.escape(" › ".join(question.deck))
        source = html.escape(source_label(question, settings.sources))
        tags = note_tags(question)
        plan.notes.append(PlannedNote(
            identity.key, previous_key(identity.key, lock, identity.renamed_from), "qa",
            identity.guid, deck, (title, answer.html, crumb, source), tags, question.section,
            question.title,
        ))
        cards, results = html_of.code, next(results_of)
        labels = distinct_labels([c.front_code for c in cards])
        numbered = _code_note_numbers(question)
        for card, result, label in zip(cards, results, labels):
            back = code_back(card, result)
            if back is None:  # nothing to check oneself against: the Q&A card shows it
                report.code_dropped[NOTHING] += 1
                continue
            if back.mismatch:
                diagnostics.append(mismatch_diagnostic(question, card.block))
            report.code_notes[result.status] += 1
            plan.media[question.section].update({m.name: m for m in card.media})
            index = numbered[_block_position(question, card.block)]
            key = f"{identity.key}::code{index}"
            prior = previous_key(key, lock, identity.renamed_from, f"::code{index}")
            guid = _locked_guid(lock, prior) or guid_for_key(key)
            fields = (
                f'{title}<span class="which"> · {html.escape(label, quote=False)}</span>',
                card.front,
                card.full if card.full != card.front else "",  # the comments the front left out
                html.escape(card.block.language),
                back.output,
                result.status,
                html.escape(result.reason, quote=False),
                card.explanation,  # the ExitCode field carries the explanation (notetypes.py)
                back.claimed,
                back.check,
                crumb,
                f"{source.rsplit(':', 1)[0]}:{card.block.line}",
            )
            code_notes.append(len(plan.notes))
            plan.notes.append(PlannedNote(key, prior, "code", guid, deck, fields, tags,
                                          question.section, question.title))
    _unique_first_fields(plan.notes, code_notes)
    return plan


@dataclass(frozen=True)
class CodeBack:
    """What a code note's back shows besides the article's explanation."""

    output: str  # HTML: what the code printed, an exception as its line with the traceback folded
    claimed: str  # the article's output, escaped, when it is worth showing: not run, or different
    check: str  # how the article's output compares with the real one ("" when it shows none)
    mismatch: bool


def code_back(card, result) -> CodeBack | None:  # noqa: ANN001 - CodeCard, RunResult
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


def _code_note_numbers(question: Question) -> dict[int, int]:
    """Position of a block in the answer → the number in its note's key: its place among the
    blocks that were code notes before notes were picked by content (#10), so a block keeps
    the note (and GUID) it had. Identity by content is deckgen.ids' to decide."""
    from deckgen.render import PLAIN_LANGUAGES

    numbered, n = {}, 0
    for position, block in enumerate(question.code_blocks):
        if block.language not in PLAIN_LANGUAGES | {"mermaid"} and block.code.strip():
            n += 1
            numbered[position] = n
        else:
            numbered[position] = 0
    return numbered


def _block_position(question: Question, block: CodeBlock) -> int:
    return next(i for i, b in enumerate(question.code_blocks) if b.line == block.line)


def _unique_first_fields(notes: list[PlannedNote], indices: Sequence[int]) -> None:
    """Anki's Find Duplicates pairs notes of a type by their first field (HTML stripped): a
    label the note's code, then its deck, then a number set each code note's apart."""
    def text(fields: tuple[str, ...]) -> str:
        return html.unescape(re.sub(r"<[^>]*>", "", fields[0]))

    seen = Counter(text(notes[i].fields) for i in indices)
    for i in indices:
        note = notes[i]
        if seen[text(note.fields)] > 1:
            first = note.fields[0].replace("</span>", f" · {note.fields[10]}</span>", 1)
            notes[i] = dataclasses.replace(note, fields=(first, *note.fields[1:]))
    taken: Counter = Counter()
    for i in indices:
        note = notes[i]
        plain = text(note.fields)
        taken[plain] += 1
        if taken[plain] > 1:
            first = note.fields[0].replace("</span>", f" ({taken[plain]})</span>", 1)
            notes[i] = dataclasses.replace(note, fields=(first, *note.fields[1:]))


def note_tags(question: Question) -> tuple[str, ...]:
    """Anki tags are separated by spaces, so a tag may hold none."""
    return tuple(dict.fromkeys(re.sub(r"\s+", "_", t.strip()) for t in question.tags if t.strip()))


def source_label(question: Question, sources: Sequence[Path]) -> str:
    """`file:line` relative to the source folder's parent: the same on every machine."""
    return f"{_relative_source(question.path, tuple(sources))}:{question.line}"


@functools.lru_cache(maxsize=4096)
def _relative_source(path: Path, sources: tuple[Path, ...]) -> str:
    resolved = path.resolve()
    for source in sources:
        base = source.resolve() if source.is_dir() else source.resolve().parent
        if resolved.is_relative_to(base):
            return resolved.relative_to(base.parent).as_posix()
    return resolved.name


def mismatch_diagnostic(question: Question, block: CodeBlock) -> Diagnostic:
    return Diagnostic(
        question.path, block.claimed_output_line or block.line, WARNING,
        f"claimed output differs from what the code at line {block.line} really prints",
    )


def _locked_guid(lock: Lock, key: str | None) -> str | None:
    if key is None:
        return None
    entry = lock.notes.get(key) or lock.removed.get(key)
    return entry.guid if entry else None


# --- Step 3: planned notes → packages and lock file ------------------------------------------------


def note_types(settings: Settings):  # noqa: ANN201 - dict[str, genanki.Model]
    from deckgen.notetypes import NOTE_TYPES, default_templates_dir, load_model
    from deckgen.render import code_css

    folder = settings.templates or default_templates_dir()
    css = code_css()
    return {spec.key: load_model(spec, folder, css) for spec in NOTE_TYPES}


def model_hash(model) -> str:  # noqa: ANN001 - genanki.Model
    return content_hash(model.name, model.fields, model.templates, model.css)


def write_outputs(settled: Settlement, plan: Planned, models: dict, settings: Settings) -> list[Path]:
    """One package per section and one with every section; then the lock file."""
    from deckgen.package import NoteRecord, NoteType, PackageJob, write_packages

    types = {k: NoteType(m, settled.lock.note_types[k].mod) for k, m in models.items()}
    by_section: dict[str, list[NoteRecord]] = {}
    for due, note in enumerate(settled.notes):
        record = NoteRecord(note.note_type, note.guid, note.deck, note.fields, note.tags, note.mod, due)
        by_section.setdefault(note.section, []).append(record)
    jobs: list[PackageJob] = []
    everything: list[NoteRecord] = []
    all_media: dict[str, MediaFile] = {}
    for section, records in by_section.items():
        media = dict(sorted(plan.media.get(section, {}).items()))
        jobs.append((settings.output / f"{package_name(section)}.apkg", records, list(media.values())))
        everything.extend(records)
        all_media.update(media)
    combined = settings.output / f"{package_name(settings.root)}.apkg"
    if combined not in [path for path, _, _ in jobs]:
        jobs.append((combined, everything, [all_media[n] for n in sorted(all_media)]))
    write_packages(jobs, types)
    packages = [path for path, _, _ in jobs]
    _write_atomic(settings.lock, settled.lock.dumps())
    return packages


def package_name(name: str) -> str:
    """A file name for a deck: path separators and characters file systems refuse are replaced."""
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(". ")
    return cleaned or "deck"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- The whole build --------------------------------------------------------------------------------


def build(settings: Settings, *, progress: Progress | None = None, write: bool = True) -> BuildReport:
    """Run every step; write packages only when no error was found (`write=False`: check only).

    A rebuild whose inputs are byte-for-byte those of the last successful build does no work:
    its packages are already what this build would write.
    """
    fingerprint = input_fingerprint(settings)
    if write:
        previous = _load_previous(settings, fingerprint)
        if previous is not None:
            return previous
    from deckgen.load import load_sources
    from deckgen.package import PreviousPackage

    report = BuildReport()
    lock = Lock.load(settings.lock)  # first: a broken lock file should stop the build early
    corpus, rendered = load_sources(settings.sources, settings.cache_dir, progress,
                                    meanwhile=_import_later_steps)
    plan = plan_notes(corpus, rendered, lock, settings)
    report.diagnostics = _sorted_unique(corpus.diagnostics + plan.diagnostics)
    report.sections = list(plan.sections.values())
    _count_warnings(report.diagnostics, corpus, plan.sections)
    if report.errors or not write:
        return report
    models = note_types(settings)
    # What removed questions last shipped as: the previous package with every section.
    previous = PreviousPackage(settings.output / f"{package_name(settings.root)}.apkg")
    settled = settle(plan.notes, lock, previous,
                     {k: model_hash(m) for k, m in models.items()}, int(time.time()))
    for note in settled.notes:
        if note.note_type == "qa":
            plan.sections.setdefault(note.section, SectionReport(note.section)).changes[note.change] += 1
    report.sections = list(plan.sections.values())
    report.events = _events(corpus.questions, plan.identities, lock, settled)
    report.packages = write_outputs(settled, plan, models, settings)
    _save_previous(settings, input_fingerprint(settings), report)
    return report


def _import_later_steps() -> None:
    """Import what the steps after rendering need (genanki is slow to import), while the
    worker processes render."""
    import deckgen.notetypes
    import deckgen.package
    import deckgen.run  # noqa: F401


def input_fingerprint(settings: Settings) -> str:
    """A hash of everything a build reads: sources and the files beside them, templates, the lock
    file, the settings, and the code that renders."""
    from importlib.metadata import version

    from deckgen.notetypes import default_templates_dir

    digest = hashlib.sha256()
    digest.update(repr(settings).encode())
    for package in ("genanki", "markdown-it-py", "mdit-py-plugins", "pygments", "nh3"):
        digest.update(f"{package}={version(package)}".encode())
    digest.update(f"{code_fingerprint()} {sys.executable} {sys.version}".encode())
    # Sources and what lies beside them: size and time tell a change without reading (the
    # rendering step keys its cache by content, so a file merely touched costs little).
    for folder in settings.sources:
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        for path in files:
            if settings.output not in path.parents:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    templates = settings.templates or default_templates_dir()
    for path in sorted(p for p in templates.rglob("*") if p.is_file()):
        digest.update(path.read_bytes())
    if settings.lock.exists():
        digest.update(settings.lock.read_bytes())
    return digest.hexdigest()


def _load_previous(settings: Settings, fingerprint: str) -> BuildReport | None:
    try:
        data = json.loads((settings.cache_dir / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != fingerprint:
        return None
    packages = [Path(p) for p in data["packages"]]
    if not all(p.is_file() for p in packages):
        return None
    return BuildReport(
        sections=[SectionReport(s["name"], s["cards"], Counter(s["code_notes"]), s["images"],
                                s["remote_images"], s["warnings"], Counter({"unchanged": s["cards"]}),
                                Counter(s.get("code_dropped", {})))
                  for s in data["sections"]],
        diagnostics=[Diagnostic(Path(d[0]), d[1], d[2], d[3]) for d in data["diagnostics"]],
        packages=packages,
        up_to_date=True,
    )


def _save_previous(settings: Settings, fingerprint: str, report: BuildReport) -> None:
    data = {
        "fingerprint": fingerprint,
        "packages": [str(p) for p in report.packages],
        "sections": [{"name": s.name, "cards": s.cards, "code_notes": dict(s.code_notes),
                      "code_dropped": dict(s.code_dropped),
                      "images": s.images, "remote_images": s.remote_images, "warnings": s.warnings}
                     for s in report.sections],
        "diagnostics": [[str(d.path), d.line, d.level, d.message] for d in report.diagnostics],
    }
    _write_atomic(settings.cache_dir / "build.json", json.dumps(data, ensure_ascii=False))


def _events(questions: Sequence[Question], identities: Sequence[Identity], lock: Lock,
            settled: Settlement) -> list[str]:
    """A line for each question renamed, moved or removed since the last build."""
    events = []
    for question, identity in zip(questions, identities):
        if identity.renamed_from:
            old = lock.notes[identity.renamed_from]
            events.append(f"renamed: '{old.title}' → '{question.title}' ({question.section}): "
                          "the same note, updated")
        if identity.moved_from:
            events.append(f"moved: '{question.title}' from {identity.moved_from} to {question.section}: "
                          "Anki keeps its card in the old deck (Browse → Change Deck moves it)")
    for note in settled.notes:
        if note.change == "removed" and note.note_type == "qa":
            events.append(f"removed: '{note.title}' ({note.section}): shipped tagged {REMOVED_TAG}")
    for old in settled.lost:
        if old.note_type == "qa":
            events.append(f"removed: '{old.title}' ({old.section}): it is not in the previous build "
                          "either, so it cannot be shipped tagged; find it in Anki and delete it by hand")
    return events


def _sorted_unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(dict.fromkeys(diagnostics), key=lambda d: (str(d.path), d.line, d.level, d.message))


def _count_warnings(diagnostics: Sequence[Diagnostic], corpus: Corpus,
                    sections: dict[str, SectionReport]) -> None:
    """Each warning counts for the section of the question it falls in (one above the first
    question, in a table of contents say, for that question's section)."""
    starts: dict[Path, list[tuple[int, str]]] = {}
    for question in corpus.questions:
        starts.setdefault(question.path, []).append((question.line, question.section))
    for lines in starts.values():
        lines.sort()
    for diagnostic in diagnostics:
        lines = starts.get(diagnostic.path, [])
        index = max(bisect.bisect_right(lines, (diagnostic.line, "\uffff")) - 1, 0)
        if not diagnostic.is_error and lines and lines[index][1] in sections:
            sections[lines[index][1]].warnings += 1
