"""A section's introduction becomes its deck's description, shown on the deck's overview in Anki."""
from __future__ import annotations

from pathlib import Path

from deckgen.build import build
from deckgen.parse import parse_sources

from .conftest import FUSION, PNG, PYTHON, ROPE, Project, article
from .test_build import open_package

ROOT = "三年面试五年模拟"
INTRO = r"""这些问题**没有标准答案**，欢迎讨论。

面积为 $\pi r^2$ 的圆。
"""


def _with_intro(project: Project, intro: str = INTRO, section: str = "深度学习基础") -> None:
    text = article(("深度学习基础", [ROPE, FUSION]), ("Python编程基础", [PYTHON]))
    project.article.write_text(text.replace(f"# {section}\n\n", f"# {section}\n\n{intro}\n", 1),
                               encoding="utf-8")
    (project.article.parent / "imgs" / "intro.png").write_bytes(PNG)


def _deck_descriptions(apkg: Path, tmp_path: Path) -> dict[str, str]:
    _, decks, _ = open_package(apkg, tmp_path)
    return {name: deck["desc"] for name, deck in decks.items()}


def test_the_prose_between_a_section_heading_and_its_first_question_is_its_description(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "# 写在前面\n\n前言不是任何一节的介绍。\n\n"
        "# 深度学习基础\n\n本节介绍。\n\n第二段。\n\n## 【一】问题一？\n\n答案一。\n\n## 【二】问题二？\n\n答案二。\n\n"
        "# 机器学习基础\n\n## 【一】问题三？\n\n答案三。\n",
        encoding="utf-8",
    )
    (tmp_path / "b.md").write_text("# 深度学习基础\n\n续篇的介绍。\n\n## 【一】问题四？\n\n答案四。\n",
                                   encoding="utf-8")
    corpus = parse_sources([tmp_path])
    described = {s.name: [(d.path.name, d.line, d.text) for d in s.descriptions] for s in corpus.sections}
    assert described == {
        # a section spread over two files has an introduction from each, in order
        "深度学习基础": [("a.md", 7, "本节介绍。\n\n第二段。"), ("b.md", 3, "续篇的介绍。")],
        "机器学习基础": [],  # a section without an introduction has no description
    }
    # the introduction is on no card
    assert all("本节介绍" not in q.answer for q in corpus.questions)


def test_the_description_is_rendered_like_an_answer_and_written_into_the_deck(
    no_run_project: Project, tmp_path: Path
) -> None:
    _with_intro(no_run_project)
    report = build(no_run_project.settings)
    assert report.diagnostics == []
    out = no_run_project.settings.output
    for apkg in (out / f"{ROOT}.apkg", out / "深度学习基础.apkg"):
        html = _deck_descriptions(apkg, tmp_path)[f"{ROOT}::深度学习基础"]
        assert "<strong>没有标准答案</strong>" in html
        assert r"\(\pi r^2\)" in html  # math for MathJax, as on the cards
    assert _deck_descriptions(out / f"{ROOT}.apkg", tmp_path)[f"{ROOT}::Python编程基础"] == ""


def test_an_image_in_a_description_shows_its_alt_text_and_is_reported(
    no_run_project: Project, tmp_path: Path
) -> None:
    # Anki imports only the media notes use: a file shipped for a description would not arrive
    _with_intro(no_run_project, "介绍。\n\n![示意图](imgs/intro.png)\n")
    report = build(no_run_project.settings)
    lines = no_run_project.article.read_text(encoding="utf-8").split("\n")
    line = next(n for n, text in enumerate(lines, start=1) if "intro.png" in text)
    assert [(d.line, d.message) for d in report.diagnostics] == [
        (line, "image not shown: a deck description cannot carry image files: imgs/intro.png")]
    apkg = no_run_project.settings.output / f"{ROOT}.apkg"
    html = _deck_descriptions(apkg, tmp_path)[f"{ROOT}::深度学习基础"]
    assert "示意图" in html and "<img" not in html
    assert not any(name.startswith("intro") for name in open_package(apkg, tmp_path)[2])


def test_html_a_card_cannot_use_in_a_description_is_reported_at_its_line(
    no_run_project: Project, tmp_path: Path
) -> None:
    _with_intro(no_run_project, "介绍。<script>alert(1)</script>\n", section="Python编程基础")
    report = build(no_run_project.settings, write=False)
    lines = no_run_project.article.read_text(encoding="utf-8").split("\n")
    line = next(n for n, text in enumerate(lines, start=1) if "<script>" in text)
    shown = [(d.path, d.line, d.message) for d in report.diagnostics if "HTML" in d.message]
    assert shown == [(no_run_project.article, line, "HTML shown as text: <script>")]
    # counted for the section it introduces, not for the question before it
    assert {s.name: s.warnings for s in report.sections} == {"深度学习基础": 0, "Python编程基础": 1}


def test_anki_shows_the_description_and_takes_an_edited_one_on_reimport(no_run_project: Project, anki) -> None:  # noqa: ANN001
    _with_intro(no_run_project)
    build(no_run_project.settings)
    apkg = no_run_project.settings.output / f"{ROOT}.apkg"
    anki.import_package(apkg)
    deck = anki.col.decks.by_name(f"{ROOT}::深度学习基础")
    assert "<strong>没有标准答案</strong>" in deck["desc"]

    _with_intro(no_run_project, "改过的介绍。\n")
    build(no_run_project.settings)
    anki.import_package(apkg)
    assert anki.col.decks.by_name(f"{ROOT}::深度学习基础")["desc"] == "<p>改过的介绍。</p>\n"


def test_a_description_survives_the_file_cache(no_run_project: Project, tmp_path: Path) -> None:
    _with_intro(no_run_project)
    other = no_run_project.article.parent / "other.md"
    other.write_text("# 机器学习基础\n\n## 【一】问题？\n\n答案。\n", encoding="utf-8")
    build(no_run_project.settings)
    other.write_text("# 机器学习基础\n\n## 【一】问题？\n\n改过的答案。\n", encoding="utf-8")
    report = build(no_run_project.settings)  # the article itself comes from the cache
    assert not report.up_to_date
    apkg = no_run_project.settings.output / f"{ROOT}.apkg"
    assert "<strong>没有标准答案</strong>" in _deck_descriptions(apkg, tmp_path)[f"{ROOT}::深度学习基础"]
