"""The shipped article, built as a user builds it, and imported into real Anki."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deckgen.build import build
from deckgen.config import Settings

from .conftest import REPO
from .test_build import open_package
from .test_source import QUESTIONS, SECTIONS

ROOT = "三年面试五年模拟"


def _text(field: str) -> str:
    """A field as the learner reads it: tags off, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", field))


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
    checked = [n for n in notes if n["type"] == "deckgen Code" and n["OutputCheck"]]
    assert len(checked) == 2  # json.dumps and json.loads, each followed by 输出
    for note in checked:
        assert note["Status"] == "ran"
        assert note["OutputCheck"] == "as the article shows"
        assert note["ClaimedOutput"] == ""  # shown once, as the real output
    dumps = next(n for n in checked if "json.dumps" in _text(n["Code"]))
    assert _text(dumps["Output"]).strip().startswith('{"name": ')


def test_shell_and_torch_examples_are_not_run_and_say_why(built, tmp_path: Path) -> None:  # noqa: ANN001
    settings, report = built
    notes, _, _ = open_package(settings.output / f"{ROOT}.apkg", tmp_path)
    code = [n for n in notes if n["type"] == "deckgen Code"]
    bash = [n for n in code if n["Language"] == "bash"]
    assert bash and all(n["Status"] == "skipped" and "never run" in n["Reason"] for n in bash)
    assert any("sudo usermod" in _text(n["Code"]) for n in bash)
    torch = [n for n in code if "import torch" in _text(n["Code"])]
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


# --- Code notes a learner can review (#10) --------------------------------------------------------


def test_every_code_note_answers_with_the_articles_explanation_or_a_real_output(
        built, anki) -> None:  # noqa: ANN001
    settings, report = built
    anki.import_package(settings.output / f"{ROOT}.apkg")
    code = anki.notes("deckgen Code")
    assert len(code) == sum(sum(s.code_notes.values()) for s in report.sections)
    for note in code:
        # the article's explanation (in the ExitCode field) and/or what the code really printed
        assert _text(note["ExitCode"]).strip() or _text(note["Output"]).strip(), note["Question"]
        card = note.cards()[0].render_output()
        assert "文章的解释" in card.answer_text or "实际输出" in card.answer_text
        # the front asks what fits: what it prints, or what it does when it prints nothing
        ask = "输出什么" if note["Output"] or note["ClaimedOutput"] else "做什么"
        assert ask in card.question_text and card.question_text.count('class="ask"') == 1
        assert "Traceback" not in card.answer_text or note["Status"] == "failed"
    skipped = [n for n in code if n["Status"] == "skipped"]
    assert skipped and all(not n["Output"] for n in skipped)  # no traceback, no exit code
    # the syntax templates (`chmod [选项] 模式 文件名`) stay on the Q&A card, and are counted
    linux = next(s for s in report.sections if s.name == "计算机基础")
    assert linux.code_dropped == {"syntax template": 11}
    assert not any("[选项]" in _text(n["Code"]) for n in code)
    # a comment that says what the line does is part of the answer, never on the front
    rb = next(n for n in code if "'rb'" in _text(n["Code"]))
    assert "读取二进制文件" not in _text(rb["Code"]) and "读取二进制文件" in _text(rb["RawCode"])
    assert "二进制模式" in _text(rb["ExitCode"])  # the list item the block sits in


def test_the_block_reading_data_json_sees_what_the_block_before_wrote(built, anki) -> None:  # noqa: ANN001
    settings, _ = built
    anki.import_package(settings.output / "Python编程基础.apkg")
    reads = next(n for n in anki.notes("deckgen Code")
                 if "open('data.json', 'r')" in _text(n["Code"]))
    assert reads["Status"] == "ran"
    assert _text(reads["Output"]) == "{'name': 'AI', 'type': 'Technology', 'year': 2024}\n"
    answer = reads.cards()[0].render_output().answer_text
    assert "{&#x27;name&#x27;: &#x27;AI&#x27;" in answer or "{'name': 'AI'" in answer


def test_anki_finds_no_duplicate_code_notes(built, anki) -> None:  # noqa: ANN001
    from anki.lang import set_lang

    settings, _ = built
    anki.import_package(settings.output / f"{ROOT}.apkg")
    set_lang("en")  # find_dupes strips HTML through the translation backend
    assert anki.col.find_dupes("Question", '"note:deckgen Code"') == []
    # …and the browser's sort column tells the examples of one question apart
    firsts = [_text(n["Question"]) for n in anki.notes("deckgen Code")]
    assert len(set(firsts)) == len(firsts)


def test_a_fresh_clone_builds_the_same_packages_and_leaves_the_lock_untouched(tmp_path: Path) -> None:
    """The examples run with a fixed clock and seeds: `datetime.now()` no longer rewrites the
    committed deckgen.lock on every new machine."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    environment = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    builds = []
    for name in ("first", "second"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True)
        done = subprocess.run([sys.executable, "-m", "deckgen", "build"], cwd=clone,
                              capture_output=True, text=True, env=environment)
        assert done.returncode == 0, done.stderr
        status = subprocess.run(["git", "-C", str(clone), "status", "--porcelain"],
                                capture_output=True, text=True, check=True).stdout
        assert status == ""  # deckgen.lock byte-identical to the committed one
        builds.append(clone / "build")
    packages = sorted(p.name for p in builds[0].glob("*.apkg"))
    assert packages and packages == sorted(p.name for p in builds[1].glob("*.apkg"))
    for name in packages:
        assert (builds[0] / name).read_bytes() == (builds[1] / name).read_bytes(), name


def test_a_code_notes_back_answers_what_its_front_asks_first(built, anki) -> None:  # noqa: ANN001
    """Asked what the code prints, the back shows what it printed before the explanation and the
    commented code, so that on a phone the answer is on the first screen."""
    settings, _ = built
    anki.import_package(settings.output / "Python编程基础.apkg")
    dumps = next(n for n in anki.notes("deckgen Code") if "json.dumps(data_dict)" in _text(n["Code"]))
    back = dumps.cards()[0].render_output().answer_text
    after_front = back[back.index('id="answer"'):]
    assert after_front.index("实际输出") < after_front.index("文章的解释") < after_front.index("代码与注释")
