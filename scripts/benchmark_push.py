#!/usr/bin/env python3
"""Benchmark `deckgen push` through each route: prints figures, asserts nothing.

    python scripts/benchmark_push.py                        # the knowledge base in ../shared/kb
    python scripts/benchmark_push.py --corpus path/to/kb    # a checkout of your own
    python scripts/benchmark_push.py --no-desktop           # the closed-collection route only

The corpus is copied to a temporary folder and built once with --no-run (not timed). Then, each
push its own process (`deckgen push …`, as a user runs it; wall time includes start-up and the
up-to-date check of the build): into a fresh collection file (the `anki` extra), into real Anki
desktop started headless with AnkiConnect (the `desktop-test` extra and ../shared/vendor, via the
tests' helper), each once fresh and once with nothing changed; then one file edited, rebuilt and
pushed through each route. For comparison, AnkiConnect's note API on the same notes: reading
them (findNotes + notesInfo) and rewriting every note's fields (updateNoteFields in one multi).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# ../shared beside the project, or beside a folder above it (a worktree)
KB = next((p / "shared" / "kb" for p in REPO.parents if (p / "shared" / "kb").is_dir()),
          REPO.parent / "shared" / "kb")


def push(args: list[str], cwd: Path) -> tuple[float, str]:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "deckgen", "push", *args], capture_output=True,
                         text=True, cwd=cwd)
    elapsed = time.monotonic() - started
    lines = out.stdout.strip().splitlines()
    anki = next((line for line in reversed(lines) if line.startswith("Anki:")), out.stderr.strip())
    return elapsed, anki


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=KB)
    parser.add_argument("--no-desktop", action="store_true", help="skip the AnkiConnect route")
    options = parser.parse_args()
    from anki.collection import Collection

    with tempfile.TemporaryDirectory(prefix="deckgen-push-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "kb"
        shutil.copytree(options.corpus, corpus)
        common = [str(corpus), "-o", str(work / "build"), "--lock", str(work / "kb.lock"), "--no-run"]
        subprocess.run([sys.executable, "-m", "deckgen", "build", *common], capture_output=True, check=True)
        collection = work / "profile" / "collection.anki2"
        collection.parent.mkdir()
        Collection(str(collection)).close()
        routes = {"collection": ["--collection", str(collection)]}
        anki = None
        if not options.no_desktop:
            from tests import anki_desktop

            try:
                anki = anki_desktop.start(work / "desktop", key="bench")
                routes["ankiconnect"] = ["--url", anki.url, "--key", anki.key]
            except anki_desktop.CannotStart as exc:
                print(f"ankiconnect: skipped: {exc}")
        try:
            for route, args in routes.items():
                for label in ("fresh", "unchanged"):
                    elapsed, anki_line = push(common + args, work)
                    print(f"{route:12} {label:10} {elapsed:6.2f} s   {anki_line}", flush=True)
            edited = max((p for p in corpus.rglob("*.md") if "README" not in p.name), key=lambda p: p.stat().st_size)
            edited.write_text(edited.read_text(encoding="utf-8") + "\n\n补充一句。\n", encoding="utf-8")
            for index, (route, args) in enumerate(routes.items()):
                elapsed, anki_line = push(common + args, work)
                label = "edited" if index == 0 else "edited*"
                print(f"{route:12} {label:10} {elapsed:6.2f} s   {anki_line}", flush=True)
            if len(routes) > 1:
                print("(* the rebuild after the edit is timed with the first route only)")
            if anki is not None:
                note_api(anki)
        finally:
            if anki is not None:
                anki.stop()


def note_api(anki) -> None:  # noqa: ANN001 - tests.anki_desktop.RunningAnki
    from deckgen.ankiconnect import AnkiConnect

    client = AnkiConnect(anki.url, anki.key)
    started = time.monotonic()
    info = client.call("notesInfo", notes=client.call("findNotes", query="deck:*"), timeout=600)
    read = time.monotonic() - started
    actions = [{"action": "updateNoteFields", "key": anki.key,
                "params": {"note": {"id": n["noteId"], "fields": {k: v["value"] for k, v in n["fields"].items()}}}}
               for n in info]
    started = time.monotonic()
    client.call("multi", actions=actions, timeout=1800)
    print(f"note API     read {len(info)} notes {read:.2f} s; rewrite every note's fields "
          f"{time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    main()
