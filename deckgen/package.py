"""Plain note records → .apkg files, written byte-for-byte reproducibly.

genanki supplies the note types and the collection schema; the rows are ours because genanki
stamps every note with the clock (Anki ignores an update whose time is not strictly newer, and a
rebuild of unchanged input must give identical bytes), draws ids from it, and zips with file times.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import genanki
from genanki.apkg_col import APKG_COL
from genanki.apkg_schema import APKG_SCHEMA

from deckgen.model import MediaFile
from deckgen.workers import die_with

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class NoteRecord:
    note_type: str  # a NoteTypeSpec key: "qa" or "code"
    guid: str
    deck: str  # the full deck name, e.g. "三年面试五年模拟::深度学习基础"
    fields: tuple[str, ...]
    tags: tuple[str, ...]
    mod: int  # modification time in seconds: must grow whenever the content changes
    due: int = 0  # position among new cards, so they come in source order


@dataclass(frozen=True)
class NoteType:
    model: genanki.Model
    mod: int


class PackageError(Exception):
    """The package could not be written."""


def deck_id(name: str) -> int:
    return _stable_int("deck", name)


def _stable_int(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    # Anki ids are positive 53-bit-safe integers; keep them clear of small built-in ids.
    return 1 << 40 | int.from_bytes(digest[:6], "big")


PackageJob = tuple[Path, Sequence[NoteRecord], Sequence[MediaFile]]
# Below this many notes in all, starting worker processes costs more than it saves.
PARALLEL_NOTES = 2000


def write_packages(jobs: Sequence[PackageJob], note_types: dict[str, NoteType],
                   staged: dict[Path, Path], descriptions: Mapping[str, str] | None = None) -> None:
    """Write several packages, each to the temporary file `staged` gives for its path (moving
    them into place is the caller's, once all are written); on Linux two at a time, in forked
    workers that read the notes from the memory they share with this process.
    `descriptions`: deck name → the HTML Anki shows on that deck's overview screen."""
    global _pending
    if sum(len(notes) for _, notes, _ in jobs) < PARALLEL_NOTES or sys.platform != "linux":
        for path, notes, media in jobs:
            write_package(path, notes, note_types, media, staged[path], descriptions)
        return
    _pending = (list(jobs), note_types, staged, descriptions)
    try:
        context = multiprocessing.get_context("fork")
        largest_first = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][1]))
        with ProcessPoolExecutor(min(2, os.cpu_count() or 1), mp_context=context,
                                 initializer=die_with, initargs=(os.getpid(),)) as pool:
            list(pool.map(_write_pending, largest_first))
    finally:
        _pending = None


_pending: tuple[list[PackageJob], dict[str, NoteType], dict[Path, Path], Mapping[str, str] | None] | None = None


def _write_pending(index: int) -> None:
    assert _pending is not None
    jobs, note_types, staged, descriptions = _pending
    path, notes, media = jobs[index]
    write_package(path, notes, note_types, media, staged[path], descriptions)


def write_package(path: Path, notes: Sequence[NoteRecord], note_types: dict[str, NoteType],
                  media: Sequence[MediaFile], into: Path | None = None,
                  descriptions: Mapping[str, str] | None = None) -> None:
    """The package for `path`, written to `into` (default: `path` itself)."""
    try:
        _write_zip(into or path, collection_bytes(notes, note_types, descriptions), media)
    except (OSError, sqlite3.Error) as exc:
        raise PackageError(f"{path}: cannot write the package: {exc}") from None


def collection_bytes(notes: Sequence[NoteRecord], note_types: dict[str, NoteType],
                     descriptions: Mapping[str, str] | None = None) -> bytes:
    """The package's collection.anki2: a SQLite database built in memory. A deck's description
    replaces the one in the collection on import (an empty one leaves it as it is)."""
    conn = sqlite3.connect(":memory:")
    try:
        cursor = conn.cursor()
        cursor.executescript(APKG_SCHEMA)
        cursor.executescript(APKG_COL)
        deck_names = sorted({n.deck for n in notes})
        decks = json.loads(cursor.execute("SELECT decks FROM col").fetchone()[0])
        for name in deck_names:
            deck = genanki.Deck(deck_id(name), name, description=(descriptions or {}).get(name, ""))
            decks[str(deck.deck_id)] = deck.to_json()
        used_types = sorted({n.note_type for n in notes})
        models = {
            str(note_types[t].model.model_id): note_types[t].model.to_json(note_types[t].mod, 1)
            for t in used_types
        }
        cursor.execute("UPDATE col SET decks = ?, models = ?", (
            json.dumps(decks, sort_keys=True), json.dumps(models, sort_keys=True)))
        cursor.executemany("INSERT INTO notes VALUES (?,?,?,?,?,?,?,?,?,?,?)", [
            (_stable_int("note", r.guid), r.guid, note_types[r.note_type].model.model_id, r.mod, -1,
             f" {' '.join(r.tags)} ", "\x1f".join(r.fields), r.fields[0], 0, 0, "")
            for r in notes
        ])
        # One card per note (each note type has one template, and its front is never empty);
        # new cards come in source order (due), with no scheduling of their own.
        cursor.executemany("INSERT INTO cards VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [
            (_stable_int("card", r.guid, "0"), _stable_int("note", r.guid), deck_id(r.deck), 0, r.mod,
             -1, 0, 0, r.due, 0, 0, 0, 0, 0, 0, 0, 0, "")
            for r in notes
        ])
        conn.commit()
        return _serialize(conn)
    finally:
        conn.close()


def _serialize(conn: sqlite3.Connection) -> bytes:
    if hasattr(conn, "serialize"):  # Python 3.11+
        return conn.serialize()
    with tempfile.TemporaryDirectory() as folder:  # Python 3.10: copy out through a file
        target = sqlite3.connect(Path(folder) / "collection.anki2")
        try:
            conn.backup(target)
        finally:
            target.close()
        return (Path(folder) / "collection.anki2").read_bytes()


def _write_zip(zip_path: Path, collection: bytes, media: Sequence[MediaFile]) -> None:
    with zipfile.ZipFile(zip_path, "w") as archive:
        _add(archive, "collection.anki2", collection)
        names = {str(i): m.name for i, m in enumerate(media)}
        _add(archive, "media", json.dumps(names, ensure_ascii=False).encode("utf-8"))
        for index, item in enumerate(media):
            _add_file(archive, str(index), item.source, compress=not _is_compressed(item.name))


# Images in these formats are compressed already: deflating them again costs time and gains nothing.
_COMPRESSED = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp3", ".mp4", ".ogg", ".zip")


def _is_compressed(name: str) -> bool:
    return name.lower().endswith(_COMPRESSED)


def _add(archive: zipfile.ZipFile, name: str, data: bytes, compress: bool = True) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)  # no build time: equal input, equal bytes
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data, compresslevel=1 if compress else None)


def _add_file(archive: zipfile.ZipFile, name: str, source: Path, compress: bool) -> None:
    """A file copied into the archive in chunks: an image is never held in memory whole."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    if compress:
        info._compresslevel = 1  # type: ignore[attr-defined]  # what writestr's compresslevel sets
    with open(source, "rb") as data:
        size = os.fstat(data.fileno()).st_size
        with archive.open(info, "w", force_zip64=size > 2**31) as entry:
            shutil.copyfileobj(data, entry, 1 << 20)


class PreviousPackage:
    """The notes of a package written earlier, read only if asked for: what a removed
    question last shipped as, so it can ship again unchanged but for a tag."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._notes: dict[str, dict] | None = None

    def get(self, guid: str) -> dict | None:
        """{"fields", "tags", "deck", "note_type"} of the note with this GUID, if it was there."""
        if self._notes is None:
            self._notes = self._read()
        return self._notes.get(guid)

    def _read(self) -> dict[str, dict]:
        from deckgen.notetypes import KEY_OF_MODEL_ID

        try:
            with zipfile.ZipFile(self.path) as archive:
                data = archive.read("collection.anki2")
        except (OSError, KeyError, zipfile.BadZipFile):
            return {}
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "collection.anki2"
            db.write_bytes(data)
            conn = sqlite3.connect(db)
            try:
                decks = {int(k): d["name"] for k, d in json.loads(
                    conn.execute("SELECT decks FROM col").fetchone()[0]).items()}
                rows = conn.execute(
                    "SELECT n.guid, n.mid, n.tags, n.flds, c.did FROM notes n JOIN cards c ON c.nid = n.id"
                ).fetchall()
            except (sqlite3.Error, ValueError, TypeError):
                return {}
            finally:
                conn.close()
        return {
            guid: {"fields": fields.split("\x1f"), "tags": tags.split(), "deck": decks.get(did, ""),
                   "note_type": KEY_OF_MODEL_ID.get(mid, "qa")}
            for guid, mid, tags, fields, did in rows
        }
