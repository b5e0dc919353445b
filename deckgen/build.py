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
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deckgen import code_fingerprint, datafile
from deckgen.atomic import JOURNAL_NAME, Staging, finish_pending, write_atomic
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
    content_json,
    settle,
    text_hash,
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
    code_dropped: Counter = field(default_factory=Counter)  # blocks kept off code notes, by reason


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
    sandbox: str = ""  # how this build's examples were contained; "" when none ran

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
    descriptions: dict[str, str] = field(default_factory=dict)  # deck name → its description's HTML
    sandbox: str = ""  # sandbox.describe() when an example ran in this build


# Step 1, source files → questions and their HTML, is deckgen.load's.

def pack_media(corpus: Corpus, rendered: Sequence[RenderedQuestion], settings: Settings) -> list[Diagnostic]:
    """Remote images downloaded (once per URL, cached across builds) and packed like local ones;
    equal images under two names packed once. Warnings for what stays remote."""
    from deckgen.media import pack_remote, share_identical

    answers = [(q.path, r.answer) for q, r in zip(corpus.questions, rendered)]
    diagnostics = pack_remote(answers, settings.cache_dir, max_bytes=settings.max_image_mb << 20,
                              offline=settings.offline)
    share_identical(answer for _, answer in answers)
    return diagnostics


# --- Step 2: questions → planned notes (identify, run the code) ------------------------------------


def plan_notes(corpus: Corpus, rendered: Sequence[RenderedQuestion], lock: Lock,
               settings: Settings) -> Planned:
    """Every note of the build, from the questions, their HTML, and what their code printed."""
    from deckgen.load import render_descriptions
    from deckgen.quiz import NOTHING, distinct_labels
    from deckgen.run import FAILED, TIMED_OUT, Cell, CodeRunner
    from deckgen.sanitize import neutralize_tex, tex_problems
    from deckgen import codenote
    from deckgen.notetypes import CODE_FIELDS, QA_FIELDS

    questions = corpus.questions
    resolver = IdentityResolver(lock)
    identities, diagnostics = resolver.questions(questions)
    runner = CodeRunner(
        cache_dir=settings.cache_dir / "run",
        timeout=settings.timeout,
        memory_mb=settings.memory_mb,
        enabled=settings.run_code,
    )
    # A question's blocks run as one notebook: in order, in one folder (deckgen.run).
    notebooks = [[Cell(c.block.code, c.block.language, c.block.line) for c in html_of.code]
                 for html_of in rendered]
    ran = runner.run_notebooks(notebooks)
    results_of = iter(ran)

    plan = Planned([], {}, identities, diagnostics, {})
    warned_decks: set[tuple[str, ...]] = set()
    code_notes: list[int] = []  # where in plan.notes, for the first fields made unique at the end
    if any(not r.cached and (r.status != "skipped" or r.exit_code is not None)
           for results in ran for r in results):
        from deckgen import sandbox
        plan.sandbox = sandbox.describe()
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
        deck = deck_name((settings.root, *question.deck))
        # Every field is HTML a card shows: text from headings and file names is escaped.
        crumb = html.escape(" › ".join((*question.deck, *question.context)))
        where = source_label(question, settings.sources)
        source = html.escape(where)
        if question.deck not in warned_decks:
            warned_decks.add(question.deck)
            diagnostics.extend(Diagnostic(question.path, question.line, WARNING,
                                          f"TeX removed from the section name: {problem}")
                               for problem in tex_problems(crumb))
        tags = note_tags(question)
        plan.notes.append(PlannedNote(
            identity.key, identity.previous, "qa", identity.guid, deck,
            (title, answer.html, crumb, source), tags, question.section, question.title,
            identity, where, navigation=QA_FIELDS.index("Source"),
        ))
        cards, results = html_of.code, next(results_of)
        labels = distinct_labels([c.front_code for c in cards])
        kept = []
        for card, result, label in zip(cards, results, labels):
            back = codenote.back(card, result)
            if back is None:  # nothing to check oneself against: the Q&A card shows it
                report.code_dropped[NOTHING] += 1
            else:
                kept.append((card, result, label, back))
        code_identities = resolver.code(identity, [card.block.code for card, _, _, _ in kept])
        for (card, result, label, back), code_identity in zip(kept, code_identities):
            if back.mismatch:
                diagnostics.append(mismatch_diagnostic(question, card.block))
            report.code_notes[result.status] += 1
            plan.media[question.section].update({m.name: m for m in card.media})
            code_where = f"{where.rsplit(':', 1)[0]}:{card.block.line}"
            if result.status in (FAILED, TIMED_OUT):
                plan.failed.append(FailedExample(code_where, result.status, result.reason))
            fields = codenote.fields(title, label, card, result, back, crumb,
                                     f"{source.rsplit(':', 1)[0]}:{card.block.line}")
            code_notes.append(len(plan.notes))
            plan.notes.append(PlannedNote(
                code_identity.key, code_identity.previous, "code", code_identity.guid, deck, fields,
                tags, question.section, question.title, code_identity, code_where,
                navigation=CODE_FIELDS.index("Source")))
    codenote.unique_first_fields(plan.notes, code_notes)
    for section, description in render_descriptions(corpus, settings.sources).items():
        diagnostics.extend(description.diagnostics)
        plan.descriptions[deck_name((settings.root, section))] = description.html
    # Anki typesets math in every field a card shows: section names, file names, what an
    # example printed or raised. Answers and titles were cleaned when rendered; this pass covers
    # the rest, and costs little where a field holds no TeX command to remove.
    plan.notes = [dataclasses.replace(note, fields=tuple(neutralize_tex(f) for f in note.fields))
                  for note in plan.notes]
    return plan


def deck_name(parts: Sequence[str]) -> str:
    """The Anki deck of a path of names. Anki splits a name at `::` and trims each part, so a
    part's own colons must not touch a separator: folder `主题:` and file `:b` would give
    `主题::::b`, a deck `主题::blank::b`. A part left empty is no level of its own."""
    cleaned = (re.sub(":{2,}", ":", part).strip().strip(":").strip() for part in parts)
    return "::".join(part for part in cleaned if part)


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
    """One package per section and one with every section, then the lock file: all written
    first under temporary names, then moved into place together (deckgen.atomic), so a build
    that fails on the way changes none of them.

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
    names = package_names(settings.root, list(by_section))
    for section, records in by_section.items():
        media = dict(sorted(plan.media.get(section, {}).items()))
        jobs.append((settings.output / f"{names[section]}.apkg", records, list(media.values())))
        everything.extend(records)
        all_media.update(media)
    jobs.append((combined_package(settings), everything,
                 [all_media[n] for n in sorted(all_media)]))
    # Each note's JSON is made once: the package with every section holds every note again.
    notes_json = {id(record): content_json(tuple(vars(record).values())) for record in everything}
    digests = {str(path): _package_digest([notes_json[id(r)] for r in records], media, types,
                                          plan.descriptions)
               for path, records, media in jobs}
    known = _read_json(settings.cache_dir / "packages.json")
    changed = [job for job in jobs if known.get(str(job[0])) != digests[str(job[0])] or not job[0].is_file()]
    with Staging(settings.cache_dir / JOURNAL_NAME) as staging:
        staged = {path: staging.path(path) for path, _, _ in changed}
        write_packages(changed, types, staged, plan.descriptions)
        staging.write(settings.lock, settled.lock.dumps())
        staging.write(settings.cache_dir / "packages.json", json.dumps(digests, ensure_ascii=False))
        staging.commit()
    return [path for path, _, _ in jobs], [path for path, _, _ in changed]


def _package_digest(notes_json: Sequence[str], media: Sequence[MediaFile], types: dict,
                    descriptions: dict[str, str]) -> str:
    """What a package is made of: equal digests, byte-identical packages. `notes_json`: the
    content_json of each record's values. The digest is content_hash(records' values, files,
    models, descriptions), its JSON put together as content_json would write it."""
    files = [(m.name, m.source.stat().st_size, m.source.stat().st_mtime_ns) for m in media]
    models = sorted((k, t.mod, model_hash(t.model)) for k, t in types.items())
    rest = content_json((files, models, sorted(descriptions.items())))  # "[files, models, …]"
    return text_hash(f"[[{', '.join(notes_json)}], {rest[1:]}")


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


def combined_package(settings: Settings) -> Path:
    """The package with every section, named for the root deck."""
    return settings.output / f"{package_name(settings.root)}.apkg"


def package_names(root: str, sections: Sequence[str]) -> dict[str, str]:
    """A file name (without .apkg) for each section's package, none equal to another's or to
    the combined package's, whatever the sections are called: a clash is told apart by a
    number (`AI_ML-2`), in the order the sections come. File systems that ignore case are
    assumed, so names differing only in case clash too."""
    taken = {package_name(root).casefold()}
    names = {}
    for section in sections:
        base = package_name(section)
        name, number = base, 2
        while name.casefold() in taken:
            name, number = f"{base}-{number}", number + 1
        taken.add(name.casefold())
        names[section] = name
    return names


# --- The whole build --------------------------------------------------------------------------------


def build(settings: Settings, *, progress: Progress | None = None, write: bool = True) -> BuildReport:
    """Run every step; write packages only when no error was found (`write=False`: check only).

    A rebuild whose inputs are byte-for-byte those of the last successful build does no work:
    its packages are already what this build would write.
    """
    if not write:
        return _build(settings, progress, "check")
    # A build stopped while moving its files into place left a journal: finish its moves
    # first, so that no package is older than the lock.
    finish_pending(settings.cache_dir / JOURNAL_NAME)
    previous = _load_previous(settings, input_fingerprint(settings))
    if previous is not None:
        return previous
    return _build(settings, progress, "build")


def status(settings: Settings, *, progress: Progress | None = None) -> BuildReport:
    """What the next build would do against the lock file, writing nothing (but caches)."""
    return _build(settings, progress, "status")


def _build(settings: Settings, progress: Progress | None, mode: str) -> BuildReport:
    from deckgen.package import PreviousPackage

    report = BuildReport()
    lock = Lock.load(settings.lock)  # first: a broken lock file should stop the build early
    corpus, plan, not_packed = load_and_plan(settings, lock, progress)
    report.diagnostics = sorted_unique(corpus.diagnostics + plan.diagnostics)
    report.sections = list(plan.sections.values())
    report.failed = plan.failed
    report.sandbox = plan.sandbox
    _count_warnings(report.diagnostics, corpus, plan.sections)
    if report.errors or mode == "check":
        return report
    models = note_types(settings)
    # What removed questions last shipped as: the previous package with every section.
    previous = PreviousPackage(combined_package(settings))
    settled = settle(plan.notes, lock, previous,
                     {k: model_hash(m) for k, m in models.items()}, int(time.time()))
    _resanitize_removed(settled)
    for note in settled.notes:
        if note.change == "still removed":
            continue
        section = plan.sections.setdefault(note.section, SectionReport(note.section))
        (section.changes if note.note_type == "qa" else section.code_changes)[note.change] += 1
    report.sections = list(plan.sections.values())
    report.notes, report.lost = settled.notes, settled.lost
    report.first_build = not lock.notes and not lock.removed
    report.diagnostics = sorted_unique(report.diagnostics + _renamed_packages(corpus, settled, settings))
    if mode == "status":
        return report
    report.packages, report.written = write_outputs(settled, plan, models, settings)
    if not not_packed:  # else the next build, even of the same input, tries those downloads again
        _save_previous(settings, input_fingerprint(settings), report)
    return report


def load_and_plan(settings: Settings, lock: Lock,
                  progress: Progress | None = None) -> tuple[Corpus, Planned, list[Diagnostic]]:
    """Steps 1 and 2: the corpus, the build's planned notes, and the warnings of the remote
    images left unpacked (the corpus's diagnostics hold them too)."""
    from deckgen.load import load_sources

    corpus, rendered = load_sources(settings.sources, settings.cache_dir, progress,
                                    meanwhile=_import_later_steps,
                                    max_image_bytes=settings.max_image_mb << 20)
    not_packed = pack_media(corpus, rendered, settings)
    corpus.diagnostics.extend(not_packed)
    return corpus, plan_notes(corpus, rendered, lock, settings), not_packed


def _resanitize_removed(settled: Settlement) -> None:
    """Removed notes ship again as the lock or the previous package has them: files anyone
    could have edited. Their fields pass the card allow-list again, in the package and the lock."""
    for index, note in enumerate(settled.notes):
        if note.change in ("removed", "still removed"):
            fields = tuple(_clean_field(f) for f in note.fields)
            settled.notes[index] = dataclasses.replace(note, fields=fields)
    for removed in settled.lock.removed.values():
        removed.fields = [_clean_field(f) for f in removed.fields]


def _clean_field(value: object) -> str:
    from deckgen.sanitize import clean

    return clean(value) if isinstance(value, str) else ""


def _renamed_packages(corpus: Corpus, settled: Settlement, settings: Settings) -> list[Diagnostic]:
    """A warning for each section whose package cannot bear its own name, at its first question."""
    sections = list(dict.fromkeys(note.section for note in settled.notes))
    names = package_names(settings.root, sections)
    owners = {package_name(settings.root).casefold(): "every section"}
    first = {}
    for question in corpus.questions:
        first.setdefault(question.section, question)
    diagnostics = []
    for section in sections:
        wanted = package_name(section)
        if names[section] != wanted and section in first:
            owner = owners.get(wanted.casefold(), "another section")
            diagnostics.append(Diagnostic(
                first[section].path, first[section].line, WARNING,
                f"section '{section}' is written to {names[section]}.apkg: {wanted}.apkg holds {owner}"))
        owners.setdefault(names[section].casefold(), f"section '{section}'")
    return diagnostics


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
    if settings.lock.is_file():
        digest.update(settings.lock.read_bytes())
    return digest.hexdigest()


@dataclass
class _SavedSection:
    """What a section's summary line needs, kept for an up-to-date rebuild to print."""

    name: str
    cards: int
    code_notes: dict[str, int]
    code_dropped: dict[str, int]
    images: int
    remote_images: int
    warnings: int


@dataclass
class _SavedBuild:
    """The last successful build, in .deckgen-cache/build.json: its inputs' fingerprint and report."""

    fingerprint: str
    packages: list[Path]
    sections: list[_SavedSection]
    diagnostics: list[Diagnostic]
    failed: list[FailedExample]


def _load_previous(settings: Settings, fingerprint: str) -> BuildReport | None:
    """The last build's report, when its inputs were these and its packages are still there."""
    try:
        saved = datafile.load(_SavedBuild, json.loads((settings.cache_dir / "build.json").read_bytes()))
    except (OSError, ValueError):  # missing, broken or of another shape (DataError is a ValueError)
        return None
    if saved.fingerprint != fingerprint or not all(p.is_file() for p in saved.packages):
        return None
    return BuildReport(
        sections=[SectionReport(s.name, s.cards, Counter(s.code_notes), s.images, s.remote_images,
                                s.warnings, Counter({"unchanged": s.cards}),
                                Counter({"unchanged": sum(s.code_notes.values())}), Counter(s.code_dropped))
                  for s in saved.sections],
        failed=saved.failed,
        diagnostics=saved.diagnostics,
        packages=saved.packages,
        up_to_date=True,
    )


def _save_previous(settings: Settings, fingerprint: str, report: BuildReport) -> None:
    sections = [_SavedSection(s.name, s.cards, dict(s.code_notes), dict(s.code_dropped), s.images,
                              s.remote_images, s.warnings) for s in report.sections]
    saved = _SavedBuild(fingerprint, report.packages, sections, report.diagnostics, report.failed)
    try:
        write_atomic(settings.cache_dir / "build.json",
                     json.dumps(datafile.dump(saved), ensure_ascii=False))
    except OSError:
        pass  # the packages are written: a next build that cannot tell costs only time


def sorted_unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in file and line order, each once."""
    return sorted(dict.fromkeys(diagnostics), key=lambda d: (str(d.path), d.line, d.level, d.message))


def _count_warnings(diagnostics: Sequence[Diagnostic], corpus: Corpus,
                    sections: dict[str, SectionReport]) -> None:
    """Each warning counts for the section of the question or introduction it falls in (one
    above the first question, in a table of contents say, for that question's section)."""
    starts: dict[Path, list[tuple[int, str]]] = {}
    for question in corpus.questions:
        starts.setdefault(question.path, []).append((question.line, question.section))
    for section in corpus.sections:
        for description in section.descriptions:
            starts.setdefault(description.path, []).append((description.line, section.name))
    for lines in starts.values():
        lines.sort()
    for diagnostic in diagnostics:
        lines = starts.get(diagnostic.path, [])
        index = max(bisect.bisect_right(lines, (diagnostic.line, "\uffff")) - 1, 0)
        if not diagnostic.is_error and lines and lines[index][1] in sections:
            sections[lines[index][1]].warnings += 1
