"""Where Anki keeps a profile's collection, and opening it with Anki's own backend (`anki` on PyPI).

The backend is the code Anki's desktop app runs, so an import here follows exactly the rules of
File → Import; it is an optional extra (`pip install 'deckgen[anki]'`), imported only when used.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class CollectionError(Exception):
    """The collection cannot be used; the message is one line saying what to do."""


def anki_base(env: Mapping[str, str] | None = None, platform: str | None = None,
              home: Path | None = None) -> Path:
    """Anki's base folder, which holds one folder per profile (the places Anki itself uses)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    if env.get("ANKI_BASE"):  # Anki's own override
        return Path(env["ANKI_BASE"])
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Anki2"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Anki2"
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "Anki2"


def default_collection(base: Path | None = None) -> Path:
    """The collection of the only profile in Anki's base folder."""
    base = anki_base() if base is None else base
    profiles = sorted(p.parent for p in base.glob("*/collection.anki2"))
    if len(profiles) == 1:
        return profiles[0] / "collection.anki2"
    if not profiles:
        raise CollectionError(f"no Anki profile found in {base}: give the collection file with "
                              "--collection PATH (a profile folder's collection.anki2)")
    names = ", ".join(p.name for p in profiles)
    raise CollectionError(f"several Anki profiles in {base} ({names}): choose one with "
                          f"--collection '{profiles[0] / 'collection.anki2'}'")


def open_collection(path: Path) -> Any:  # anki.collection.Collection
    """The collection at `path`, refusing while Anki has it open."""
    try:
        from anki.collection import Collection
        from anki.errors import DBError
    except ImportError:
        raise CollectionError("pushing into a collection file needs Anki's backend: "
                              "pip install 'deckgen[anki]'") from None
    if not path.is_file():  # the backend would silently create an empty collection there
        raise CollectionError(f"no Anki collection at {path}: give a profile's collection.anki2 "
                              "with --collection")
    try:
        return Collection(str(path))
    except DBError as exc:
        if "already open" in str(exc):
            raise CollectionError(f"{path} is open in Anki: quit Anki and push again, or push into "
                                  "the running Anki through AnkiConnect (without --collection)") from None
        raise CollectionError(f"{path}: Anki cannot open it: {exc}") from None
