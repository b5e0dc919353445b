"""deckgen: Markdown articles of interview questions → Anki decks that update in place."""

import functools
from pathlib import Path

__version__ = "0.1.0"


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """This deckgen: its version and the size and time of each of its modules, so that what a
    different deckgen cached (say, before an edit of a source checkout) is not reused."""
    stats = []
    for module in sorted(Path(__file__).parent.glob("*.py")):
        stat = module.stat()
        stats.append(f"{module.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return " ".join([__version__, *stats])
