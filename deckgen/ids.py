"""Identity: the stable key of a question and the note GUID that follows from it.

A key never depends on a question's position, number or answer, so renumbering, reordering or
editing an answer keeps the note Anki already has (and its review history).
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
import unicodedata
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Protocol

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
RENAME_SIMILARITY = 0.75  # how alike two titles must be for a vanished question to pass on its GUID


@dataclass
class LockedNote:
    guid: str
    title: str
    section: str
    hash: str = ""  # of the note's content as last shipped
    mod: int = 0  # the modification time it was last shipped with (seconds)
    note_type: str = "qa"


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
            raise _Invalid(f"the file holds {_json_type(data)}, not an object")
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
                raise _Invalid(f"'{name}' is {_json_type(table)}, not an object")
            tables[name] = {key: _entry(entry_type, value, f"{name}[{_shown(key)}]")
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
    """An entry of the lock as its dataclass, each field checked against its annotation, so
    a field added to a lock entry is checked without code of its own."""
    if not isinstance(value, dict):
        raise _Invalid(f"{where} is {_json_type(value)}, not an object")
    known = {f.name: f for f in fields(entry_type)}
    hints = typing.get_type_hints(entry_type)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _Invalid(f"{where} has an unknown field '{unknown[0]}'")
    for name, spec in known.items():
        if name not in value:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise _Invalid(f"{where} lacks its '{name}'")
            continue
        _check_value(hints[name], value[name], f"{where}.{name}")
    if "note_type" in value:
        _check_note_type(value, where)
    return entry_type(**value)


def _check_note_type(value: dict, where: str) -> None:
    """A note type this deckgen ships, and (a removed note's) as many fields as it has."""
    from deckgen.notetypes import NOTE_TYPES

    specs = {spec.key: spec for spec in NOTE_TYPES}
    spec = specs.get(value["note_type"])
    if spec is None:
        raise _Invalid(f"{where}.note_type is {_shown(value['note_type'])}, not one of "
                       f"{', '.join(_shown(k) for k in specs)}")
    if "fields" in value and len(value["fields"]) != len(spec.fields):
        raise _Invalid(f"{where}.fields has {len(value['fields'])} fields; a {spec.key} note has "
                       f"{len(spec.fields)}")


def _shown(value: object) -> str:
    """A value as JSON on one line, shortened: for a message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_value(hint: object, value: object, where: str) -> None:
    shown = _shown(value)
    if hint is str:
        if not isinstance(value, str):
            raise _Invalid(f"{where} is {shown}, not a string")
        if not value and where.rsplit(".", 1)[-1] in _NON_EMPTY:
            raise _Invalid(f"{where} is empty")
    elif hint is int:
        if not _is_int(value):
            raise _Invalid(f"{where} is {shown}, not a whole number")
        low, high = _RANGES.get(where.rsplit(".", 1)[-1], (-(1 << 63), (1 << 63) - 1))
        if not low <= value <= high:
            raise _Invalid(f"{where} is {shown}, outside {low} … {high}")
    elif hint is bool:
        if not isinstance(value, bool):
            raise _Invalid(f"{where} is {shown}, not true or false")
    elif hint is float:
        if not (_is_int(value) or isinstance(value, float)):
            raise _Invalid(f"{where} is {shown}, not a number")
    elif typing.get_origin(hint) in (list, tuple):
        if not isinstance(value, list):
            raise _Invalid(f"{where} is {shown}, not a list")
        (item,) = set(typing.get_args(hint)) - {Ellipsis} or {object}
        for index, element in enumerate(value):
            _check_value(item, element, f"{where}[{index}]")
    elif typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise _Invalid(f"{where} is {shown}, not an object")
        item = typing.get_args(hint)[1] if typing.get_args(hint) else object
        for key, element in value.items():
            _check_value(item, element, f"{where}[{_shown(key)}]")
    elif typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        problems = []
        for option in (o for o in options if o is not type(None)):
            try:
                _check_value(option, value, where)
                return
            except _Invalid as exc:
                problems.append(str(exc))
        raise _Invalid(problems[0] if problems else f"{where} is {shown}")
    elif hint is not object and isinstance(hint, type) and not isinstance(value, hint):
        raise _Invalid(f"{where} is {shown}, not {hint.__name__}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "true or false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def content_hash(*parts: object) -> str:
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def next_mod(previous: LockedNote | LockedNoteType | None, new_hash: str, now: int) -> int:
    """A changed note's time must be strictly newer than any it shipped with, or Anki ignores it;
    an unchanged note keeps its time so that rebuilding gives byte-identical packages."""
    if previous is None:
        return now
    if previous.hash == new_hash:
        return previous.mod
    return max(now, previous.mod + 1)


# --- Giving each question of a build its GUID -----------------------------------------------------


@dataclass(frozen=True)
class Identity:
    key: str  # the key the question is locked under from now on
    guid: str
    renamed_from: str | None = None  # the vanished key whose GUID it inherited
    moved_from: str | None = None  # the section it was in before, when it moved


def resolve_identities(
    questions: Sequence[Question], lock: Lock
) -> tuple[list[Identity], list[Diagnostic]]:
    """GUIDs for a build's questions, in order, from the lock, a rename match, or the key itself.

    The key decides, never the position: a key the lock knows keeps its GUID; a new key whose
    title closely matches a question that vanished from the same section inherits that GUID
    (reported as renamed), unless the source pins the id; otherwise the GUID is a hash of the key.
    """
    keys, diagnostics = _unique_keys(questions)
    present = set(keys)
    vanished = {k: n for k, n in lock.notes.items() if k not in present and n.note_type == "qa"}
    used: set[str] = set()
    identities: list[Identity] = []
    for question, key in zip(questions, keys):
        locked = lock.notes.get(key) or lock.removed.get(key)
        renamed_from = None
        if locked is None and not question.pinned:
            renamed_from = _closest_vanished(question, vanished)
            if renamed_from is not None:
                locked = vanished.pop(renamed_from)
        guid = locked.guid if locked else guid_for_key(key)
        salt = 1
        while guid in used:  # two keys of one build must never share a note
            guid, salt = guid_for_key(f"{key}#{salt}"), salt + 1
        used.add(guid)
        moved_from = locked.section if locked and locked.section != question.section else None
        identities.append(Identity(key, guid, renamed_from, moved_from))
    return identities, diagnostics


def _unique_keys(questions: Sequence[Question]) -> tuple[list[str], list[Diagnostic]]:
    """Keys made unique: a repeated key is qualified by its deck, and every repeat is reported."""
    first_seen: dict[str, Question] = {}
    keys: list[str] = []
    diagnostics: list[Diagnostic] = []
    taken = {q.key for q in questions}
    for question in questions:
        key = question.key
        if key in first_seen:
            first = first_seen[key]
            qualified = f"{key}@{'::'.join(question.deck)}"
            n = 2
            while qualified in taken:
                qualified = f"{key}@{'::'.join(question.deck)}#{n}"
                n += 1
            taken.add(qualified)
            diagnostics.append(
                Diagnostic(
                    question.path,
                    question.line,
                    WARNING,
                    f"duplicate question key '{key}' (first at {first.path}:{first.line}); "
                    "this one is kept as a separate note",
                )
            )
            key = qualified
        else:
            first_seen[key] = question
        keys.append(key)
    return keys, diagnostics


def _closest_vanished(question: Question, vanished: dict[str, LockedNote]) -> str | None:
    title = normalize_key(question.title)
    best, best_ratio = None, RENAME_SIMILARITY
    for key, note in sorted(vanished.items()):
        if note.section != question.section:
            continue
        ratio = difflib.SequenceMatcher(None, title, normalize_key(note.title)).ratio()
        if ratio >= best_ratio and (best is None or ratio > best_ratio):
            best, best_ratio = key, ratio
    return best


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


@dataclass(frozen=True)
class SettledNote:
    note_type: str
    guid: str
    deck: str
    fields: tuple[str, ...]
    tags: tuple[str, ...]
    mod: int
    change: str  # added / updated / renamed / unchanged / removed
    section: str
    title: str


class LastShipped(Protocol):
    """Where the content a note last shipped with can be looked up by its GUID."""

    def get(self, guid: str) -> dict | None: ...


@dataclass
class Settlement:
    notes: list[SettledNote]
    lock: Lock
    lost: list[LockedNote]  # removed, but their last content is unknown: cannot be shipped


def previous_key(key: str, lock: Lock, renamed_from: str | None, suffix: str = "") -> str | None:
    """The lock key a note of this build continues, if any."""
    if key in lock.notes or key in lock.removed:
        return key
    if renamed_from is not None and f"{renamed_from}{suffix}" in lock.notes:
        return f"{renamed_from}{suffix}"
    return None


def settle(
    planned: Sequence[PlannedNote],
    lock: Lock,
    last_shipped: LastShipped,
    note_type_hashes: dict[str, str],
    now: int,
) -> Settlement:
    """Times for every note, the removed notes shipped as they last were, and the next lock.

    `last_shipped` gives for a GUID the fields, tags, deck and note type it was last shipped with
    (the previous package): the importer never deletes, so a removed question keeps shipping with its
    last content and a tag that finds it.
    """
    new = Lock()
    for name, digest in sorted(note_type_hashes.items()):
        new.note_types[name] = LockedNoteType(digest, next_mod(lock.note_types.get(name), digest, now))
    settled: list[SettledNote] = []
    continued: set[str] = set()
    for note in planned:
        digest = content_hash(note.note_type, note.fields, note.tags)
        previous = None
        if note.previous_key is not None:
            continued.add(note.previous_key)
            previous = lock.notes.get(note.previous_key) or _as_locked(lock.removed.get(note.previous_key))
        mod = next_mod(previous, digest, now)
        new.notes[note.key] = LockedNote(note.guid, note.title, note.section, digest, mod, note.note_type)
        settled.append(SettledNote(note.note_type, note.guid, note.deck, note.fields, note.tags, mod,
                                   _change(note, previous, digest), note.section, note.title))
    lost: list[LockedNote] = []
    for key, old in sorted(lock.notes.items()):
        if key in continued:
            continue
        shipped = last_shipped.get(old.guid)
        if shipped is None:
            lost.append(old)
            continue
        tags = sorted(set(shipped["tags"]) | {REMOVED_TAG})
        new.removed[key] = RemovedNote(old.guid, old.title, old.section, max(now, old.mod + 1),
                                       old.note_type, shipped["deck"], tags, list(shipped["fields"]))
    for key, gone in sorted(lock.removed.items()):
        if key not in continued:
            new.removed[key] = gone
    for key, gone in sorted(new.removed.items()):
        change = "removed" if key in lock.notes else "still removed"
        settled.append(SettledNote(gone.note_type, gone.guid, gone.deck, tuple(gone.fields),
                                   tuple(gone.tags), gone.mod, change, gone.section, gone.title))
    return Settlement(settled, new, lost)


def _as_locked(removed: RemovedNote | None) -> LockedNote | None:
    if removed is None:
        return None
    return LockedNote(removed.guid, removed.title, removed.section, "", removed.mod, removed.note_type)


def _change(note: PlannedNote, previous: LockedNote | None, digest: str) -> str:
    if previous is None:
        return "added"
    if note.previous_key != note.key:
        return "renamed"
    return "unchanged" if previous.hash == digest else "updated"
