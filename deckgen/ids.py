"""Identity: which note of the last build each question and code example continues.

A question's key is its title (or id) normalized: it never depends on position or number, so
renumbering or reordering keeps the note Anki already has, with its review history. What the
title cannot tell (same-titled questions, a retitled question, an edited example) is decided by
content, never by position; the rules are listed above IdentityResolver.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deckgen import datafile
from deckgen.datafile import json_type, shown
from deckgen.evidence import COMMON_UNIT, evidence, fingerprint, similarity, sketch_values, title_similarity
from deckgen.model import WARNING, Diagnostic, Question

# 【一】, 【十二】: the article's question markers.
QUESTION_MARKER = re.compile(r"^\s*【[一二三四五六七八九十百零〇两]+】\s*")
# "33." "33、" "33 " "33)" before a title; an id may glue the number to the text ("16Transformer").
_TITLE_NUMBER = re.compile(r"^\s*\d+\s*(?:[.．、)）:：]\s*|\s+)")
_ID_NUMBER = re.compile(r"^(?:user-content-)?\d+[.．、]?")
_FORMATTING = re.compile(r"<[^<>]*>|[*_`~\s]+")


def strip_number(title: str) -> str:
    """A title without its leading 【一】 marker or `33.` number."""
    title = QUESTION_MARKER.sub("", title, count=1)
    return _TITLE_NUMBER.sub("", title, count=1).strip()


def normalize_key(text: str, *, is_id: bool = False) -> str:
    """The identity key of a question title or heading id.

    Width, case, white space, Markdown emphasis and a leading number do not count, so that
    `33.Transformer Encoder？` and the id `34.TransformerEncoder?` name the same question.
    """
    text = unicodedata.normalize("NFKC", text)
    text = QUESTION_MARKER.sub("", text, count=1)
    text = (_ID_NUMBER if is_id else _TITLE_NUMBER).sub("", text.strip(), count=1)
    return _FORMATTING.sub("", text).casefold()


def guid_for_key(key: str) -> str:
    """The note GUID a key gets when nothing (lock file, rename) says otherwise."""
    from genanki import guid_for  # (imported when first needed: it is slow to import)

    return guid_for("deckgen", key)


# --- The lock file: what earlier builds gave each key, so later builds can keep it ----------------

LOCK_VERSION = 1


@dataclass
class LockedNote:
    guid: str
    title: str
    section: str
    hash: str = ""  # of the note's content as last shipped, its Source field aside
    mod: int = 0  # the modification time it was last shipped with (seconds)
    note_type: str = "qa"
    # Written since identity follows content; empty in older locks (see _base, _same_content).
    base: str = ""  # the question's key before same-titled questions are told apart
    body: str = ""  # fingerprint of the answer (Q&A) or the code (code note): see fingerprint
    sketch: str = ""  # likewise: the evidence a rename is judged on
    owner: str = ""  # code notes: the GUID of their question
    source: str = ""  # the Source field (file:line) as last shipped
    deck: str = ""


@dataclass
class LockedNoteType:
    """A note type's templates and CSS as last shipped: a change ships with a newer time."""

    hash: str
    mod: int


@dataclass
class RemovedNote:
    """A note whose question left the source: shipped as it last was, tagged for deletion."""

    guid: str
    title: str
    section: str
    mod: int
    note_type: str
    deck: str
    tags: list[str]
    fields: list[str]
    base: str = ""
    body: str = ""
    sketch: str = ""
    owner: str = ""


@dataclass
class Lock:
    notes: dict[str, LockedNote] = field(default_factory=dict)
    removed: dict[str, RemovedNote] = field(default_factory=dict)
    note_types: dict[str, LockedNoteType] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, origin: Path) -> Lock:
        """The lock in `text`, every entry checked against its dataclass: a wrong type or an
        impossible value is refused here, not met later as a traceback or a package Anki rejects."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _bad_lock(origin, f"not JSON: {exc}") from None
        try:
            return cls._from_json(data)
        except _Invalid as exc:
            raise _bad_lock(origin, str(exc)) from None
        except _TooNew as exc:
            raise LockError(
                f"{origin}: written by a newer deckgen (lock version {exc}; this deckgen reads "
                f"version {LOCK_VERSION}); upgrade deckgen (pip install -U deckgen) to build with it"
            ) from None

    @classmethod
    def _from_json(cls, data: object) -> Lock:
        if not isinstance(data, dict):
            raise _Invalid(f"the file holds {json_type(data)}, not an object")
        version = data.get("version", LOCK_VERSION)
        if not _is_int(version) or version < 1:
            raise _Invalid(f"'version' is {json.dumps(version)}, not a version number")
        if version > LOCK_VERSION:
            raise _TooNew(version)
        unknown = sorted(set(data) - {"version", *_LOCK_TABLES})
        if unknown:
            raise _Invalid(f"unknown entry '{unknown[0]}'")
        tables = {}
        for name, entry_type in _LOCK_TABLES.items():
            table = data.get(name, {})
            if not isinstance(table, dict):
                raise _Invalid(f"'{name}' is {json_type(table)}, not an object")
            tables[name] = {key: _entry(entry_type, value, f"{name}[{shown(key)}]")
                            for key, value in table.items()}
        return cls(**tables)

    @classmethod
    def load(cls, path: Path) -> Lock:
        if not path.exists():
            return cls()
        if not path.is_file():  # a named pipe would block the build
            raise LockError(f"{path}: the lock is not a regular file")
        try:
            return cls.parse(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError) as exc:
            raise LockError(f"{path}: cannot read the lock file: {exc}") from None

    def dumps(self) -> str:
        """Stable, diff-friendly JSON: sorted keys, one note per few lines."""
        data = {
            "version": LOCK_VERSION,
            "note_types": {k: vars(v) for k, v in self.note_types.items()},
            "notes": {k: vars(v) for k, v in self.notes.items()},
            "removed": {k: vars(v) for k, v in self.removed.items()},
        }
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


class LockError(Exception):
    """The lock file cannot be used; the message says how to recover."""


# Anki keeps modification times as seconds in SQLite INTEGER columns and shows them as dates:
# a time outside 1970 … 9999 is no time a build could have written.
MAX_MOD = 253_402_300_799  # 9999-12-31 23:59:59 UTC
# Checks beyond the type, by field name, for whichever lock entry has the field.
_NON_EMPTY = frozenset({"guid", "note_type"})
_RANGES = {"mod": (0, MAX_MOD)}
_LOCK_TABLES = {"notes": LockedNote, "removed": RemovedNote, "note_types": LockedNoteType}


class _Invalid(Exception):
    """One problem of a lock file's content, described for one line of an error."""


class _TooNew(Exception):
    """The lock was written by a later lock version."""


def _bad_lock(origin: Path, problem: str) -> LockError:
    return LockError(
        f"{origin}: not a deckgen lock file ({problem}); restore it from git, or delete it to "
        "start afresh (notes renamed since it was written would then be new notes)"
    )


def _entry(entry_type: type, value: object, where: str) -> object:
    """An entry of the lock as its dataclass, each field checked against its annotation
    (deckgen.datafile, as caches are read), so a field added to a lock entry is checked without
    code of its own; then what no type says: non-empty, in range, a note type deckgen ships."""
    try:
        entry = datafile.load(entry_type, value)
    except datafile.DataError as exc:
        raise _Invalid(f"{where}{exc.where} {exc.problem}") from None
    for name, item in vars(entry).items():
        if name in _NON_EMPTY and item == "":
            raise _Invalid(f"{where}.{name} is empty")
        if _is_int(item):
            low, high = _RANGES.get(name, (-(1 << 63), (1 << 63) - 1))
            if not low <= item <= high:
                raise _Invalid(f"{where}.{name} is {shown(item)}, outside {low} … {high}")
    if "note_type" in value:
        _check_note_type(value, where)
    return entry


def _check_note_type(value: dict, where: str) -> None:
    """A note type this deckgen ships, and (a removed note's) as many fields as it has."""
    from deckgen.notetypes import NOTE_TYPES

    specs = {spec.key: spec for spec in NOTE_TYPES}
    spec = specs.get(value["note_type"])
    if spec is None:
        raise _Invalid(f"{where}.note_type is {shown(value['note_type'])}, not one of "
                       f"{', '.join(shown(k) for k in specs)}")
    if "fields" in value and len(value["fields"]) != len(spec.fields):
        raise _Invalid(f"{where}.fields has {len(value['fields'])} fields; a {spec.key} note has "
                       f"{len(spec.fields)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def content_hash(*parts: object) -> str:
    return text_hash(content_json(parts))


def content_json(value: object) -> str:
    """The JSON `content_hash` hashes. A list's is "[" + its items' joined by ", " + "]", so
    that of a long list can be put together from its items' (deckgen.build does)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def next_mod(previous: LockedNote | LockedNoteType | None, new_hash: str, now: int) -> int:
    """A changed note's time must be strictly newer than any it shipped with, or Anki ignores it;
    an unchanged note keeps its time so that rebuilding gives byte-identical packages."""
    if previous is None:
        return now
    if previous.hash == new_hash:
        return previous.mod
    return max(now, previous.mod + 1)


# --- Giving each note of a build its GUID ---------------------------------------------------------

_LARGE_GROUP = 10_000  # same-titled questions × their notes, beyond which pairs are not all scored
#
# The rules, in order (the README's "Updating" section states them for users):
# 1. A question whose key the lock knows keeps that note. Same-titled questions (one key, several
#    notes) are told apart by their answers, then by deck, and only among equals by order.
# 2. Only then, a new key may continue a note whose key vanished from the same section, when the
#    answers are mostly the same (content evidence, as git detects a renamed file).
# 3. A code example keeps its note by its question and its code: the same code first, then code
#    mostly the same (an edit); never by its position among the question's examples.
# 4. Every key a build writes is distinct from every other, whatever a title says: keys made here
#    contain a space, which a normalized title or id never does.
# 5. A note that matches nothing gets a GUID no note of the lock has ever had.


@dataclass(frozen=True)
class Identity:
    key: str  # the key the note is locked under from now on
    guid: str
    previous: str | None = None  # the lock key of the note it continues
    renamed_from: str | None = None  # the title it had, when inferred as a rename
    why: str = ""  # the evidence for a rename (or an edited example)
    moved_from: str | None = None  # the section it was in before, when it moved
    base: str = ""  # a question's key before same-titled questions are told apart
    body: str = ""  # fingerprint of the answer or the code
    sketch: str = ""
    owner: str = ""  # a code note's question (its GUID)


@dataclass(frozen=True)
class _Old:
    key: str
    entry: LockedNote | RemovedNote
    rank: int  # order among the notes of one key (or one question's examples)

    @property
    def removed(self) -> bool:
        return isinstance(self.entry, RemovedNote)


class IdentityResolver:
    """Matches a build's questions and code examples to the notes of the lock, one build at a time."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        entries = [*lock.notes.items(), *lock.removed.items()]
        self._reserved = {entry.guid for _, entry in entries}  # never given to a new note
        self._assigned: set[str] = set()
        self._qa: dict[str, list[_Old]] = {}
        self._code: dict[str, list[_Old]] = {}
        for key, entry in sorted(entries, key=lambda item: _ordinal(item[0])):
            if entry.note_type == "qa":
                group = self._qa.setdefault(_base(key, entry), [])
            else:
                group = self._code.setdefault(_owner(key, entry, lock), [])
            group.append(_Old(key, entry, len(group)))

    def questions(self, questions: Sequence[Question]) -> tuple[list[Identity], list[Diagnostic]]:
        diagnostics = _duplicate_warnings(questions)
        bodies, sketches = _fingerprints(q.answer for q in questions)
        groups: dict[str, list[int]] = {}
        for index, question in enumerate(questions):
            groups.setdefault(question.key, []).append(index)
        matched: dict[int, _Old] = {}
        for base, indexes in groups.items():
            olds = self._qa.get(base, [])
            matched.update(_pair(indexes, olds, [(bodies[i], sketches[i], questions[i].deck,
                                                  questions[i].section) for i in indexes]))
        taken = {old.key for old in matched.values()}
        vanished = [old for olds in self._qa.values() for old in olds
                    if old.key not in taken and not old.removed]
        unmatched = [i for i in range(len(questions)) if i not in matched and not questions[i].pinned]
        renames = _renames(unmatched, questions, sketches, vanished)
        identities: list[Identity] = []
        seen: dict[str, int] = {}
        for index, question in enumerate(questions):
            n = seen[question.key] = seen.get(question.key, 0) + 1
            key = question.key if n == 1 else f"{question.key} #{n}"
            old, why = (matched[index], "") if index in matched else renames.get(index, (None, ""))
            renamed_from = old.entry.title if index in renames and old is not None else None
            moved_from = old.entry.section if old and old.entry.section != question.section else None
            identities.append(Identity(key, self._guid(key, old), old.key if old else None, renamed_from,
                                       why, moved_from, question.key, bodies[index], sketches[index]))
        return identities, diagnostics

    def code(self, owner: Identity, codes: Sequence[str]) -> list[Identity]:
        """Identities of one question's examples, given the question's own."""
        previous = (self.lock.notes.get(owner.previous) or self.lock.removed.get(owner.previous)
                    if owner.previous else None)
        olds = self._code.get(previous.guid, []) if previous is not None else []
        bodies, sketches = _fingerprints(codes)
        matched = _pair_code(bodies, sketches, olds)
        identities: list[Identity] = []
        seen: dict[str, int] = {}
        for index, body in enumerate(bodies):
            n = seen[body] = seen.get(body, 0) + 1
            key = f"{owner.key} code {body[:10] or 'empty'}" + (f" #{n}" if n > 1 else "")
            old, why = matched.get(index, (None, ""))
            identities.append(Identity(key, self._guid(key, old), old.key if old else None, None, why,
                                       None, "", body, sketches[index], owner.guid))
        return identities

    def _guid(self, key: str, old: _Old | None) -> str:
        if old is not None and old.entry.guid not in self._assigned:
            guid = old.entry.guid
        else:  # a new note: a GUID no note of the lock (or of this build) has
            guid, salt = guid_for_key(key), 1
            while guid in self._reserved or guid in self._assigned:
                guid, salt = guid_for_key(f"{key}#{salt}"), salt + 1
        self._assigned.add(guid)
        return guid


def _fingerprints(texts: Iterable[str]) -> tuple[list[str], list[str]]:
    pairs = [fingerprint(text) for text in texts]
    return [body for body, _ in pairs], [sketch_hex for _, sketch_hex in pairs]


def _base(key: str, entry: LockedNote | RemovedNote) -> str:
    """The question key a lock entry was made from; older locks wrote `key@deck` for a repeat."""
    if entry.base:
        return entry.base
    title_key = normalize_key(entry.title)
    return title_key if key.startswith(f"{title_key}@") else key


def _owner(key: str, entry: LockedNote | RemovedNote, lock: Lock) -> str:
    """The GUID of a code note's question; older locks wrote only its key: `question-key::codeN`."""
    if entry.owner:
        return entry.owner
    question = key.rsplit("::code", 1)[0]
    found = lock.notes.get(question) or lock.removed.get(question)
    return found.guid if found is not None else question


def _ordinal(key: str) -> int:
    """Where a note stood among those of its key: `k #3` is the third; older locks: `…::code3`."""
    match = re.search(r"(?: #|::code)(\d+)$", key)
    return int(match.group(1)) if match else 1


def _pair(indexes: Sequence[int], olds: Sequence[_Old],
          new: Sequence[tuple[str, str, tuple[str, ...], str]]) -> dict[int, _Old]:
    """Same-key questions matched to same-key notes: the same answer, then the most alike answer,
    then the same deck and section, and only among equals by order."""
    if not olds:
        return {}
    if len(indexes) == 1 and len(olds) == 1:
        return {indexes[0]: olds[0]}
    if len(indexes) * len(olds) > _LARGE_GROUP:
        return _pair_large(indexes, olds, [body for body, *_ in new])
    scored = []
    for rank, (index, (body, sketch_hex, deck, section)) in enumerate(zip(indexes, new)):
        for old in olds:
            entry = old.entry
            same_body = bool(body) and body == entry.body
            share = 1.0 if same_body else similarity(sketch_hex, entry.sketch)
            same_deck = f"::{entry.deck}".endswith("::" + "::".join(p.replace("::", ":") for p in deck))
            score = (same_body, share, entry.section == section, same_deck, not old.removed,
                     -abs(rank - old.rank), -old.rank, -rank)
            scored.append((score, index, old))
    return _greedy(scored)


def _pair_large(indexes: Sequence[int], olds: Sequence[_Old], bodies: Sequence[str]) -> dict[int, _Old]:
    """Hundreds of questions of one title: the same answer, then order (comparing every pair
    would cost their product)."""
    by_body: dict[str, list[_Old]] = {}
    for old in olds:
        by_body.setdefault(old.entry.body, []).append(old)
    pairs: dict[int, _Old] = {}
    for index, body in zip(indexes, bodies):
        if body and by_body.get(body):
            pairs[index] = by_body[body].pop(0)
    used = {old.key for old in pairs.values()}
    rest = iter(old for old in olds if old.key not in used)
    for index in indexes:
        if index not in pairs:
            old = next(rest, None)
            if old is None:
                break
            pairs[index] = old
    return pairs


def _greedy(scored: list) -> dict:  # noqa: ANN001 - (score, new, old) triples
    """Best pairs first, each side used once."""
    pairs: dict = {}
    used: set[str] = set()
    for _, new, old in sorted(scored, key=lambda item: item[0], reverse=True):
        if new not in pairs and old.key not in used:
            pairs[new] = old
            used.add(old.key)
    return pairs


def _renames(unmatched: Sequence[int], questions: Sequence[Question], sketches: Sequence[str],
             vanished: Sequence[_Old]) -> dict[int, tuple[_Old, str]]:
    """New keys that continue vanished notes of their section, on the evidence of their answers.

    Candidates come from an index of the sketches' sentence hashes, so a mass rename costs about
    one lookup per sentence, not one comparison per pair of questions.
    """
    index: dict[int, list[_Old]] = {}
    for old in vanished:
        for value in sketch_values(old.entry.sketch):
            index.setdefault(value, []).append(old)
    scored = []
    for i in unmatched:
        question, seen = questions[i], set()
        for value in sketch_values(sketches[i]):
            bucket = index.get(value, ())
            if len(bucket) > COMMON_UNIT:
                continue
            for old in bucket:
                if old.key in seen or old.entry.section != question.section:
                    continue
                seen.add(old.key)
                found = evidence(sketches[i], old.entry.sketch, question.title, old.entry.title)
                if found is not None:
                    scored.append([(found[0], 0.0, -i), i, old, found[1]])
    # Where a question or a note has rivals, the closer title wins among equally alike answers
    # (compared only there: it is the costly part of a mass rename).
    per_question = Counter(i for _, i, _, _ in scored)
    per_note = Counter(old.key for _, _, old, _ in scored)
    for entry in scored:
        _, i, old, _ = entry
        if per_question[i] > 1 or per_note[old.key] > 1:
            entry[0] = (entry[0][0], title_similarity(questions[i].title, old.entry.title), -i)
    return _best_pairs(scored)


def _best_pairs(scored: Iterable[Sequence]) -> dict[int, tuple[_Old, str]]:
    """Each (score, index, old note, why) taken best first, while neither side is taken yet."""
    pairs: dict[int, tuple[_Old, str]] = {}
    used: set[str] = set()
    for _, i, old, why in sorted(scored, key=lambda item: item[0], reverse=True):
        if i not in pairs and old.key not in used:
            pairs[i] = (old, why)
            used.add(old.key)
    return pairs


def _pair_code(bodies: Sequence[str], sketches: Sequence[str],
               olds: Sequence[_Old]) -> dict[int, tuple[_Old, str]]:
    """One question's examples matched to its notes: the same code (among equals, in order), then
    code mostly the same (an edited example). Notes of older locks, which did not record their
    code, are matched by position once, as those locks did."""
    scored = []
    nth: dict[str, int] = {}
    for rank, (body, sketch_hex) in enumerate(zip(bodies, sketches)):
        nth[body] = nth.get(body, 0) + 1
        for old in olds:
            if not old.entry.body:
                continue
            if body and body == old.entry.body:  # the n-th of equal examples: the n-th such note
                scored.append(((2.0, -abs(nth[body] - _ordinal(old.key)), -rank), rank, old, ""))
                continue
            found = evidence(sketch_hex, old.entry.sketch)
            if found is not None:
                scored.append(((found[0], -abs(rank - old.rank), -rank), rank, old,
                               found[1].replace("answer", "code")))
    pairs = _best_pairs(scored)
    used = {old.key for old, _ in pairs.values()}
    for old in olds:  # older locks: the n-th example continues the note `…::coden`
        rank = _ordinal(old.key) - 1
        if not old.entry.body and old.key not in used and rank < len(bodies) and rank not in pairs:
            pairs[rank] = (old, "")
            used.add(old.key)
    return pairs


def _duplicate_warnings(questions: Sequence[Question]) -> list[Diagnostic]:
    first_seen: dict[str, Question] = {}
    diagnostics: list[Diagnostic] = []
    for question in questions:
        first = first_seen.setdefault(question.key, question)
        if first is not question:
            diagnostics.append(Diagnostic(
                question.path, question.line, WARNING,
                f"duplicate question key '{question.key}' (first at {first.path}:{first.line}); "
                "this one is kept as a separate note, told apart by its answer",
            ))
    return diagnostics


# --- Settling a build: modification times, removed notes, and the next lock ------------------------

REMOVED_TAG = "deckgen::removed"


@dataclass(frozen=True)
class PlannedNote:
    """A note of this build before its modification time is known."""

    key: str
    previous_key: str | None  # the lock key it continues (its own, or the one it was renamed from)
    note_type: str
    guid: str
    deck: str  # full deck name
    fields: tuple[str, ...]
    tags: tuple[str, ...]
    section: str
    title: str
    identity: Identity | None = None  # how it was matched (rename evidence, content sketches)
    where: str = ""  # file:line, for the summary
    # The field that only says where the note comes from (Source: file:line). It does not count as
    # a change: an unchanged note ships it as last shipped, so a line moved by an edit elsewhere
    # updates nothing in Anki.
    navigation: int | None = None


@dataclass(frozen=True)
class SettledNote:
    note_type: str
    guid: str
    deck: str
    fields: tuple[str, ...]
    tags: tuple[str, ...]
    mod: int
    change: str  # added / updated / renamed / moved / restored / unchanged / removed / still removed
    section: str
    title: str
    where: str = ""
    old_title: str | None = None  # renamed: the title it had
    old_section: str | None = None  # moved: the section it was in
    why: str = ""  # renamed: the evidence


class LastShipped(Protocol):
    """Where the content a note last shipped with can be looked up by its GUID."""

    def get(self, guid: str) -> dict | None: ...


@dataclass
class Settlement:
    notes: list[SettledNote]
    lock: Lock
    lost: list[LockedNote]  # removed, but their last content is unknown: cannot be shipped


def settle(
    planned: Sequence[PlannedNote],
    lock: Lock,
    last_shipped: LastShipped,
    note_type_hashes: dict[str, str],
    now: int,
) -> Settlement:
    """Times for every note, the removed notes shipped as they last were, and the next lock.

    A note's time moves (and Anki updates it) exactly when what its card shows changed: its fields
    but the navigation one, its tags or its deck. `last_shipped` gives for a GUID the fields, tags,
    deck and note type it was last shipped with (the previous package): the importer never deletes,
    so a removed question keeps shipping with its last content and a tag that finds it.
    """
    new = Lock()
    for name, digest in sorted(note_type_hashes.items()):
        new.note_types[name] = LockedNoteType(digest, next_mod(lock.note_types.get(name), digest, now))
    settled: list[SettledNote] = []
    continued: set[str] = set()
    for note in planned:
        visible = [f for i, f in enumerate(note.fields) if i != note.navigation]
        digest = content_hash(note.note_type, visible, note.tags, note.deck)
        previous: LockedNote | None = None
        if note.previous_key is not None:
            continued.add(note.previous_key)
            previous = lock.notes.get(note.previous_key) or _as_locked(lock.removed.get(note.previous_key))
        fields = note.fields
        if previous is not None and _same_content(previous, digest, note):
            mod = previous.mod
            if previous.source and note.navigation is not None:
                fields = (*fields[:note.navigation], previous.source, *fields[note.navigation + 1:])
        else:
            mod = now if previous is None else max(now, previous.mod + 1)
        identity = note.identity or Identity(note.key, note.guid)
        source = fields[note.navigation] if note.navigation is not None else ""
        new.notes[note.key] = LockedNote(note.guid, note.title, note.section, digest, mod, note.note_type,
                                         identity.base, identity.body, identity.sketch, identity.owner,
                                         source, note.deck)
        change = _change(note, previous, mod)
        settled.append(SettledNote(
            note.note_type, note.guid, note.deck, fields, note.tags, mod, change, note.section, note.title,
            note.where, identity.renamed_from if change == "renamed" else None,
            previous.section if previous is not None and previous.section != note.section else None,
            identity.why))
    lost: list[LockedNote] = []
    gone = [(key, old) for key, old in sorted(lock.notes.items()) if key not in continued]
    for key, old in gone:
        shipped = last_shipped.get(old.guid)
        if shipped is None:
            lost.append(old)
            continue
        tags = sorted(set(shipped["tags"]) | {REMOVED_TAG})
        new.removed[_free_key(key, new)] = RemovedNote(
            old.guid, old.title, old.section, max(now, old.mod + 1), old.note_type, shipped["deck"], tags,
            list(shipped["fields"]), _base(key, old) if old.note_type == "qa" else "", old.body,
            old.sketch, _owner(key, old, lock) if old.note_type != "qa" else "")
    for key, removed in sorted(lock.removed.items()):
        if key not in continued:
            new.removed[_free_key(key, new)] = removed
    just_removed = {old.guid for _, old in gone}
    for removed in sorted(new.removed.values(), key=lambda r: (r.section, r.title, r.guid)):
        change = "removed" if removed.guid in just_removed else "still removed"
        settled.append(SettledNote(removed.note_type, removed.guid, removed.deck, tuple(removed.fields),
                                   tuple(removed.tags), removed.mod, change, removed.section, removed.title))
    return Settlement(settled, new, lost)


def _free_key(key: str, lock: Lock) -> str:
    """A key for a removed note that no note of the build holds (a new note may take its key)."""
    free, n = key, 1
    while free in lock.notes or free in lock.removed:
        free, n = f"{key} removed {n}", n + 1
    return free


def _same_content(previous: LockedNote, digest: str, note: PlannedNote) -> bool:
    if previous.hash == digest:
        return True
    # Locks written before the Source field stopped counting hashed every field, and no deck.
    return not previous.source and previous.hash == content_hash(note.note_type, note.fields, note.tags)


def _as_locked(removed: RemovedNote | None) -> LockedNote | None:
    if removed is None:
        return None
    return LockedNote(removed.guid, removed.title, removed.section, "", removed.mod, removed.note_type)


def _change(note: PlannedNote, previous: LockedNote | None, mod: int) -> str:
    if previous is None:
        return "added"
    if not previous.hash:
        return "restored"  # it was removed, and is back
    if mod == previous.mod:
        return "unchanged"
    if note.identity is not None and note.identity.renamed_from is not None:
        return "renamed"
    if previous.section != note.section:
        return "moved"
    return "updated"
