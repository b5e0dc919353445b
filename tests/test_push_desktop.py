"""`deckgen push` through AnkiConnect into real Anki desktop, started headless once per session.

Skips, saying why, where the desktop app cannot start (not installed: pip install -e
'.[desktop-test]'; no AnkiConnect source beside the project; no display support).
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from deckgen.ankiconnect import AnkiConnect
from deckgen.cli import main

from . import anki_desktop
from .test_push import ROOT, edit_article


@pytest.fixture(scope="session")
def desktop(tmp_path_factory):  # noqa: ANN001, ANN201
    try:
        running = anki_desktop.start(tmp_path_factory.mktemp("anki-desktop"), key="deckgen-test-key")
    except anki_desktop.CannotStart as exc:
        pytest.skip(f"Anki desktop cannot start here: {exc}")
    yield running
    running.stop()


def push(project, desktop, *args: str, key: str | None = None):  # noqa: ANN001, ANN201
    return CliRunner().invoke(main, [
        "push", str(project.root / "source"), "-o", str(project.root / "build"),
        "--lock", str(project.root / "deckgen.lock"), "--no-run", "--url", desktop.url,
        "--key", key or desktop.key, *args,
    ])


def snapshot(anki: AnkiConnect) -> tuple[list[int], dict, dict]:
    notes = sorted(anki.call("findNotes", query=f'"deck:{ROOT}"'))
    cards = anki.call("findCards", query=f'"deck:{ROOT}"')
    schedule = {c["cardId"]: (c["note"], c["deckName"], c["type"], c["queue"], c["due"], c["interval"],
                              c["reps"], c["factor"])
                for c in anki.call("cardsInfo", cards=cards)}
    reviews = anki.call("getReviewsOfCards", cards=cards)
    return notes, schedule, reviews


def test_push_review_edit_push_prune_in_real_anki(no_run_project, desktop):  # noqa: ANN001
    project = no_run_project
    anki = AnkiConnect(desktop.url, desktop.key)

    first = push(project, desktop)
    assert first.exit_code == 0, first.output
    assert "Python编程基础: 2 questions (2 added)" in first.output  # the build's summary
    assert f"Anki: 6 notes added; 6 deckgen notes under {ROOT}" in first.output

    linux = anki.call("notesInfo", notes=anki.call("findNotes", query='"note:deckgen Q&A" Linux'))[0]
    media = anki.call("getMediaFilesNames", pattern="*.png")
    assert len(media) == 1 and media[0] in linux["fields"]["Answer"]["value"]  # the image came along

    cards = anki.call("findCards", query=f'"deck:{ROOT}"')
    assert len(cards) == 6
    assert all(anki.call("answerCards", answers=[{"cardId": c, "ease": 3} for c in cards]))
    notes, schedule, reviews = snapshot(anki)
    assert all(len(r) == 1 for r in reviews.values())

    edit_article(project)
    second = push(project, desktop)
    assert second.exit_code == 0, second.output
    assert "removed   'Linux中修改用户权限的命令有哪些？'" in second.output
    assert f"Anki: 1 note added; 7 deckgen notes under {ROOT}" in second.output
    after_notes, after_schedule, after_reviews = snapshot(anki)
    assert set(notes) < set(after_notes) and len(after_notes) == 7  # ids kept, one added
    assert {c: after_schedule[c] for c in schedule} == schedule  # scheduling untouched
    assert {c: after_reviews[c] for c in reviews} == reviews  # review log untouched
    info = {n["fields"]["Question"]["value"]: n for n in anki.call("notesInfo", notes=after_notes)
            if n["modelName"] == "deckgen Q&A"}
    rope = next(n for q, n in info.items() if "ROPE" in q)
    assert "可学习的权重" in rope["fields"]["Answer"]["value"]  # the edit arrived
    linux = next(n for q, n in info.items() if "Linux" in q)
    assert "deckgen::removed" in linux["tags"]

    # Not deckgen's to delete: the user's own note with the same tag, under the root deck.
    own = anki.call("addNote", note={"deckName": ROOT, "modelName": "Basic", "tags": ["deckgen::removed"],
                                     "fields": {"Front": "my own note", "Back": ""}})
    anki.call("changeDeck", cards=anki.call("findCards", query=f"nid:{own}"), deck=ROOT)
    removed = set(anki.call("findNotes", query="tag:deckgen::removed")) - {own}
    assert len(removed) == 2  # the Linux question and its code note
    pruned = push(project, desktop, "--prune", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert f"  Linux中修改用户权限的命令有哪些？ ({ROOT}::Python编程基础)" in pruned.output
    assert "deleted 2 notes" in pruned.output
    left = set(anki.call("findNotes", query=f'"deck:{ROOT}"'))
    assert left == (set(after_notes) - removed) | {own}

    # The pruned notes stay gone on the next push.
    again = push(project, desktop)
    assert again.exit_code == 0, again.output
    assert "Anki: 0 notes added" in again.output
    assert set(anki.call("findNotes", query=f'"deck:{ROOT}"')) == left


def test_the_real_addon_refuses_a_wrong_key_in_one_line(no_run_project, desktop):  # noqa: ANN001
    result = push(no_run_project, desktop, key="wrong")
    assert result.exit_code == 2
    assert result.output == (
        f"deckgen: error: AnkiConnect at {desktop.url} refused the key: give the apiKey from its "
        "config (Tools → Add-ons → AnkiConnect → Config) with --key or [tool.deckgen.push] key\n")


def test_a_template_change_reaches_the_note_type_in_place(no_run_project, desktop, tmp_path):  # noqa: ANN001
    import shutil

    from deckgen.notetypes import default_templates_dir

    project = no_run_project
    anki = AnkiConnect(desktop.url, desktop.key)
    templates = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), templates)
    assert push(project, desktop, "--root", "模板测试").exit_code == 0
    css = templates / "card.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n.question { letter-spacing: 0.01em; }\n",
                   encoding="utf-8")
    result = push(project, desktop, "--root", "模板测试", "--templates", str(templates))
    assert result.exit_code == 0, result.output
    names = anki.call("modelNames")
    assert sorted(n for n in names if n.startswith("deckgen")) == ["deckgen Code", "deckgen Q&A"]
    assert "letter-spacing: 0.01em" in anki.call("modelStyling", modelName="deckgen Q&A")["css"]
