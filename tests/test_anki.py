"""What really happens in Anki: built decks imported with Anki's own importer (the `anki` package)."""
from __future__ import annotations

import os
import re
from dataclasses import replace

import pytest

from deckgen.build import build

from .conftest import FUSION, PYTHON, QUESTIONS, ROPE, article

pytest.importorskip("anki")

ROOT = "三年面试五年模拟"


def _built(project):  # noqa: ANN001, ANN202
    report = build(project.settings)
    assert not report.errors, report.errors
    return report


def _by_section(report):  # noqa: ANN001, ANN202
    return {p.stem: p for p in report.packages}


def test_every_package_imports_and_every_card_renders(project, anki):  # noqa: ANN001
    report = _built(project)
    packages = _by_section(report)
    assert set(packages) == {"深度学习基础", "Python编程基础", ROOT}

    log = anki.import_package(packages[ROOT])
    questions = sum(len(v) for v in QUESTIONS.values())
    code_notes = 2  # the python block and the bash block; the claimed output is no note
    assert len(log.new) == questions + code_notes
    assert {f"{ROOT}::深度学习基础", f"{ROOT}::Python编程基础"} <= anki.deck_names()

    fronts = []
    for card in anki.cards():
        out = card.render_output()
        assert "error" not in out.question_text.lower() or "errors" in out.question_text
        assert "front of this card is blank" not in out.question_text.lower()
        assert out.answer_text.strip()
        fronts.append(out.question_text)
    assert len(fronts) == questions + code_notes

    notes = {n["Question"]: n for n in anki.notes("deckgen Q&A")}
    rope = next(n for q, n in notes.items() if "ROPE" in q)
    assert r"\(x_i\)" in rope["Answer"] and r"\[" in rope["Answer"]
    assert "<em>" not in rope["Answer"]
    code = next(n for n in anki.notes("deckgen Code") if n["Language"] == "python")
    assert '<span class="' in code["Code"]  # Pygments markup survives the import
    assert code["Status"] == "ran"
    assert code["Output"] == '<pre class="output">{"name": "Rocky", "age": 18}\n</pre>'
    assert code["OutputCheck"] == "as the article shows" and code["ClaimedOutput"] == ""
    bash = next(n for n in anki.notes("deckgen Code") if n["Language"] == "bash")
    assert bash["Status"] == "skipped" and "never run" in bash["Reason"]


def test_section_packages_import_alone_with_their_media(project, anki):  # noqa: ANN001
    packages = _by_section(_built(project))
    log = anki.import_package(packages["Python编程基础"])
    assert len(log.new) == 4  # two questions, two code notes
    assert anki.deck_names() >= {f"{ROOT}::Python编程基础"}
    media_dir = anki.col.media.dir()
    linux = next(n for n in anki.notes("deckgen Q&A") if "Linux" in n["Question"])
    names = os.listdir(media_dir)
    assert len(names) == 1 and names[0] in linux["Answer"]
    assert not anki.col.media.check().missing


def test_rebuild_after_edits_updates_in_place_and_keeps_reviews(project, anki):  # noqa: ANN001
    first = _by_section(_built(project))[ROOT]
    anki.import_package(first)
    answered = anki.review_all()
    assert answered >= 6
    before_ids = {n["Question"]: n.id for n in anki.notes("deckgen Q&A")}
    schedule = {c.id: (c.type, c.queue, c.due, c.ivl, c.reps) for c in anki.cards()}
    revlog = anki.col.db.all("select id, cid, ease from revlog order by id")
    assert revlog

    # The article changes: an answer edited, a title's typo fixed, questions renumbered and
    # reordered, one moved to another section, one added, one removed.
    rope = ROPE.replace("其中 $w_i$ 是权重。", "其中 $w_i$ 是可学习的权重。")
    fusion = FUSION.replace("有哪些方法？", "有哪些主流方法？")
    added = "## 【{n}】新增的问题是什么？\n\n新的答案。\n\n"
    project.article.write_text(
        article(("深度学习基础", [fusion, added]), ("Python编程基础", [PYTHON, rope])),
        encoding="utf-8",
    )

    report = _built(project)
    log = anki.import_package(_by_section(report)[ROOT])
    assert not log.conflicting
    assert len(log.new) == 1  # only the added question is new
    # Anki lists a note it already has and leaves alone (no newer time) as a "duplicate": here the
    # two example notes, whose content did not change although their lines moved.
    assert sorted(n.fields[0] for n in log.duplicate) == sorted(  # Anki's log shows them as text
        re.sub(r"<[^>]*>", "", n.fields[0]) for n in report.notes if n.change == "unchanged")
    assert len(log.updated) == sum(n.change in ("updated", "renamed", "moved", "removed")
                                   for n in report.notes)

    names = [m["name"] for m in anki.col.models.all()]
    assert names.count("deckgen Q&A") == 1 and not any(n.endswith("+") for n in names)
    qa = anki.notes("deckgen Q&A")
    by_title = {n["Question"]: n for n in qa}
    assert len(qa) == len(by_title) == 5, "four questions and the removed one, no duplicates"
    # edited answer: same note, new content
    rope = next(n for t, n in by_title.items() if "ROPE" in t)
    assert rope.id == before_ids[next(t for t in before_ids if "ROPE" in t)]
    assert "可学习的权重" in rope["Answer"]
    assert "deckgen::removed" not in rope.tags
    # renamed title: same note, new title
    renamed = next(n for t, n in by_title.items() if "主流方法" in t)
    assert renamed.id == before_ids[next(t for t in before_ids if "权重融合" in t)]
    # added
    assert any("新增的问题" in t for t in by_title)
    # removed: still there, tagged for deletion, content as before
    linux = next(n for t, n in by_title.items() if "Linux" in t)
    assert "deckgen::removed" in linux.tags
    assert linux.id == before_ids[next(t for t in before_ids if "Linux" in t)]
    assert anki.col.find_notes("tag:deckgen::removed")
    # scheduling and review history untouched
    after = {c.id: (c.type, c.queue, c.due, c.ivl, c.reps) for c in anki.cards()}
    for cid, state in schedule.items():
        assert after[cid] == state
    assert anki.col.db.all("select id, cid, ease from revlog order by id") == revlog


def test_rebuild_without_changes_is_byte_identical_and_updates_nothing(no_run_project, anki):  # noqa: ANN001
    project = no_run_project
    first = {p.name: p.read_bytes() for p in _built(project).packages}
    second = {p.name: p.read_bytes() for p in _built(project).packages}
    assert first == second
    anki.import_package(project.settings.output / f"{ROOT}.apkg")
    log = anki.import_package(project.settings.output / f"{ROOT}.apkg")
    assert not log.new and not log.updated  # equal times: Anki leaves every note alone


def test_template_change_updates_the_note_type_in_place(no_run_project, anki, tmp_path):  # noqa: ANN001
    import shutil

    from deckgen.notetypes import default_templates_dir

    project = no_run_project
    anki.import_package(_built(project).packages[-1])
    templates = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), templates)
    css = templates / "card.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n.question { letter-spacing: 0.01em; }\n",
                   encoding="utf-8")
    project.settings = replace(project.settings, templates=templates)
    anki.import_package(_built(project).packages[-1])
    models = [m for m in anki.col.models.all() if m["name"].startswith("deckgen")]
    assert sorted(m["name"] for m in models) == ["deckgen Code", "deckgen Q&A"]
    qa = next(m for m in models if m["name"] == "deckgen Q&A")
    assert "letter-spacing: 0.01em" in qa["css"]
