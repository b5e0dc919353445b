"""Edit sequences a user makes, each built in turn against one lock file and imported into real
Anki with reviews in between: history stays with its question, and Anki updates exactly the
notes whose content changed (as the build summary and `deckgen status` said it would)."""
from __future__ import annotations

import html
import re

import pytest

from deckgen.build import build, status
from deckgen.summary import ANKI_ADDS, ANKI_UPDATES

from .conftest import article

pytest.importorskip("anki")

ROOT = "三年面试五年模拟"

ATTENTION = """## 【{n}】什么是注意力机制？

注意力机制让模型在处理一个位置时参考其他位置。它为每个位置计算权重。权重由查询与键的相似度得到。
最后对值做加权求和。

"""
SELF_ATTENTION = ATTENTION.replace("什么是注意力机制？", "什么是自注意力机制？")
NEW_ATTENTION = """## 【{n}】什么是注意力机制？

这是另一篇文章里的同名问题。它讲的是人类视觉的注意力。与模型无关。心理学中早有研究。

"""
TV_LOSS = """## 【{n}】介绍一下总变分损失的概念与作用

总变分损失衡量图像相邻像素的差异。它让生成的图像更平滑。常用于风格迁移与超分辨率。
权重过大会让图像过度模糊。

"""
CE_LOSS = """## 【{n}】介绍一下交叉熵损失的概念与作用

交叉熵损失衡量两个概率分布的差异。分类任务里最常用。它与极大似然估计等价。
配合 softmax 输出使用。

"""
LOSS = """## 【{n}】损失函数有什么用？

损失函数衡量预测与真实值的差距。训练就是让它变小。

"""
EXAMPLE = """## 【{n}】如何打印一个字典？

用 print：

```python
print({"a": 1})
```

"""
EXAMPLE_INSERTED = """## 【{n}】如何打印一个字典？

先看 json 的写法：

```python
import json
print(json.dumps({"b": 2}))
```

用 print：

```python
print({"a": 1})
```

"""
FOO = """## 【{n}】foo

一个带代码的问题。

```python
print("foo")
```

"""
FOO_CODE1 = """## 【{n}】foo::code1

一个标题很怪的问题。它的答案与上面的不同。

"""


def _text(*questions: str) -> str:
    return article(("深度学习基础", list(questions)))


class Session:
    """One user: one source, one lock file, one Anki collection that imports every build."""

    def __init__(self, project, anki) -> None:  # noqa: ANN001
        self.project, self.anki = project, anki

    def step(self, text: str) -> dict[str, str]:
        """Write the source, check `deckgen status`, build, import, review; returns guid → change."""
        self.project.article.write_text(text, encoding="utf-8")
        predicted = {n.guid: n.change for n in status(self.project.settings).notes}
        before = self._snapshot()
        report = build(self.project.settings)
        assert not report.errors, report.errors
        changes = {n.guid: n.change for n in report.notes}
        assert predicted == changes, "deckgen status said otherwise"
        log = self.anki.import_package(self.project.settings.output / f"{ROOT}.apkg")
        assert not log.conflicting
        guid = {nid: self.anki.col.get_note(nid).guid for nid in self.anki.col.find_notes("")}
        assert {guid[n.id.nid] for n in log.new} == {g for g, c in changes.items() if c in ANKI_ADDS}
        assert {guid[n.id.nid] for n in log.updated} == {g for g, c in changes.items() if c in ANKI_UPDATES}
        # Every note Anki had keeps its id, its cards' scheduling and the review log.
        after = self._snapshot()
        for g, (nid, schedule) in before["notes"].items():
            assert after["notes"][g] == (nid, schedule), f"note {g} lost its history"
        assert after["revlog"][:len(before["revlog"])] == before["revlog"]
        assert self.anki.review_all() > 0 or not log.new
        return changes

    def note(self, title: str, note_type: str = "deckgen Q&A"):  # noqa: ANN201
        # a code note's first field is its question's title and a label of its code
        found = [n for n in self.anki.notes(note_type)
                 if re.sub(r'<span class="which">.*?</span>', "", n["Question"]) == title
                 and "deckgen::removed" not in n.tags]
        assert len(found) == 1, [n["Question"] for n in found]
        return found[0]

    def _snapshot(self) -> dict:
        col = self.anki.col
        notes = {}
        for nid in col.find_notes(""):
            cards = sorted((c.id, c.type, c.queue, c.due, c.ivl, c.reps, c.did)
                           for c in (col.get_card(cid) for cid in col.card_ids_of_note(nid)))
            notes[col.get_note(nid).guid] = (nid, cards)
        return {"notes": notes, "revlog": col.db.all("select id, cid, ease from revlog order by id")}


@pytest.fixture
def session(no_run_project, anki):  # noqa: ANN001, ANN201
    return Session(no_run_project, anki)


def _kinds(changes: dict[str, str]) -> list[str]:
    return sorted(c for c in changes.values() if c in ANKI_ADDS | ANKI_UPDATES)


def test_a_renamed_question_keeps_its_note_when_its_old_title_is_reused(session):  # noqa: ANN001
    session.step(_text(ATTENTION, LOSS))
    reviewed = session.note("什么是注意力机制？").id
    assert _kinds(session.step(_text(SELF_ATTENTION, LOSS))) == ["renamed"]
    assert session.note("什么是自注意力机制？").id == reviewed
    assert _kinds(session.step(_text(NEW_ATTENTION, SELF_ATTENTION, LOSS))) == ["added"]
    assert session.note("什么是自注意力机制？").id == reviewed
    assert session.note("什么是注意力机制？").id != reviewed


def test_a_same_titled_question_inserted_before_takes_nothing(session):  # noqa: ANN001
    session.step(_text(LOSS, ATTENTION))
    reviewed = session.note("什么是注意力机制？").id
    assert _kinds(session.step(_text(NEW_ATTENTION, LOSS, ATTENTION))) == ["added"]
    mine = [n for n in session.anki.notes("deckgen Q&A") if n["Question"] == "什么是注意力机制？"]
    assert [n.id for n in mine if "参考其他位置" in n["Answer"]] == [reviewed]
    # and the first one removed again: the other keeps its note still
    assert _kinds(session.step(_text(LOSS, ATTENTION))) == ["removed"]
    assert session.note("什么是注意力机制？").id == reviewed


def test_an_example_inserted_before_keeps_the_unchanged_one_its_note(session):  # noqa: ANN001
    session.step(_text(EXAMPLE, LOSS))
    code = session.note("如何打印一个字典？", "deckgen Code")
    reviewed = code.id
    changes = session.step(_text(EXAMPLE_INSERTED, LOSS))
    assert _kinds(changes) == ["added", "updated"]  # the new example; the question's answer
    codes = {html.unescape(re.sub(r"<[^>]*>", "", n["Code"])).strip(): n.id
             for n in session.anki.notes("deckgen Code")}
    assert codes['print({"a": 1})'] == reviewed
    assert len(codes) == 2


def test_a_different_question_with_a_look_alike_title_is_a_new_note(session):  # noqa: ANN001
    session.step(_text(TV_LOSS, LOSS))
    reviewed = session.note("介绍一下总变分损失的概念与作用").id
    assert _kinds(session.step(_text(CE_LOSS, LOSS))) == ["added", "removed"]
    assert session.note("介绍一下交叉熵损失的概念与作用").id != reviewed
    removed = session.anki.col.get_note(reviewed)
    assert "deckgen::removed" in removed.tags and "总变分" in removed["Question"]


def test_no_title_makes_two_notes_meet(session):  # noqa: ANN001
    changes = session.step(_text(FOO, FOO_CODE1))
    assert _kinds(changes) == ["added"] * 3
    assert len(session.anki.notes()) == 3


def test_a_one_sentence_edit_updates_exactly_one_note(session):  # noqa: ANN001
    questions = [ATTENTION, TV_LOSS, EXAMPLE, LOSS, FOO]
    session.step(_text(*questions))
    edited = TV_LOSS.replace("常用于风格迁移与超分辨率。", "常用于风格迁移与超分辨率。它也用于去噪。")
    changes = session.step(_text(ATTENTION, edited, EXAMPLE, LOSS, FOO))  # every later line moves
    assert _kinds(changes) == ["updated"]
    assert "它也用于去噪" in session.note("介绍一下总变分损失的概念与作用")["Answer"]


def test_a_removed_question_that_returns_gets_its_notes_back(session):  # noqa: ANN001
    session.step(_text(EXAMPLE, LOSS))
    reviewed = {session.note("如何打印一个字典？").id, session.note("如何打印一个字典？", "deckgen Code").id}
    assert _kinds(session.step(_text(LOSS))) == ["removed", "removed"]
    assert _kinds(session.step(_text(LOSS, FOO_CODE1))) == ["added"]  # still removed: nothing to do
    assert _kinds(session.step(_text(EXAMPLE, LOSS, FOO_CODE1))) == ["restored", "restored"]
    back = {session.note("如何打印一个字典？").id, session.note("如何打印一个字典？", "deckgen Code").id}
    assert back == reviewed


def test_a_sentence_added_to_the_article_updates_one_note(no_run_project, anki, tmp_path):  # noqa: ANN001
    """The issue's measurement: one sentence added near the top of the shipped article moved the
    lines of 54 other notes, and Anki updated all 54."""
    import shutil
    from dataclasses import replace

    from .conftest import REPO

    source = tmp_path / "article"
    shutil.copytree(REPO / "source", source)
    project = no_run_project
    project.settings = replace(project.settings, sources=(source,))
    path = next(source.glob("*.md"))
    text = path.read_text(encoding="utf-8")
    build(project.settings)
    anki.import_package(project.settings.output / f"{ROOT}.apkg")
    anki.review_all()
    heading = "## 【一】AI绘画大模型的数据预处理都包含哪些步骤？\n"
    assert heading in text
    path.write_text(text.replace(heading, heading + "\n这是新加的一句话。\n"), encoding="utf-8")
    report = build(project.settings)
    log = anki.import_package(project.settings.output / f"{ROOT}.apkg")
    assert not log.new and len(log.updated) == 1
    assert [n.title for n in report.notes if n.change != "unchanged"] == [
        "AI绘画大模型的数据预处理都包含哪些步骤？"]
    assert len(log.duplicate) == len(report.notes) - 1  # every other note: Anki leaves it alone
