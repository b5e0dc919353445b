"""Identity: the stable key of a question and the note GUID that follows from it.

A key never depends on a question's position, number or answer, so renumbering, reordering or
editing an answer keeps the note Anki already has (and its review history).
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from pathlib import Path

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
        try:
            data = json.loads(text)
            return cls(
                notes={k: LockedNote(**v) for k, v in data.get("notes", {}).items()},
                removed={k: RemovedNote(**v) for k, v in data.get("removed", {}).items()},
                note_types={k: LockedNoteType(**v) for k, v in data.get("note_types", {}).items()},
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise LockError(
                f"{origin}: not a deckgen lock file ({exc}); restore it from git, or delete it to start "
                "afresh (notes renamed since it was written would then be new notes)"
            ) from None

    @classmethod
    def load(cls, path: Path) -> Lock:
        if not path.exists():
            return cls()
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
