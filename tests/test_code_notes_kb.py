"""The knowledge base built with --no-run, as the README recommends, imported into real Anki:
its code notes still answer, and Anki finds no duplicates among them."""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

from deckgen.build import build
from deckgen.config import Settings

from .conftest import REPO

KB = Path(os.environ.get("DECKGEN_KB", REPO.parent / "shared" / "kb"))


def _text(field: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", field)).strip()


def test_the_knowledge_base_code_notes_answer_without_running(tmp_path: Path, anki) -> None:  # noqa: ANN001
    from anki.lang import set_lang

    if not KB.is_dir():
        pytest.skip(f"{KB} is not here (../shared/kb, see ../shared/docs/kb.md)")
    settings = Settings(sources=(KB,), output=tmp_path / "build", lock=tmp_path / "kb.lock",
                        root="三年面试五年模拟", run_code=False)
    report = build(settings)
    assert not report.errors
    log = anki.import_package(settings.output / "三年面试五年模拟.apkg")
    assert not log.conflicting
    code = anki.notes("deckgen Code")
    assert len(code) == sum(sum(s.code_notes.values()) for s in report.sections) > 500
    # The answer: the article's explanation (ExitCode field) or, failing that, the comments the
    # front left out (RawCode); nothing ran, so no output.
    unanswered = [n for n in code if not (_text(n["ExitCode"]) or _text(n["RawCode"]))]
    assert len(unanswered) <= len(code) // 100
    without_explanation = [n for n in code if not _text(n["ExitCode"])]
    assert len(without_explanation) <= len(code) // 100
    dropped = sum(sum(s.code_dropped.values()) for s in report.sections)
    assert dropped > 0  # syntax templates, data, output: counted, not lost
    set_lang("en")
    assert anki.col.find_dupes("Question", '"note:deckgen Code"') == []
