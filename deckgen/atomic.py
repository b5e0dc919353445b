"""Writing a build's files all or nothing.

Every file a build writes (each package, the lock) is first written complete under a temporary
name beside its target; only when all are written are they moved into place. A failure before
that (a full disk, a read-only folder, Ctrl-C) removes the temporary files and leaves every
target as it was. The moves themselves are renames, each atomic; a crash between two of them
would leave some targets new and others old, so before the first move the list of moves is
written to a journal, and the next build finishes the moves it names (`finish_pending`).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: builds at once are not kept apart
    fcntl = None  # type: ignore[assignment]

JOURNAL_NAME = "pending-moves.json"


def _default_mode() -> int:
    """The permission bits a new file gets under this process's umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _mode_for(target: Path) -> int:
    """A rewritten file keeps its permission bits; a new one gets the umask's."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        return _default_mode()


def _sync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write one file whole or not at all; no temporary file survives a failure."""
    with Staging(None) as staging:
        staging.write(path, data)
        staging.commit()


class Staging:
    """The files of one build, staged beside their targets and moved into place together.

    Use as a context manager: leaving it without `commit()` (an exception) removes every staged
    file. `journal`: where the pending moves are recorded while they happen (None: no journal,
    for a single file, whose one rename is atomic anyway).
    """

    def __init__(self, journal: Path | None) -> None:
        self.journal = journal
        self.staged: dict[Path, Path] = {}  # target → temporary file beside it
        self.moving = False  # once moves begin, the journal (not a discard) decides what is left

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.moving:
            self.discard()

    def path(self, target: Path) -> Path:
        """A new, empty temporary file beside `target`, to be written by anyone (a worker
        process too), and moved onto `target` by `commit()`."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        self.staged[target] = Path(name)
        return Path(name)

    def write(self, target: Path, data: bytes | str) -> None:
        temporary = self.path(target)
        with open(temporary, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)

    def commit(self) -> None:
        """Move every staged file onto its target. The staged files must be complete."""
        for target, temporary in self.staged.items():
            os.chmod(temporary, _mode_for(target))
            _sync(temporary)
        if self.journal is None or len(self.staged) < 2:
            self._move()
            return
        with _exclusive(self.journal):  # another build's moves are finished before ours begin
            _finish(self.journal)
            moves = [[str(t), str(s)] for t, s in self.staged.items()]
            write_atomic(self.journal, json.dumps(moves, ensure_ascii=False))
            self.moving = True
            self._move()
            self.journal.unlink()

    def _move(self) -> None:
        for target, temporary in self.staged.items():
            os.replace(temporary, target)
        if os.name == "posix":  # (a folder cannot be opened for syncing elsewhere)
            for folder in {target.parent for target in self.staged}:
                _sync(folder)

    def discard(self) -> None:
        for temporary in self.staged.values():
            try:
                temporary.unlink()
            except FileNotFoundError:
                pass


def finish_pending(journal: Path) -> list[Path]:
    """Finish the moves of a build that stopped in the middle of them; the targets moved."""
    if not journal.exists():
        return []
    with _exclusive(journal):
        return _finish(journal)


def _finish(journal: Path) -> list[Path]:
    try:
        moves = json.loads(journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        moves = []  # a journal is written whole before any move: a broken one has no moves done
    finished = []
    for target, temporary in moves:
        if os.path.exists(temporary):
            os.replace(temporary, target)
            finished.append(Path(target))
    journal.unlink()
    return finished


@contextlib.contextmanager
def _exclusive(journal: Path) -> Iterator[None]:
    """Held while a journal is written, its moves made and it is removed: builds running at
    once take turns, so none finishes (or removes) the journal of moves another is making."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(journal.with_name(journal.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (closing releases the lock)
