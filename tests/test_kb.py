"""The whole knowledge base (../shared/kb, skipped when absent): every question has a card of its
own, no card merges two or asks a bare part title, no file is silent, warnings are right.

One build of the knowledge base serves every test (load_sources, no code run: ~3 s)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.kb_audit import Audit, audit, build, headings, loose

KB = Path(os.environ.get("DECKGEN_KB", Path(__file__).resolve().parents[2] / "shared" / "kb"))

pytestmark = pytest.mark.skipif(not KB.is_dir(), reason=f"{KB} is absent (set DECKGEN_KB)")


@pytest.fixture(scope="module")
def kb() -> tuple:
    corpus, html = build(KB)
    return corpus, html, audit(KB, corpus, html)


def test_questions_without_a_card_are_few_and_each_warned_at_its_line(kb: tuple) -> None:
    *_, result = kb
    result: Audit
    assert result.counted > 1000
    assert len(result.without_card) <= 0.005 * result.counted, result.without_card
    assert all(warned for *_, warned in result.without_card), result.without_card
    assert result.empty_unwarned == []
    assert result.exact >= 0.995 * result.counted


def test_no_card_merges_questions_or_asks_a_bare_part_title(kb: tuple) -> None:
    *_, result = kb
    assert result.merged == []
    assert result.bare == []
    assert result.not_counted == []


def test_no_file_is_silent(kb: tuple) -> None:
    *_, result = kb
    assert result.silent_files == []


def test_no_card_shows_raw_stars_and_the_unclosed_ones_are_warned(kb: tuple) -> None:
    corpus, _, result = kb
    assert result.raw_marks["**"] == []
    # the one bold heading left unclosed upstream (`### **3. \`requires_grad=True\``) is read as
    # meant, and warned at its line
    warned = [d for d in corpus.diagnostics if "unclosed `**` in the heading" in d.message]
    assert [(Path(d.path).name, d.line) for d in warned] == [("深度学习框架知识点.md", 1668)]


def test_warnings_do_not_mislead(kb: tuple) -> None:
    corpus, *_ = kb
    texts: dict[Path, list[str]] = {}
    for diagnostic in corpus.diagnostics:
        path = Path(diagnostic.path)
        if diagnostic.message.startswith("unbalanced `\\]`"):
            lines = texts.setdefault(path, path.read_text(encoding="utf-8-sig").split("\n"))
            # not the escaped bracket of a link's text
            assert not re.search(r"\[[^\]]*\\\][^\]]*\]\(", lines[diagnostic.line - 1]), diagnostic
        if diagnostic.message.startswith("TOC entry without a question: "):
            # a chapter or any heading of the file is not a missing question
            title = diagnostic.message.split(": ", 1)[1]
            found = {loose(h.title) for h in headings(path.read_text(encoding="utf-8-sig"))}
            assert loose(title) not in found, diagnostic
