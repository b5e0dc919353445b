"""The build pipeline: settings → source files → questions → notes → packages and lock file.

Each step is a function of the one before; the CLI only wires a Settings in and prints the
BuildReport that comes out. Nothing is written unless every step succeeded.
"""
from __future__ import annotations

import bisect
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
    Identity,
    IdentityResolver,
    Lock,
    LockedNote,
    PlannedNote,
    SettledNote,
    Settlement,
    content_hash,
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
    changes: Counter = field(default_factory=Counter)  # of questions: added / updated / … / unchanged
    code_changes: Counter = field(default_factory=Counter)  # of code notes, likewise


@dataclass(frozen=True)
class FailedExample:
    where: str  # file:line of the code block
    status: str  # failed / timed out
    reason: str


@dataclass
class BuildReport:
    sections: list[SectionReport] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    packages: list[Path] = field(default_factory=list)  # every package of the build
    written: list[Path] = field(default_factory=list)  # those this build wrote (the others were as they are)
    notes: list[SettledNote] = field(default_factory=list)  # every note and what happened to it
    lost: list[LockedNote] = field(default_factory=list)  # removed, and not shippable (see Settlement)
    failed: list[FailedExample] = field(default_factory=list)
    first_build: bool = False  # no lock file to compare with
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
    failed: list[FailedExample] = field(default_factory=list)


# Step 1, source files → questions and their HTML, is deckgen.load's.

# --- Step 2: questions → planned notes (identify, run the code) ------------------------------------


def plan_notes(corpus: Corpus, rendered: Sequence[RenderedQuestion], lock: Lock,
               settings: Settings) -> Planned:
    """Every note of the build, from the questions, their HTML, and what their code printed."""
    from deckgen.load import quiz_blocks
    from deckgen.notetypes import CODE_FIELDS, QA_FIELDS
    from deckgen.run import FAILED, TIMED_OUT, CodeRunner

    questions = corpus.questions
    resolver = IdentityResolver(lock)
    identities, diagnostics = resolver.questions(questions)
    runner = CodeRunner(
        cache_dir=settings.cache_dir / "run",
        timeout=settings.timeout,
        memory_mb=settings.memory_mb,
        enabled=settings.run_code,
    )
    quizzed = [quiz_blocks(q) for q in questions]
    results = iter(runner.run_many([(b.code, b.language) for blocks in quizzed for b in blocks]))

    plan = Planned([], {}, identities, diagnostics, {})
    for question, identity, blocks, html_of in zip(questions, identities, quizzed, rendered):
        report = plan.sections.setdefault(question.section, SectionReport(question.section))
        answer = html_of.answer
        diagnostics.extend(answer.diagnostics)
        plan.media.setdefault(question.section, {}).update({m.name: m for m in answer.media})
        report.images += len(answer.media)
        report.remote_images += answer.remote_images
        report.cards += 1
        title = html_of.title
        deck = "::".join(part.replace("::", ":") for part in (settings.root, *question.deck))
        # Every field is HTML a card shows: text from headings and file names is escaped.
        crumb = html.escape(" › ".join(question.deck))
        where = source_label(question, settings.sources)
        source = html.escape(where)
        tags = note_tags(question)
        plan.notes.append(PlannedNote(
            identity.key, identity.previous, "qa", identity.guid, deck,
            (title, answer.html, crumb, source), tags, question.section, question.title,
            identity, where, navigation=QA_FIELDS.index("Source"),
        ))
        code_identities = resolver.code(identity, [block.code for block in blocks])
        for block, code_html, code_identity in zip(blocks, html_of.code, code_identities):
            result = next(results)
            report.code_notes[result.status] += 1
            code_where = f"{where.rsplit(':', 1)[0]}:{block.line}"
            if result.status in (FAILED, TIMED_OUT):
                plan.failed.append(FailedExample(code_where, result.status, result.reason))
            check, mismatch = _output_check(block, result)
            if mismatch:
                diagnostics.append(mismatch_diagnostic(question, block))
            fields = (
                title,
                code_html,
                html.escape(block.code, quote=False),
                html.escape(block.language),
                html.escape(result.output, quote=False),
                result.status,
                html.escape(result.reason, quote=False),
                "" if result.exit_code is None else str(result.exit_code),
                html.escape(block.claimed_output or "", quote=False),
                check,
                crumb,
                f"{source.rsplit(':', 1)[0]}:{block.line}",
            )
            plan.notes.append(PlannedNote(
                code_identity.key, code_identity.previous, "code", code_identity.guid, deck, fields,
                tags, question.section, question.title, code_identity, code_where,
                navigation=CODE_FIELDS.index("Source")))
    return plan


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


def _output_check(block: CodeBlock, result) -> tuple[str, bool]:  # noqa: ANN001 - RunResult
    from deckgen.run import outputs_match

    if block.claimed_output is None:
        return "", False
    if result.status not in ("ran", "failed"):
        return "not checked: the code was not run", False
    if outputs_match(block.claimed_output, result.output):
        return "matches the real output", False
    return "differs from the real output", True


# --- Step 3: planned notes → packages and lock file ------------------------------------------------


def note_types(settings: Settings):  # noqa: ANN201 - dict[str, genanki.Model]
    from deckgen.notetypes import NOTE_TYPES, default_templates_dir, load_model
    from deckgen.render import code_css

    folder = settings.templates or default_templates_dir()
    css = code_css()
    return {spec.key: load_model(spec, folder, css) for spec in NOTE_TYPES}


def model_hash(model) -> str:  # noqa: ANN001 - genanki.Model
    return content_hash(model.name, model.fields, model.templates, model.css)


def write_outputs(settled: Settlement, plan: Planned, models: dict,
                  settings: Settings) -> tuple[list[Path], list[Path]]:
    """One package per section and one with every section; then the lock file.

    Returns every package, and those written: one whose content is what it was is left alone.
    """
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
    digests = {str(path): _package_digest(records, media, types) for path, records, media in jobs}
    known = _read_json(settings.cache_dir / "packages.json")
    changed = [job for job in jobs if known.get(str(job[0])) != digests[str(job[0])] or not job[0].is_file()]
    write_packages(changed, types)
    _write_atomic(settings.lock, settled.lock.dumps())
    _write_atomic(settings.cache_dir / "packages.json", json.dumps(digests, ensure_ascii=False))
    return [path for path, _, _ in jobs], [path for path, _, _ in changed]


def _package_digest(records: Sequence, media: Sequence[MediaFile], types: dict) -> str:  # noqa: ANN001
    """What a package is made of: equal digests, byte-identical packages."""
    files = [(m.name, m.source.stat().st_size, m.source.stat().st_mtime_ns) for m in media]
    models = sorted((k, t.mod, model_hash(t.model)) for k, t in types.items())
    return content_hash([tuple(vars(r).values()) for r in records], files, models)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
    return _build(settings, progress, "build" if write else "check")


def status(settings: Settings, *, progress: Progress | None = None) -> BuildReport:
    """What the next build would do against the lock file, writing nothing (but caches)."""
    return _build(settings, progress, "status")


def _build(settings: Settings, progress: Progress | None, mode: str) -> BuildReport:
    from deckgen.load import load_sources
    from deckgen.package import PreviousPackage

    report = BuildReport()
    lock = Lock.load(settings.lock)  # first: a broken lock file should stop the build early
    corpus, rendered = load_sources(settings.sources, settings.cache_dir, progress,
                                    meanwhile=_import_later_steps)
    plan = plan_notes(corpus, rendered, lock, settings)
    report.diagnostics = _sorted_unique(corpus.diagnostics + plan.diagnostics)
    report.sections = list(plan.sections.values())
    report.failed = plan.failed
    _count_warnings(report.diagnostics, corpus, plan.sections)
    if report.errors or mode == "check":
        return report
    models = note_types(settings)
    # What removed questions last shipped as: the previous package with every section.
    previous = PreviousPackage(settings.output / f"{package_name(settings.root)}.apkg")
    settled = settle(plan.notes, lock, previous,
                     {k: model_hash(m) for k, m in models.items()}, int(time.time()))
    for note in settled.notes:
        if note.change == "still removed":
            continue
        section = plan.sections.setdefault(note.section, SectionReport(note.section))
        (section.changes if note.note_type == "qa" else section.code_changes)[note.change] += 1
    report.sections = list(plan.sections.values())
    report.notes, report.lost = settled.notes, settled.lost
    report.first_build = not lock.notes and not lock.removed
    if mode == "status":
        return report
    report.packages, report.written = write_outputs(settled, plan, models, settings)
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
                                Counter({"unchanged": sum(s["code_notes"].values())}))
                  for s in data["sections"]],
        failed=[FailedExample(*f) for f in data.get("failed", [])],
        diagnostics=[Diagnostic(Path(d[0]), d[1], d[2], d[3]) for d in data["diagnostics"]],
        packages=packages,
        up_to_date=True,
    )


def _save_previous(settings: Settings, fingerprint: str, report: BuildReport) -> None:
    data = {
        "fingerprint": fingerprint,
        "packages": [str(p) for p in report.packages],
        "sections": [{"name": s.name, "cards": s.cards, "code_notes": dict(s.code_notes),
                      "images": s.images, "remote_images": s.remote_images, "warnings": s.warnings}
                     for s in report.sections],
        "diagnostics": [[str(d.path), d.line, d.level, d.message] for d in report.diagnostics],
        "failed": [[f.where, f.status, f.reason] for f in report.failed],
    }
    _write_atomic(settings.cache_dir / "build.json", json.dumps(data, ensure_ascii=False))


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
