"""Upgrading from the captured article to the restored one: the same questions, in place, in Anki.

source/ first shipped as the lossy capture typed it: half-width punctuation (every title too:
"…哪些步骤?" for "…哪些步骤？"), no bold, bullets for numbered lists, four headings as
paragraphs, no figures. `as_captured` gives that text back from today's source/ (it reproduces
the previously shipped file byte for byte), so these tests stay true as the article evolves.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from deckgen.build import build
from deckgen.config import Settings
from deckgen.ids import Lock, normalize_key

from .conftest import REPO, Anki
from .test_source import QUESTIONS, SECTIONS, SOURCE

ROOT = "三年面试五年模拟"
HALF_WIDTH = str.maketrans("，：（）？；！", ",:()?;!")
RESTORED_HEADINGS = ("四者之间的关系：", "形象理解：", "实际应用中的协同工作：", "三者的对比：")


def as_captured(text: str) -> str:
    """The article as the capture had it, before its own formatting came back."""
    out: list[str] = []
    ordered_indent: int | None = None  # inside an item of a numbered list at this indent
    for line in text.split("\n"):
        if line.startswith("![") and out and not out[-1].strip():
            out.pop()  # a figure and the blank line before it
            continue
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped and ordered_indent is not None and indent <= ordered_indent:
            ordered_indent = None
        if ordered_indent is not None and stripped:
            line = line[1:]  # "1. " is one column wider than the "- " it replaced
        if item := re.match(r"(\s*)\d+\. ", line):
            ordered_indent = len(item.group(1))
            line = f"{item.group(1)}- {line[item.end():]}"
        if line.startswith("### ") and line[4:] in RESTORED_HEADINGS:
            line = line[4:]
        out.append(line.replace("**", "").translate(HALF_WIDTH))
    return "\n".join(out)


@pytest.mark.parametrize("title", QUESTIONS)
def test_the_capture_punctuation_of_a_title_names_the_same_question(title: str) -> None:
    captured = title.translate(HALF_WIDTH)
    assert captured != title or not set(title) & set("，：（）？；！")
    assert normalize_key(captured) == normalize_key(title)


def test_the_committed_lock_records_every_title_as_the_source_has_it() -> None:
    lock = Lock.load(REPO / "deckgen.lock")
    recorded = {key: note.title for key, note in lock.notes.items() if note.note_type == "qa"}
    assert recorded == {normalize_key(title): title for title in QUESTIONS}


def _reviewed_state(anki: Anki) -> tuple[dict, dict, list]:
    notes = {n.guid: n.id for n in anki.notes()}
    schedule = {c.id: (c.nid, c.did, c.type, c.queue, c.due, c.ivl, c.factor, c.reps, c.lapses)
                for c in anki.cards()}
    revlog = anki.col.db.all("select id, cid, ease, ivl, lastIvl, factor, type from revlog order by id")
    return notes, schedule, revlog


def test_importing_the_restored_article_over_the_captured_one_updates_every_note_in_place(
    tmp_path: Path, anki: Anki
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    article = source / SOURCE.name
    settings = Settings(sources=(source,), output=tmp_path / "build", lock=tmp_path / "deckgen.lock",
                        run_code=False)

    # the previous packages: the captured article, imported and studied
    article.write_text(as_captured(SOURCE.read_text(encoding="utf-8")), encoding="utf-8")
    before = build(settings)
    assert not before.errors
    first = anki.import_package(settings.output / f"{ROOT}.apkg")
    assert len(first.new) == len(anki.cards()) == 44  # 16 questions, 28 code examples
    answered = anki.review_all()  # every card through its learning steps, until none is due
    notes, schedule, revlog = _reviewed_state(anki)
    assert answered >= len(schedule) and len(revlog) == answered
    assert all(state[7] > 0 for state in schedule.values())  # reps
    old_titles = {n["Question"] for n in anki.notes("deckgen Q&A")}
    assert "AI绘画大模型的数据预处理都包含哪些步骤?" in old_titles

    # the restored article, built with the same lock
    article.write_text(SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copytree(SOURCE.parent / "imgs", source / "imgs")
    after = build(settings)
    assert not after.errors
    changes = sum((s.changes for s in after.sections), start=type(after.sections[0].changes)())
    # no question added, renamed or removed; the examples whose card did not change stay as they are
    assert set(changes) <= {"updated", "unchanged"}
    assert {note.change for note in after.notes} <= {"updated", "unchanged"}
    updated = sum(note.change == "updated" for note in after.notes)
    assert updated >= 16 + 20  # every question (its title's punctuation) and most examples
    log = anki.import_package(settings.output / f"{ROOT}.apkg")

    assert not log.new and not log.conflicting
    assert len(log.duplicate) == len(after.notes) - updated  # what did not change, Anki leaves alone
    assert len(log.updated) == updated  # Anki updates exactly what the build says changed
    assert _reviewed_state(anki) == (notes, schedule, revlog)  # same notes, cards, schedule, history
    qa = anki.notes("deckgen Q&A")
    assert sorted(re.sub(r"<[^>]+>", "", n["Question"]) for n in qa) == sorted(QUESTIONS)
    assert all("<strong>" in n["Answer"] for n in qa if "CogVideoX系列模型的VAE结构" in n["Question"])
    assert {anki.col.decks.name(c.did) for c in anki.cards()} == {f"{ROOT}::{s}" for s in SECTIONS}
    assert not anki.col.media.check().missing
