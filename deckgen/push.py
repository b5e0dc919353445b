"""`deckgen push`: bring a built package into the user's Anki, and delete removed notes on request.

Both routes import the combined package itself rather than writing notes one by one: the
package carries each note's GUID (its identity in deckgen.lock), its modification time (Anki
updates a note only when that is newer) and its media, so a push does exactly what File → Import
does — edited notes keep their ids, cards, scheduling and review log; nothing is duplicated.
AnkiConnect's note actions could not do that: `addNotes` cannot set a GUID, so the next import
of a package would duplicate every note it added.

- AnkiConnectTarget: a running Anki, through the AnkiConnect add-on (its `importPackage`).
- CollectionTarget: a closed collection file, through Anki's own backend.
"""
from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deckgen.ankiconnect import AnkiConnect, AnkiConnectError
from deckgen.atomic import write_atomic
from deckgen.collection import CollectionError, open_collection
from deckgen.ids import REMOVED_TAG, Lock
from deckgen.notetypes import KEY_OF_MODEL_ID

IMPORT_TIMEOUT = 900.0  # seconds; the whole knowledge base imports in far less


class PushError(Exception):
    """Anki cannot take the push; the message is one line saying what to do."""


@dataclass(frozen=True)
class Imported:
    """What Anki did with a package."""

    added: int
    updated: int | None  # None where the route cannot tell (AnkiConnect's import says nothing)
    unchanged: int | None  # not newer than the collection's: left alone
    refused: int  # notes whose note type conflicts with the collection's
    total: int  # deckgen's notes under the root deck afterwards


@dataclass(frozen=True)
class RemovedNote:
    """A note in Anki tagged deckgen::removed, of deckgen's note types, under the root deck."""

    note_id: int
    question: str  # plain text
    deck: str
    note_type: str  # the lock's name for it: qa / code
    question_field: str  # as stored, HTML
    guid: str | None  # None through AnkiConnect, which does not tell


class Target(Protocol):
    def import_package(self, package: Path) -> Imported: ...

    def removed_notes(self) -> list[RemovedNote]: ...

    def delete(self, note_ids: Sequence[int]) -> None: ...

    def close(self) -> None: ...


def plain(field_html: str) -> str:
    """A field's text for a one-line listing."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", field_html)).split())


def under_root(deck: str, root: str) -> bool:
    return deck == root or deck.startswith(root + "::")


def our_notes_query(root: str, extra: str = "") -> str:
    """Anki's search for deckgen's own notes under the root deck: by note-type id, which stays
    what deckgen gave it even if the user renames the note type."""
    types = " OR ".join(f"mid:{mid}" for mid in sorted(KEY_OF_MODEL_ID))
    return f"{search_term('deck', root)} ({types}) {extra}".strip()


def search_term(name: str, value: str) -> str:
    """`name:value` for Anki's search, with value taken literally (no wildcards)."""
    literal = re.sub(r'([\\"*_])', r"\\\1", value)
    return f'"{name}:{literal}"'


# --- A running Anki, through AnkiConnect -----------------------------------------------------------


class AnkiConnectTarget:
    def __init__(self, client: AnkiConnect, root: str) -> None:
        self.client = client
        self.root = root
        client.check()

    def _our_notes(self, extra: str = "") -> list[int]:
        return self.client.call("findNotes", query=our_notes_query(self.root, extra))

    def import_package(self, package: Path) -> Imported:
        before = set(self._our_notes())
        # The add-on reads the file itself: the path must be one Anki can open.
        path = str(package.resolve())
        try:
            imported = self.client.call("importPackage", timeout=IMPORT_TIMEOUT, path=path)
        except AnkiConnectError as exc:
            if "No such file" in str(exc) or "not found" in str(exc).lower():
                raise PushError(f"Anki at {self.client.url} cannot read {path}: AnkiConnect imports "
                                "a file from Anki's own disk, so push on the machine that runs Anki, "
                                "or use --collection") from None
            raise
        if not imported:
            raise PushError(f"AnkiConnect at {self.client.url} has no collection open: open a "
                            "profile in Anki and push again")
        after = set(self._our_notes())
        return Imported(added=len(after - before), updated=None, unchanged=None, refused=0,
                        total=len(after))

    def removed_notes(self) -> list[RemovedNote]:
        ids = self._our_notes(search_term("tag", REMOVED_TAG))
        if not ids:
            return []
        notes = self.client.call("notesInfo", notes=ids)
        types = {name: KEY_OF_MODEL_ID[mid] for name, mid in self.client.call("modelNamesAndIds").items()
                 if mid in KEY_OF_MODEL_ID}  # notesInfo names a note's type, without its id
        cards = self.client.call("cardsInfo", cards=[n["cards"][0] for n in notes if n.get("cards")])
        deck_of = {c["note"]: c["deckName"] for c in cards if c}
        return [RemovedNote(n["noteId"], plain(n["fields"]["Question"]["value"]), deck_of[n["noteId"]],
                            types[n["modelName"]], n["fields"]["Question"]["value"], None)
                for n in notes
                if n and n["noteId"] in deck_of and under_root(deck_of[n["noteId"]], self.root)
                and REMOVED_TAG in n["tags"] and n["modelName"] in types]

    def delete(self, note_ids: Sequence[int]) -> None:
        self.client.call("deleteNotes", notes=list(note_ids))

    def close(self) -> None:
        pass


# --- A closed collection file, through Anki's backend ---------------------------------------------


class CollectionTarget:
    def __init__(self, path: Path, root: str) -> None:
        self.root = root
        self.col: Any = open_collection(path)

    def _our_notes(self, extra: str = "") -> list[int]:
        return list(self.col.find_notes(our_notes_query(self.root, extra)))

    def import_package(self, package: Path) -> Imported:
        from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest

        # Default options are the desktop's: update a note when the package's is newer.
        log = self.col.import_anki_package(ImportAnkiPackageRequest(
            package_path=str(package), options=ImportAnkiPackageOptions())).log
        self.col.models._clear_cache()  # the import bypasses the Python layer's cache
        # Anki logs a note it left alone because it was not newer as a "duplicate".
        return Imported(added=len(log.new), updated=len(log.updated), unchanged=len(log.duplicate),
                        refused=len(log.conflicting) + len(log.missing_notetype),
                        total=len(self._our_notes()))

    def removed_notes(self) -> list[RemovedNote]:
        removed = []
        for note in map(self.col.get_note, self._our_notes(search_term("tag", REMOVED_TAG))):
            card = note.cards()[0]
            deck = self.col.decks.name(card.odid or card.did)
            if under_root(deck, self.root) and note.has_tag(REMOVED_TAG) and note.mid in KEY_OF_MODEL_ID:
                removed.append(RemovedNote(note.id, plain(note["Question"]), deck,
                                           KEY_OF_MODEL_ID[note.mid], note["Question"], note.guid))
        return removed

    def delete(self, note_ids: Sequence[int]) -> None:
        self.col.remove_notes(list(note_ids))

    def close(self) -> None:
        self.col.close()


def forget_pruned(lock_path: Path, pruned: Sequence[RemovedNote]) -> int:
    """Take pruned notes out of the lock file, so that builds stop shipping them (the next import
    would add them again). Through AnkiConnect, which hides GUIDs, a note is known by its note
    type and question. Returns how many entries went."""
    lock = Lock.load(lock_path)
    guids = {n.guid for n in pruned if n.guid is not None}
    questions = {(n.note_type, n.question_field) for n in pruned if n.guid is None}
    gone = [key for key, entry in lock.removed.items()
            if entry.guid in guids or (entry.note_type, entry.fields[0] if entry.fields else None) in questions]
    for key in gone:
        del lock.removed[key]
    if gone:
        write_atomic(lock_path, lock.dumps())
    return len(gone)


# Every way a push can fail that the user fixes: each message is one line saying what to do.
PUSH_ERRORS = (PushError, AnkiConnectError, CollectionError)


def open_target(*, root: str, collection: Path | None, url: str, key: str | None) -> Target:
    """The collection file when one is given, else the running Anki."""
    if collection is not None:
        return CollectionTarget(collection, root)
    return AnkiConnectTarget(AnkiConnect(url, key), root)


def describe(imported: Imported, root: str) -> str:
    """What Anki did, in one line."""
    from deckgen.summary import count

    parts = [f"{count(imported.added, 'note')} added"]
    if imported.updated is not None:
        parts.append(f"{imported.updated} updated")
    if imported.unchanged is not None:
        parts.append(f"{imported.unchanged} unchanged")
    if imported.refused:
        parts.append(f"{imported.refused} refused (their note type conflicts with the collection's)")
    return f"Anki: {', '.join(parts)}; {count(imported.total, 'deckgen note')} under {root}"
