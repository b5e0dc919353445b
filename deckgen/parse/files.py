"""Reading source files and finding them in folders."""
from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from deckgen.model import ERROR, WARNING, Diagnostic

_README = "readme.md"
_SKIPPED_DIRS = {"build"}
_NOT_A_FILE = "not a regular file (a named pipe, socket or device): skipped"

# What a build reads, bounded. A paragraph's inline Markdown costs up to ~40 s and ~400 MB per
# MB in its densest forms (a link every 7 characters, `[` left open: scripts/benchmark.py
# --long-lines), so a line, a paragraph at most, is refused past MAX_LINE_CHARS; past
# MAX_SOURCE_BYTES a file is no article (the knowledge base's largest file is 160 KB, its longest
# line 1,239 characters).
MAX_SOURCE_BYTES = 16_000_000
MAX_LINE_CHARS = 1_000_000


def read_source(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The text of a source file: UTF-8, BOM stripped, line endings LF, tabs kept. Only a
    regular file of at most MAX_SOURCE_BYTES is read (a named pipe would block the build), and
    one with a line longer than MAX_LINE_CHARS is refused."""
    try:
        data = _read_regular(Path(path))
    except OSError as exc:
        return None, [Diagnostic(path, 0, ERROR, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8: invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start}"
        return None, [Diagnostic(path, line, ERROR, message)]
    text = normalize_text(text)
    if len(text) > MAX_LINE_CHARS:
        for line, length in enumerate(map(len, text.split("\n")), start=1):
            if length > MAX_LINE_CHARS:
                message = (f"a line of {length:,} characters; deckgen reads lines of at most "
                           f"{MAX_LINE_CHARS:,} characters: break it into paragraphs")
                return None, [Diagnostic(path, line, ERROR, message)]
    return text, []


def _read_regular(path: Path) -> bytes:
    # O_NONBLOCK: opening a named pipe would wait for a writer; it is refused instead.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file (a named pipe or a device): only files are read")
        if info.st_size > MAX_SOURCE_BYTES:
            raise OSError(0, f"the file is {info.st_size / 1e6:.1f} MB; deckgen reads source files "
                             f"of at most {MAX_SOURCE_BYTES / 1e6:g} MB: split it into several files")
        return handle.read(MAX_SOURCE_BYTES + 1)


def is_regular_file(path: Path) -> bool:
    """A regular file (or a link to one): not a folder, named pipe, socket or device."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


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
        if path.is_dir():
            files = sorted(_markdown_files(path))
            if not files:
                diagnostics.append(Diagnostic(path, 0, WARNING, "no Markdown files found here"))
            for file in files:
                if is_regular_file(file):
                    add(path, file)
                else:
                    diagnostics.append(Diagnostic(file, 0, WARNING, _NOT_A_FILE))
        elif is_regular_file(path):
            add(path.parent, path)
        elif path.exists():
            diagnostics.append(Diagnostic(path, 0, ERROR, _NOT_A_FILE))
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

