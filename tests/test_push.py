"""`deckgen push` into a closed collection file (Anki's own backend), and its messages."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from deckgen.cli import main
from deckgen.collection import CollectionError, anki_base, default_collection

from .conftest import FUSION, PYTHON, ROPE, Anki, article

ROOT = "三年面试五年模拟"


def write_pyproject(project, extra: str = "") -> None:  # noqa: ANN001
    (project.root / "pyproject.toml").write_text(
        '[tool.deckgen]\nsources = ["source"]\noutput = "build"\nlock = "deckgen.lock"\n'
        f"run_code = false\n{extra}",
        encoding="utf-8",
    )


def push(project, *args: str, input: str | None = None):  # noqa: ANN001, ANN201, A002
    write_pyproject(project)
    return CliRunner().invoke(main, ["--config", str(project.root / "pyproject.toml"), "push", *args],
                              input=input)


def edit_article(project) -> None:  # noqa: ANN001
    """An answer edited, a title's typo fixed, questions reordered, one added, Linux removed."""
    rope = ROPE.replace("其中 $w_i$ 是权重。", "其中 $w_i$ 是可学习的权重。")
    fusion = FUSION.replace("有哪些方法？", "有哪些主流方法？")
    added = "## 【{n}】新增的问题是什么？\n\n新的答案。\n\n"
    project.article.write_text(
        article(("深度学习基础", [fusion, added]), ("Python编程基础", [PYTHON, rope])), encoding="utf-8")


def snapshot(anki: Anki) -> tuple[dict, dict, list]:
    notes = {n.guid: n.id for n in anki.notes()}
    schedule = {c.id: (c.nid, c.did, c.type, c.queue, c.due, c.ivl, c.reps, c.factor) for c in anki.cards()}
    revlog = anki.col.db.all("select id, cid, ease, ivl, type from revlog order by id")
    return notes, schedule, revlog


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    pytest.importorskip("anki")
    path = tmp_path / "profile" / "collection.anki2"
    Anki(path).close()
    return path


def test_push_into_a_fresh_collection_then_again_after_reviews_and_edits(no_run_project, collection):  # noqa: ANN001
    project = no_run_project
    first = push(project, "--collection", str(collection))
    assert first.exit_code == 0, first.output
    assert "深度学习基础: 2 questions (2 added)" in first.output  # the build's summary
    assert f"Anki: 6 notes added, 0 updated, 0 unchanged; 6 deckgen notes under {ROOT}" in first.output

    anki = Anki(collection)
    linux = next(n for n in anki.notes("deckgen Q&A") if "Linux" in n["Question"])
    media = os.listdir(anki.col.media.dir())
    assert len(media) == 1 and media[0] in linux["Answer"]  # the image came along
    assert anki.review_all() >= 6
    notes, schedule, revlog = snapshot(anki)
    anki.close()

    edit_article(project)
    second = push(project, "--collection", str(collection))
    assert second.exit_code == 0, second.output
    assert "removed   'Linux中修改用户权限的命令有哪些？'" in second.output
    # Anki updates what changed (the package's time is newer) and leaves the rest alone.
    assert f"Anki: 1 note added, 4 updated, 2 unchanged; 7 deckgen notes under {ROOT}" in second.output

    anki = Anki(collection)
    try:
        after_notes, after_schedule, after_revlog = snapshot(anki)
        assert {g: after_notes[g] for g in notes} == notes  # every note kept its id
        assert len(after_notes) == 7  # one added, none duplicated
        assert {c: after_schedule[c] for c in schedule} == schedule  # scheduling untouched
        assert after_revlog == revlog
        by_title = {n["Question"]: n for n in anki.notes("deckgen Q&A")}
        rope = next(n for t, n in by_title.items() if "ROPE" in t)
        assert "可学习的权重" in rope["Answer"]  # the edit arrived
        assert any("主流方法" in t for t in by_title)
        linux = next(n for t, n in by_title.items() if "Linux" in t)
        assert linux.has_tag("deckgen::removed")
    finally:
        anki.close()

    # Pushing the same build again changes nothing (Anki updates only newer notes).
    third = push(project, "--collection", str(collection))
    assert third.exit_code == 0, third.output
    assert "Anki: 0 notes added, 0 updated, 7 unchanged;" in third.output
    anki = Anki(collection)
    assert snapshot(anki) == (after_notes, after_schedule, after_revlog)
    anki.close()


def test_prune_deletes_exactly_deckgens_removed_notes_under_the_root(no_run_project, collection):  # noqa: ANN001
    project = no_run_project
    assert push(project, "--collection", str(collection)).exit_code == 0
    edit_article(project)
    assert push(project, "--collection", str(collection)).exit_code == 0

    anki = Anki(collection)
    removed = {n.id for n in anki.notes() if n.has_tag("deckgen::removed")}
    assert len(removed) == 2  # the Linux question and its bash code note
    # Not deckgen's to delete: a note of another type with the tag, under the root deck...
    basic = anki.col.new_note(anki.col.models.by_name("Basic"))
    basic["Front"], basic.tags = "my own note", ["deckgen::removed"]
    anki.col.add_note(basic, anki.col.decks.id(ROOT))
    # ...and one of deckgen's removed notes that the user moved out of the root deck.
    code = next(n for n in anki.notes("deckgen Code") if n.id in removed)
    anki.col.set_deck([c.id for c in code.cards()], anki.col.decks.id("Elsewhere"))
    everything = {n.id for n in anki.notes()}
    anki.close()

    declined = push(project, "--collection", str(collection), "--prune", input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "1 notes tagged deckgen::removed:" in declined.output
    assert f"  Linux中修改用户权限的命令有哪些？ ({ROOT}::Python编程基础)" in declined.output
    assert "nothing deleted" in declined.output
    anki = Anki(collection)
    assert {n.id for n in anki.notes()} == everything
    anki.close()

    pruned = push(project, "--collection", str(collection), "--prune", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert f"deleted 1 notes; {project.root / 'deckgen.lock'} forgets them" in pruned.output
    assert f"rebuilt {project.root / 'build'} without them" in pruned.output
    anki = Anki(collection)
    try:
        left = {n.id for n in anki.notes()}
        linux = (removed - {code.id}).pop()
        assert left == everything - {linux}
        assert not anki.col.find_cards(f"nid:{linux}")
    finally:
        anki.close()

    # The pruned note does not come back with the next push (the lock forgot it), and the
    # packages in build/ no longer ship it.
    again = push(project, "--collection", str(collection), "--prune", "--yes")
    assert again.exit_code == 0, again.output
    assert "Anki: 0 notes added" in again.output
    assert "no notes tagged deckgen::removed: nothing to prune" in again.output
    anki = Anki(collection)
    assert {n.id for n in anki.notes()} == left
    anki.close()
    fresh = Anki(project.root / "fresh" / "collection.anki2")
    fresh.import_package(project.root / "build" / f"{ROOT}.apkg")
    assert not any("Linux" in n["Question"] for n in fresh.notes("deckgen Q&A"))
    assert any("Linux" in n["Question"] for n in fresh.notes("deckgen Code"))  # the one not pruned
    fresh.close()


def test_a_collection_open_in_anki_is_refused_in_one_line(no_run_project, collection):  # noqa: ANN001
    held = Anki(collection)  # as the desktop app holds it while running
    try:
        result = push(no_run_project, "--collection", str(collection))
    finally:
        held.close()
    assert result.exit_code == 2
    assert result.output == (f"deckgen: error: {collection} is open in Anki: quit Anki and push again, "
                             "or push into the running Anki through AnkiConnect (without --collection)\n")
    assert not (no_run_project.root / "build").exists()  # refused before building anything


def test_collection_setting_and_missing_collection(no_run_project, collection):  # noqa: ANN001
    project = no_run_project
    write_pyproject(project, f'\n[tool.deckgen.push]\ncollection = "{collection}"\n')
    result = CliRunner().invoke(main, ["--config", str(project.root / "pyproject.toml"), "push"])
    assert result.exit_code == 0, result.output
    assert "Anki: 6 notes added" in result.output

    missing = push(project, "--collection", str(project.root / "nope.anki2"))
    assert missing.exit_code == 2
    assert "no Anki collection at" in missing.output and len(missing.output.splitlines()) == 1
    assert not (project.root / "nope.anki2").exists()  # never created by accident


def test_anki_profile_folder_on_each_system(tmp_path: Path) -> None:
    home = Path("/home/u")
    assert anki_base({}, "linux", home) == home / ".local/share/Anki2"
    assert anki_base({"XDG_DATA_HOME": "/x"}, "linux", home) == Path("/x/Anki2")
    assert anki_base({}, "darwin", home) == home / "Library/Application Support/Anki2"
    assert anki_base({"APPDATA": "C:/Users/u/AppData/Roaming"}, "win32", home) == \
        Path("C:/Users/u/AppData/Roaming/Anki2")
    assert anki_base({"ANKI_BASE": "/b"}, "linux", home) == Path("/b")

    with pytest.raises(CollectionError, match="no Anki profile found"):
        default_collection(tmp_path)
    (tmp_path / "User 1").mkdir()
    (tmp_path / "User 1" / "collection.anki2").write_bytes(b"")
    assert default_collection(tmp_path) == tmp_path / "User 1" / "collection.anki2"
    (tmp_path / "Other").mkdir()
    (tmp_path / "Other" / "collection.anki2").write_bytes(b"")
    with pytest.raises(CollectionError, match=r"several Anki profiles .*\(Other, User 1\): choose one"):
        default_collection(tmp_path)


def test_the_default_collection_is_the_only_profiles(no_run_project, tmp_path, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("ANKI_BASE", str(tmp_path / "Anki2"))
    result = push(no_run_project, "--collection")
    assert result.exit_code == 2
    assert result.output == (f"deckgen: error: no Anki profile found in {tmp_path / 'Anki2'}: give the "
                             "collection file with --collection PATH (a profile folder's collection.anki2)\n")
    Anki(tmp_path / "Anki2" / "User 1" / "collection.anki2").close()
    result = push(no_run_project, "--collection")
    assert result.exit_code == 0, result.output
    assert f"Anki: 6 notes added, 0 updated, 0 unchanged; 6 deckgen notes under {ROOT}" in result.output


def test_root_deck_names_are_searched_literally(tmp_path: Path) -> None:
    """A root deck named with Anki's wildcards (`_`, `*`) or quotes finds itself and no other."""
    from deckgen.push import search_term

    anki = Anki(tmp_path / "collection.anki2")
    try:
        names = ["a_b*c", "a_bxc", 'q"x', "back\\slash"]
        for name in names:
            note = anki.col.new_note(anki.col.models.by_name("Basic"))
            note["Front"] = name
            anki.col.add_note(note, anki.col.decks.id(f"{name}::sub"))
        for name in names:
            found = [anki.col.get_note(n)["Front"] for n in anki.col.find_notes(search_term("deck", name))]
            assert found == [name]
    finally:
        anki.close()


def test_push_settings_mistakes_are_one_line(no_run_project) -> None:  # noqa: ANN001
    project = no_run_project
    write_pyproject(project, '\n[tool.deckgen.push]\nport = 8765\n')
    result = CliRunner().invoke(main, ["--config", str(project.root / "pyproject.toml"), "push"])
    assert result.exit_code == 2
    assert result.output == (f"deckgen: error: {project.root / 'pyproject.toml'} [tool.deckgen.push]: "
                             "unknown setting 'port' (known: collection, key, url)\n")
    # The build's own command reads the same file without minding the push table.
    write_pyproject(project, '\n[tool.deckgen.push]\nurl = "http://127.0.0.1:9"\n')
    built = CliRunner().invoke(main, ["--config", str(project.root / "pyproject.toml"), "build"])
    assert built.exit_code == 0, built.output
