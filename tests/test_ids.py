"""Note identity: keys, GUIDs, the lock file, modification times."""
from __future__ import annotations

from pathlib import Path

import pytest

from deckgen.ids import (
    REMOVED_TAG,
    Lock,
    LockError,
    LockedNote,
    PlannedNote,
    guid_for_key,
    normalize_key,
    resolve_identities,
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
    identities, _ = resolve_identities(questions, lock)
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
    identities, _ = resolve_identities([edited, question("别的问题")], lock)
    assert identities[0].guid == guids[0]
    assert identities[0].renamed_from == "深度学习中模型权重融合有哪些主流的方法？"


def test_a_new_question_elsewhere_does_not_steal_a_guid() -> None:
    guids, lock = locked_build([question("深度学习中模型权重融合有哪些主流的方法？")])
    other_section = question("深度学习中模型权重融合有哪些主流方法？", section="机器学习基础")
    unrelated = question("介绍一下总变分损失的概念与作用")
    identities, _ = resolve_identities([other_section, unrelated], lock)
    assert guids[0] not in {i.guid for i in identities}
    assert all(i.renamed_from is None for i in identities)


def test_a_pinned_id_is_never_rename_matched() -> None:
    guids, lock = locked_build([question("深度学习中模型权重融合有哪些主流的方法？")])
    pinned = question("深度学习中模型权重融合有哪些主流方法？", explicit_id="fusion", pinned=True)
    identities, _ = resolve_identities([pinned], lock)
    assert identities[0].guid == guid_for_key("fusion") != guids[0]


def test_duplicate_keys_get_separate_guids_and_a_warning() -> None:
    a, b = question("同一个问题", line=3), question("同一个问题", section="机器学习基础", line=9)
    b.deck = ("机器学习基础",)
    identities, diagnostics = resolve_identities([a, b], Lock())
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
