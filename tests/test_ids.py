"""Note identity: keys, GUIDs, the lock file, modification times."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.ids import (
    IdentityResolver,
    REMOVED_TAG,
    Lock,
    LockError,
    LockedNote,
    PlannedNote,
    guid_for_key,
    normalize_key,
    settle,
    strip_number,
)
from deckgen.model import Question

NOW = 1_800_000_000


def question(title: str, section: str = "深度学习基础", *, explicit_id: str | None = None,
             pinned: bool = False, line: int = 1) -> Question:
    key = normalize_key(explicit_id, is_id=True) if explicit_id else normalize_key(title)
    return Question(title=title, answer="答案", path=Path("a.md"), line=line, answer_line=line + 1,
                    section=section, deck=(section,), key=key, explicit_id=explicit_id, pinned=pinned)


def locked_build(questions: list[Question], lock: Lock | None = None) -> tuple[list[str], Lock]:
    """GUIDs of one build, and the lock it leaves behind."""
    lock = lock or Lock()
    identities, _ = IdentityResolver(lock).questions(questions)
    planned = [
        PlannedNote(i.key, i.previous, "qa", i.guid, q.section, (q.title, q.answer), (), q.section,
                    q.title, i)
        for q, i in zip(questions, identities)
    ]
    shipped = {n.guid: {"fields": n.fields, "tags": n.tags, "deck": n.deck, "note_type": "qa"}
               for n in planned}
    settled = settle(planned, lock, shipped, {}, NOW)
    return [i.guid for i in identities], settled.lock


@pytest.mark.parametrize(("a", "b"), [
    ("【一】ROPE位置编码有何特点？", "【十二】ROPE位置编码有何特点?"),
    ("33.Transformer Encoder 有什么子层？", "34. TransformerEncoder有什么子层?"),
    ("**ROPE** 的特点", "ROPE的特点"),
])
def test_renumbering_width_spacing_and_emphasis_keep_the_key(a: str, b: str) -> None:
    assert normalize_key(a) == normalize_key(b)


def test_heading_ids_lose_their_number_too() -> None:
    assert normalize_key("16Transformer为何使用多头？", is_id=True) == normalize_key("17.Transformer为何使用多头？")
    assert normalize_key("user-content-5.介绍一下GeLU", is_id=True) == normalize_key("介绍一下GeLU")


def test_strip_number_keeps_the_title_readable() -> None:
    assert strip_number("【二十三】 介绍一下XPU") == "介绍一下XPU"
    assert strip_number("12.什么是激活函数？") == "什么是激活函数？"
    assert strip_number("3D VAE 的结构") == "3D VAE 的结构"


def test_same_key_same_guid_across_builds_and_orders() -> None:
    qs = [question("问题甲"), question("问题乙"), question("问题丙")]
    first, lock = locked_build(qs)
    again, _ = locked_build(list(reversed(qs)), lock)
    assert dict(zip([q.key for q in qs], first)) == dict(zip([q.key for q in reversed(qs)], again))
    fresh, _ = locked_build(qs)  # no lock at all: the key alone decides
    assert fresh == first
    assert first[0] == guid_for_key(qs[0].key)


def test_guid_never_depends_on_the_answer() -> None:
    a, b = question("问题甲"), question("问题甲")
    b.answer = "完全不同的答案"
    assert locked_build([a])[0] == locked_build([b])[0]


def test_a_small_title_edit_inherits_the_guid_in_the_same_section() -> None:
    guids, lock = locked_build([question("深度学习中模型权重融合有哪些主流的方法？"), question("别的问题")])
    edited = question("深度学习中模型权重融合有哪些主流方法？")
    identities, _ = IdentityResolver(lock).questions([edited, question("别的问题")])
    assert identities[0].guid == guids[0]
    assert identities[0].renamed_from == "深度学习中模型权重融合有哪些主流的方法？"


def test_a_new_question_elsewhere_does_not_steal_a_guid() -> None:
    guids, lock = locked_build([question("深度学习中模型权重融合有哪些主流的方法？")])
    other_section = question("深度学习中模型权重融合有哪些主流方法？", section="机器学习基础")
    unrelated = question("介绍一下总变分损失的概念与作用")
    identities, _ = IdentityResolver(lock).questions([other_section, unrelated])
    assert guids[0] not in {i.guid for i in identities}
    assert all(i.renamed_from is None for i in identities)


def test_a_pinned_id_is_never_rename_matched() -> None:
    guids, lock = locked_build([question("深度学习中模型权重融合有哪些主流的方法？")])
    pinned = question("深度学习中模型权重融合有哪些主流方法？", explicit_id="fusion", pinned=True)
    identities, _ = IdentityResolver(lock).questions([pinned])
    assert identities[0].guid == guid_for_key("fusion") != guids[0]


def test_duplicate_keys_get_separate_guids_and_a_warning() -> None:
    a, b = question("同一个问题", line=3), question("同一个问题", section="机器学习基础", line=9)
    b.deck = ("机器学习基础",)
    identities, diagnostics = IdentityResolver(Lock()).questions([a, b])
    assert identities[0].guid != identities[1].guid
    assert [(d.line, d.level) for d in diagnostics] == [(9, "warning")]
    assert "duplicate question key" in diagnostics[0].message and "a.md:3" in diagnostics[0].message


def _planned(key: str, content: str, guid: str = "g1") -> PlannedNote:
    return PlannedNote(key, key, "qa", guid, "Root::S", (content,), (), "S", key)


def test_times_unchanged_notes_keep_theirs_changed_ones_move_strictly_forward() -> None:
    first = settle([_planned("k", "v1")], Lock(), {}, {}, NOW)
    assert first.notes[0].mod == NOW and first.notes[0].change == "added"
    same = settle([_planned("k", "v1")], first.lock, {}, {}, NOW + 500)
    assert same.notes[0].mod == NOW and same.notes[0].change == "unchanged"
    # a clock that went backwards (or a second build in the same second) still moves forward
    edited = settle([_planned("k", "v2")], first.lock, {}, {}, NOW - 100)
    assert edited.notes[0].mod == NOW + 1 and edited.notes[0].change == "updated"


def test_a_removed_note_ships_its_last_content_tagged_until_it_returns() -> None:
    first = settle([_planned("k", "v1"), _planned("gone", "old", guid="g2")], Lock(), {}, {}, NOW)
    shipped = {"g2": {"fields": ["old"], "tags": ["S"], "deck": "Root::S", "note_type": "qa"}}
    second = settle([_planned("k", "v1")], first.lock, shipped, {}, NOW + 10)
    removed = [n for n in second.notes if n.change == "removed"]
    assert len(removed) == 1 and removed[0].fields == ("old",) and REMOVED_TAG in removed[0].tags
    assert removed[0].mod == NOW + 10 and removed[0].guid == "g2"
    third = settle([_planned("k", "v1")], second.lock, {}, {}, NOW + 20)
    still = [n for n in third.notes if n.guid == "g2"]
    assert still[0].change == "still removed" and still[0].mod == NOW + 10
    back = settle([_planned("gone", "old", guid="g2")], third.lock, {}, {}, NOW + 30)
    assert back.notes[0].mod == NOW + 30 and "gone" not in back.lock.removed


def test_lock_file_round_trips_in_stable_order(tmp_path: Path) -> None:
    lock = Lock(notes={"b": LockedNote("g2", "B", "S", "h", 2), "a": LockedNote("g1", "A", "S", "h", 1)})
    text = lock.dumps()
    assert text.index('"a"') < text.index('"b"')
    assert Lock.parse(text, tmp_path / "deckgen.lock").dumps() == text


def test_a_corrupt_lock_file_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "deckgen.lock"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(LockError, match="restore it from git"):
        Lock.load(path)


# --- Identity follows content: same-titled questions, renames, examples -----------------------------


def qa(title: str, answer: str, section: str = "深度学习基础", line: int = 1) -> Question:
    q = question(title, section, line=line)
    q.answer = answer
    return q


LONG = "注意力机制让模型参考其他位置。它为每个位置计算权重。权重由查询与键的相似度得到。最后对值做加权求和。"
OTHER = "交叉熵衡量两个分布的差异。分类任务里最常用。它与极大似然估计等价。配合 softmax 输出使用。"


def test_a_retitled_question_continues_its_note_only_on_the_evidence_of_its_answer() -> None:
    guids, lock = locked_build([qa("介绍一下总变分损失的概念与作用", LONG)])
    same_answer = IdentityResolver(lock).questions([qa("介绍一下总变分损失的作用", LONG)])[0][0]
    assert same_answer.guid == guids[0] and same_answer.why == "same answer"
    edited = LONG.replace("最后对值做加权求和。", "最后对值求和。")
    mostly = IdentityResolver(lock).questions([qa("介绍一下总变分损失的作用", edited)])[0][0]
    assert mostly.guid == guids[0] and mostly.why == "answer 60% the same"
    different = IdentityResolver(lock).questions([qa("介绍一下交叉熵损失的概念与作用", OTHER)])[0][0]
    assert different.guid != guids[0] and different.renamed_from is None


def test_a_short_answer_alone_is_no_evidence() -> None:
    guids, lock = locked_build([qa("什么是A？", "略。")])
    assert IdentityResolver(lock).questions([qa("完全不同的问题B", "略。")])[0][0].guid != guids[0]
    assert IdentityResolver(lock).questions([qa("什么是A?？", "略。")])[0][0].guid == guids[0]


def test_an_unchanged_key_wins_over_any_rename() -> None:
    _, lock = locked_build([qa("什么是注意力机制？", LONG)])
    renamed_guids, lock = locked_build([qa("什么是自注意力机制？", LONG)], lock)
    # the old title comes back for another question, inserted before the renamed one
    guids, _ = locked_build([qa("什么是注意力机制？", OTHER), qa("什么是自注意力机制？", LONG)], lock)
    assert guids[1] == renamed_guids[0] and guids[0] != renamed_guids[0]


def test_same_titled_questions_keep_their_notes_whatever_is_inserted_around_them() -> None:
    a, b = qa("同一个问题", LONG), qa("同一个问题", OTHER)
    guids, lock = locked_build([a, b])
    c = qa("同一个问题", "第三个回答。与前两个都不同。还有一句话。")
    again, _ = locked_build([c, b, qa("别的问题", LONG), a], lock)
    assert again[1] == guids[1] and again[3] == guids[0]
    assert again[0] not in guids


def test_no_title_can_make_two_keys_meet() -> None:
    resolver = IdentityResolver(Lock())
    questions = [qa("foo", LONG), qa("foo::code1", OTHER), qa("foo #2", "x。"), qa("foo", "y。")]
    identities, _ = resolver.questions(questions)
    codes = [c for i in identities for c in resolver.code(i, ["print(1)\n", "print(1)\n"])]
    keys = [i.key for i in [*identities, *codes]]
    assert len(set(keys)) == len(keys)
    assert len({i.guid for i in [*identities, *codes]}) == len(keys)


def test_a_new_note_never_takes_a_guid_the_lock_knows() -> None:
    _, lock = locked_build([qa("问题甲", LONG)])
    lock.notes["问题甲"].guid = guid_for_key("问题乙")  # the GUID the new key would have hashed to
    identities, _ = IdentityResolver(lock).questions([qa("问题甲", LONG), qa("问题乙", OTHER)])
    assert identities[0].guid == guid_for_key("问题乙") != identities[1].guid


def test_examples_keep_their_notes_by_their_code_not_their_place() -> None:
    _, lock = locked_build([qa("如何打印？", LONG)])
    resolver = IdentityResolver(lock)
    owner = resolver.questions([qa("如何打印？", LONG)])[0][0]
    first = resolver.code(owner, ["print(1)\n", "print(2)\n"])
    planned = [PlannedNote(owner.key, owner.previous, "qa", owner.guid, "D", ("q",), (), "深度学习基础",
                           "如何打印？", owner)]
    planned += [PlannedNote(c.key, c.previous, "code", c.guid, "D", (c.body,), (), "深度学习基础",
                            "如何打印？", c) for c in first]
    lock = settle(planned, lock, {}, {}, NOW).lock
    resolver = IdentityResolver(lock)
    owner = resolver.questions([qa("如何打印？", LONG)])[0][0]
    again = resolver.code(owner, ["print(0)\n", "print(2)\n", "print(1)\n"])
    assert [c.guid for c in again[1:]] == [first[1].guid, first[0].guid]
    assert again[0].guid not in {c.guid for c in first}


def test_a_version_1_lock_keeps_every_guid(tmp_path: Path) -> None:
    """The lock deckgen shipped first (version 1, before identity followed content), building
    today's article: every note it knows keeps its GUID; the code notes of syntax templates,
    which are no longer notes, are removed (shipped tagged), never given to other code."""
    from deckgen.build import build
    from deckgen.config import Settings

    from .conftest import REPO

    lock = tmp_path / "deckgen.lock"
    lock.write_bytes((Path(__file__).parent / "fixtures" / "released-v1.lock").read_bytes())
    settings = Settings(sources=(REPO / "source",), output=tmp_path / "build", lock=lock, run_code=False,
                        cache=tmp_path / "cache")
    old = Lock.load(lock)
    report = build(settings)
    assert not report.errors
    new = Lock.load(lock)
    kept = {n.guid for n in new.notes.values()}
    # removed: without the previous package (none here) they cannot ship, and are reported lost
    removed = {n.guid for n in new.removed.values()} | {n.guid for n in report.lost}
    assert {n.guid for n in old.notes.values()} == kept | removed and not kept & removed
    assert {n.guid for n in old.notes.values() if n.note_type == "qa"} == {
        n.guid for n in new.notes.values() if n.note_type == "qa"}
    assert len(removed) == 11
    assert {n.title for n in report.lost} == {"Linux中修改用户权限的命令有哪些?"}
    assert {n.change for n in report.notes if n.note_type == "qa"} == {"updated"}  # titles' punctuation


# --- Property: whatever is inserted, deleted or reordered, the unchanged keep their GUIDs -----------

TITLES = ["什么是注意力机制？", "什么是自注意力机制？", "介绍一下总变分损失的概念与作用",
          "介绍一下交叉熵损失的概念与作用", "foo", "foo::code1", "同名问题"]
SECTIONS = ["深度学习基础", "机器学习基础"]


@dataclass(frozen=True)
class Item:
    """A question as the property sees it: its answer's prose is unique to it (the `ident`)."""

    ident: int
    title: str
    section: str
    codes: tuple[str, ...]

    def question(self) -> Question:
        prose = "".join(f"第{self.ident}号答案的第{n}句。" for n in range(4))
        codes = "".join(f"\n```python\n{code}```\n" for code in self.codes)
        return qa(self.title, prose + codes, self.section)


def _round(items: list[Item], lock: Lock) -> tuple[dict, dict, Lock]:
    """One build: GUID by item, GUID by (item, code, nth equal code), and the next lock."""
    resolver = IdentityResolver(lock)
    questions = [item.question() for item in items]
    identities, _ = resolver.questions(questions)
    planned, item_guids, code_guids = [], {}, {}
    for item, q, ident in zip(items, questions, identities):
        item_guids[item] = ident.guid
        planned.append(PlannedNote(ident.key, ident.previous, "qa", ident.guid, q.section,
                                   (q.title, q.answer), (), q.section, q.title, ident))
        seen: dict[str, int] = {}
        for code, c in zip(item.codes, resolver.code(ident, item.codes)):
            seen[code] = seen.get(code, 0) + 1
            code_guids[(item, code, seen[code])] = c.guid
            planned.append(PlannedNote(c.key, c.previous, "code", c.guid, q.section, (code,), (),
                                       q.section, q.title, c))
    shipped = {n.guid: {"fields": n.fields, "tags": [], "deck": n.deck} for n in planned}
    guids = [n.guid for n in planned]
    assert len(set(guids)) == len(guids), "two notes of one build share a GUID"
    return item_guids, code_guids, settle(planned, lock, shipped, {}, NOW).lock


codes = st.lists(st.sampled_from(["print(1)\n", "print(2)\n", "x = 1\nprint(x)\n", "import os\n"]),
                 max_size=3).map(tuple)


@st.composite
def items(draw, start: int = 0) -> list[Item]:  # noqa: ANN001
    n = draw(st.integers(0, 6))
    return [Item(start + i, draw(st.sampled_from(TITLES)), draw(st.sampled_from(SECTIONS)), draw(codes))
            for i in range(n)]


@st.composite
def edited(draw, before: list[Item], start: int) -> list[Item]:  # noqa: ANN001
    kept = [item for item in before if draw(st.booleans()) or draw(st.booleans())]  # deletions
    kept = draw(st.permutations(kept))  # reorders
    for item in draw(items(start=start)):  # inserts, anywhere, duplicate titles too
        kept.insert(draw(st.integers(0, len(kept))), item)
    result = []
    for item in kept:  # examples inserted into or removed from a kept question
        if item.ident < start and draw(st.integers(0, 3)) == 0:
            extra = draw(codes)
            at = draw(st.integers(0, len(item.codes)))
            item = Item(item.ident, item.title, item.section, item.codes[:at] + extra + item.codes[at:])
        result.append(item)
    return result


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_inserts_deletions_reorders_and_duplicate_titles_never_move_a_guid(data) -> None:  # noqa: ANN001
    first = data.draw(items())
    item_guids, code_guids, lock = _round(first, Lock())
    for round_ in (1, 2):
        second = data.draw(edited(first, start=1000 * round_))
        new_items, new_codes, lock = _round(second, lock)
        for item in second:
            if item in item_guids:  # unchanged: the same title, section, answer and examples
                assert new_items[item] == item_guids[item], item
        for (item, code, nth), guid in new_codes.items():
            same_question = next((old for old in item_guids if old.ident == item.ident), None)
            if same_question is not None and (same_question, code, nth) in code_guids:
                # an example kept in its question keeps its note (the n-th of equal examples, the
                # n-th note of that code)
                assert guid == code_guids[(same_question, code, nth)], (item, code)
        gone = {item_guids[i] for i in first if not any(j.ident == i.ident for j in second)}
        # (a same-titled newcomer may continue a deleted one: one title, one note, the answer edited)
        added = {new_items[i] for i in second if i.ident >= 1000 * round_
                 and not any(old.title == i.title for old in first)}
        assert not gone & added, "a new question took the note of a deleted one"
        first, item_guids, code_guids = second, new_items, new_codes


def test_hundreds_of_same_titled_questions_keep_their_notes_by_answer() -> None:
    many = [qa("代码示例", f"第{i}个示例的说明。") for i in range(150)]
    guids, lock = locked_build(many)
    again, _ = locked_build([qa("代码示例", "新的一个。"), *reversed(many)], lock)
    assert again[1:] == list(reversed(guids)) and again[0] not in guids


def test_among_notes_with_the_same_answer_the_closer_title_continues() -> None:
    guids, lock = locked_build([qa("什么是位置编码？", LONG), qa("介绍一下损失函数", LONG)])
    identities, _ = IdentityResolver(lock).questions([qa("介绍一下损失函数的作用", LONG)])
    assert identities[0].guid == guids[1]


def test_identical_questions_in_different_files_keep_their_notes_by_deck() -> None:
    """The knowledge base repeats a question, answer and all, in several files of one section."""
    def copy(file: str) -> Question:
        q = qa("python中assert的作用?", LONG, "编程基础")
        q.deck = ("编程基础", file)
        return q

    def run(questions: list[Question], lock: Lock) -> tuple[list[str], Lock]:
        identities, _ = IdentityResolver(lock).questions(questions)
        planned = [PlannedNote(i.key, i.previous, "qa", i.guid, "Root::" + "::".join(q.deck),
                               (q.title, q.answer), (), q.section, q.title, i)
                   for q, i in zip(questions, identities)]
        return [i.guid for i in identities], settle(planned, lock, {}, {}, NOW).lock

    guids, lock = run([copy("基础"), copy("进阶")], Lock())
    again, _ = run([copy("新文件"), copy("基础"), copy("进阶")], lock)
    assert again[1:] == guids and again[0] not in guids
