"""Reading source files and finding them in folders."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from deckgen.model import ERROR, WARNING, Diagnostic

_README = "readme.md"
_SKIPPED_DIRS = {"build"}


def read_source(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The text of a source file: UTF-8, BOM stripped, line endings LF, tabs kept."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [Diagnostic(path, 0, ERROR, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8: invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start}"
        return None, [Diagnostic(path, line, ERROR, message)]
    return normalize_text(text), []


def normalize_text(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def discover(paths: Sequence[Path]) -> tuple[list[tuple[Path, Path]], list[Diagnostic]]:
    """(root, file) pairs for the given files and folders, in a deterministic order.

    A file stands for itself (its root is its folder). A folder stands for every `*.md` below
    it, sorted, except README files, hidden folders and `build/` (deckgen's own output).
    """
    found: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    diagnostics: list[Diagnostic] = []

    def add(root: Path, file: Path) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            found.append((root, file))

    for given in paths:
        path = Path(given)
        if path.is_file():
            add(path.parent, path)
        elif path.is_dir():
            files = sorted(_markdown_files(path))
            if not files:
                diagnostics.append(Diagnostic(path, 0, WARNING, "no Markdown files found here"))
            for file in files:
                add(path, file)
        else:
            diagnostics.append(Diagnostic(path, 0, ERROR, "no such file or folder"))
    return found, diagnostics


def _markdown_files(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS]
        for name in filenames:
            lower = name.lower()
            if lower.endswith(".md") and not name.startswith(".") and lower != _README:
                files.append(Path(dirpath) / name)
    return files

