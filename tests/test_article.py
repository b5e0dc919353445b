"""The shipped article, built as a user builds it, and imported into real Anki."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from deckgen.build import build
from deckgen.config import Settings

from .conftest import REPO
from .test_build import open_package
from .test_source import QUESTIONS, SECTIONS

ROOT = "三年面试五年模拟"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, object]:
    out = tmp_path_factory.mktemp("article")
    settings = Settings(sources=(REPO / "source",), output=out / "build", lock=out / "deckgen.lock")
    return settings, build(settings)


def test_every_section_is_a_package_and_every_question_a_card(built, tmp_path: Path) -> None:  # noqa: ANN001
    settings, report = built
    assert report.diagnostics == []
    assert [p.stem for p in report.packages] == [*SECTIONS, ROOT]
    notes, decks, _ = open_package(settings.output / f"{ROOT}.apkg", tmp_path)
    qa = [n for n in notes if n["type"] == "deckgen Q&A"]
    plain = [re.sub(r"<[^>]+>", "", html.unescape(n["Question"])) for n in qa]
    assert sorted(plain) == sorted(QUESTIONS)
    assert {n["deck"] for n in qa} == {f"{ROOT}::{s}" for s in SECTIONS}
    assert all(n["Answer"].strip() for n in qa)


def test_the_dict_to_json_example_prints_what_the_article_says(built, tmp_path: Path) -> None:  # noqa: ANN001
    settings, _ = built
    notes, _, _ = open_package(settings.output / "Python编程基础.apkg", tmp_path)
    checked = [n for n in notes if n["type"] == "deckgen Code" and n["ClaimedOutput"]]
    assert len(checked) == 2  # json.dumps and json.loads, each followed by 输出
    for note in checked:
        assert note["Status"] == "ran"
        assert note["OutputCheck"] == "matches the real output"
        assert note["Output"] == note["ClaimedOutput"]
    dumps = next(n for n in checked if "json.dumps" in n["RawCode"])
    assert html.unescape(dumps["Output"]).strip().startswith('{"name": ')


def test_shell_and_torch_examples_are_not_run_and_say_why(built, tmp_path: Path) -> None:  # noqa: ANN001
    settings, report = built
    notes, _, _ = open_package(settings.output / f"{ROOT}.apkg", tmp_path)
    code = [n for n in notes if n["type"] == "deckgen Code"]
    bash = [n for n in code if n["Language"] == "bash"]
    assert bash and all(n["Status"] == "skipped" and "never run" in n["Reason"] for n in bash)
    assert any("sudo usermod" in html.unescape(n["RawCode"]) for n in bash)
    torch = [n for n in code if "import torch" in n["RawCode"]]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert torch and all(n["Status"] == "skipped" and n["Reason"] == "needs module torch" for n in torch)
    counted = sum(sum(s.code_notes.values()) for s in report.sections)
    assert counted == len(code)


def test_the_article_imports_into_anki_and_every_card_renders(built, anki) -> None:  # noqa: ANN001
    settings, _ = built
    log = anki.import_package(settings.output / f"{ROOT}.apkg")
    assert not log.conflicting
    cards = anki.cards()
    assert len(cards) == len(log.new) == len(anki.notes())
    for card in cards:
        out = card.render_output()
        assert out.question_text.strip() and out.answer_text.strip()
        assert "front of this card is blank" not in out.question_text.lower()
        assert "{{" not in out.answer_text  # no template field left unfilled
    rope = next(n for n in anki.notes("deckgen Q&A") if "ROPE" in n["Question"])
    assert r"\[" in rope["Answer"] and r"\begin{bmatrix}" in rope["Answer"]
    assert "<em>" not in "".join(re.findall(r"\\\[.*?\\\]", rope["Answer"], flags=re.S))


def test_each_section_package_imports_alone_and_renders(built, tmp_path: Path) -> None:  # noqa: ANN001
    from .conftest import Anki

    settings, report = built
    for number, package in enumerate(report.packages):
        anki = Anki(tmp_path / f"c{number}" / "collection.anki2")
        try:
            log = anki.import_package(package)
            assert log.new and not log.conflicting
            decks = {card.col.decks.name(card.did) for card in anki.cards()}
            if package.stem != ROOT:
                assert decks == {f"{ROOT}::{package.stem}"}
            for card in anki.cards():
                out = card.render_output()
                assert out.question_text.strip() and out.answer_text.strip()
                assert "{{" not in out.question_text + out.answer_text
            assert not anki.col.media.check().missing
        finally:
            anki.close()


def test_the_cogvideox_card_shows_both_figures(built, anki, tmp_path: Path) -> None:  # noqa: ANN001
    settings, _ = built
    package = settings.output / "AI视频基础.apkg"
    notes, _, media = open_package(package, tmp_path)
    vae = next(n for n in notes if n["Question"] == "介绍一下CogVideoX系列模型的VAE结构")
    shown = re.findall(r'<img [^>]*src="([^"]+)"', vae["Answer"])
    figures = [REPO / "source" / "imgs" / name for name in
               ("CogVideoX的3DVAE结构示意图.png", "CogVideoX-3DVAE完整结构图.jpg")]
    assert [media[name] for name in shown] == [f.read_bytes() for f in figures]
    # in Anki: the files are in the collection's media and the card's back shows them
    anki.import_package(package)
    card = next(c for c in anki.cards() if "CogVideoX系列模型的VAE结构" in c.note()["Question"])
    back = card.render_output().answer_text
    assert all(f'src="{name}"' in back for name in shown)
    assert not anki.col.media.check().missing
    assert all((Path(anki.col.media.dir()) / name).is_file() for name in shown)
    # each where the text points at it: after the list of the three parts, and at the very end
    assert back.index("潜在空间正则化器") < back.index(shown[0]) < back.index("值得注意的是")
    assert back.index("完整结构图") < back.index(shown[1])


def test_the_open_questions_deck_has_its_introduction_as_description(built, anki, tmp_path: Path) -> None:  # noqa: ANN001
    settings, _ = built
    package = settings.output / "开放性问题.apkg"
    _, decks, _ = open_package(package, tmp_path)
    described = decks[f"{ROOT}::开放性问题"]["desc"]
    assert "也可以用作面试者的提问" in described and "这些问题没有标准答案" in described
    assert described.count("<p>") == 2  # its two paragraphs
    # the introduction is no card's answer, and the two open questions keep their one sentence
    notes, _, _ = open_package(package, tmp_path)
    assert all("没有标准答案" not in n["Answer"] for n in notes)
    anki.import_package(package)
    deck = anki.col.decks.by_name(f"{ROOT}::开放性问题")
    assert deck["desc"] == described
    # the other introduction of the article, and sections without one
    _, everything, _ = open_package(settings.output / f"{ROOT}.apkg", tmp_path)
    assert "实用计算机基础知识" in everything[f"{ROOT}::计算机基础"]["desc"]
    assert [s for s in SECTIONS if everything[f"{ROOT}::{s}"]["desc"]] == ["计算机基础", "开放性问题"]
