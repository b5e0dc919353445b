"""`deckgen preview`: every card's front and back, as the note types render them, on one page."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from deckgen import preview
from deckgen.build import build
from deckgen.cli import main
from deckgen.preview import PreviewError, render_template

from .conftest import REPO, Project


def test_template_fields_and_sections_render_as_in_anki() -> None:
    fields = {"A": "<b>x</b>", "Empty": " <br> <div></div> ", "B": "y"}
    assert render_template("{{A}}-{{B}}", fields) == "<b>x</b>-y"
    assert render_template("{{#A}}has {{A}}{{/A}}{{#Empty}}never{{/Empty}}", fields) == "has <b>x</b>"
    assert render_template("{{^Empty}}no {{B}}{{/Empty}}{{^A}}never{{/A}}", fields) == "no y"
    assert render_template("{{#A}}{{#B}}both{{/B}}{{#Empty}}x{{/Empty}}{{/A}}", fields) == "both"
    assert render_template("{{FrontSide}}<hr id=answer>{{B}}", fields, front_side="F") == "F<hr id=answer>y"
    assert render_template("{{text:A}}", fields) == "x"
    assert render_template("{{Nope}}", fields) == "{unknown field Nope}"
    with pytest.raises(PreviewError, match="never closed"):
        render_template("{{#A}}x", fields)
    with pytest.raises(PreviewError, match="closes no open section"):
        render_template("x{{/A}}", fields)


def _cli(*args: str):  # noqa: ANN202
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _open(index: Path) -> BeautifulSoup:
    return BeautifulSoup(index.read_text(encoding="utf-8"), "html.parser")


def test_preview_shows_every_card_front_and_back_with_media_and_source_lines(
    no_run_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(no_run_project.root)
    result = _cli("preview", "source", "-o", "out", "--no-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "wrote out/index.html: 6 cards; open it in a browser"
    soup = _open(no_run_project.root / "out" / "index.html")
    notes = soup.select("section.note")
    assert len(notes) == 6  # four questions, two code examples
    for note in notes:
        front, back = note.select(".side > .card")
        assert "front" in front["class"] and "back" in back["class"]
        assert front.select_one(".deckgen") is not None
        assert back.select_one("hr#answer") is not None
        assert str(front.select_one(".deckgen")) in str(back)  # {{FrontSide}}
    rope = next(n for n in notes if "ROPE" in n.get_text())
    assert r"\(x_i\)" in rope.get_text()  # TeX left for MathJax
    # The image is copied beside the page, under the name the card uses.
    linux = next(n for n in notes if "Linux" in n.get_text() and n["data-type"] == "deckgen Q&A")
    src = linux.select_one("img")["src"]
    assert (no_run_project.root / "out" / src).read_bytes() == (
        no_run_project.root / "source" / "imgs" / "perm.png").read_bytes()
    # Each card links to its line in a page of its source file.
    article = no_run_project.article.read_text(encoding="utf-8").splitlines()
    for note in notes:
        link = note.select_one(".meta a")
        page, line = re.fullmatch(r"(sources/\d+\.html)#L(\d+)", link["href"]).groups()
        assert link.get_text() == f"source/article.md:{line}"
        shown = _open(no_run_project.root / "out" / page).find(id=f"L{line}").get_text()
        assert shown.split(None, 1)[1] == article[int(line) - 1].strip()
    heading = next(n for n in notes if "Linux" in n.get_text() and n["data-type"] == "deckgen Code")
    assert article[int(heading.select_one(".meta a")["href"].split("#L")[1]) - 1].startswith("```bash")
    # A night switch and a phone-width frame; MathJax from the CDN, configured as Anki's.
    assert soup.select_one("input#night") is not None
    assert "--frame: 390px" in soup.body["style"]
    assert soup.select_one("script#MathJax-script")["src"] == preview.MATHJAX_CDN
    config = json.loads(re.search(r"window.MathJax = (.*);", str(soup.head)).group(1))
    assert config["tex"]["inlineMath"] == [["\\(", "\\)"]]
    assert config["tex"]["displayMath"] == [["\\[", "\\]"]]
    assert "noerrors" in config["tex"]["packages"]["[+]"]  # as in Anki: a bad formula shows its TeX


def test_a_local_mathjax_is_used_where_it_lies(no_run_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    mathjax = no_run_project.root / "mathjax"
    (mathjax / "es5").mkdir(parents=True)
    script = mathjax / "es5" / "tex-chtml-full.js"
    script.write_text("// MathJax", encoding="utf-8")
    monkeypatch.chdir(no_run_project.root)
    for given in ("mathjax", "mathjax/es5/tex-chtml-full.js"):
        assert _cli("preview", "-o", "out", "--no-run", "--mathjax", given).exit_code == 0
        soup = _open(no_run_project.root / "out" / "index.html")
        assert soup.select_one("script#MathJax-script")["src"] == script.resolve().as_uri()


def test_a_folder_without_mathjax_is_refused_and_nothing_is_written(
    no_run_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_run_project.root / "empty").mkdir()
    monkeypatch.chdir(no_run_project.root)
    result = _cli("preview", "-o", "out", "--no-run", "--mathjax", "empty")
    assert result.exit_code == 2
    assert "empty: no MathJax 3 tex-chtml-full.js in this folder" in result.stderr
    assert not any((no_run_project.root / "out").iterdir())


def test_the_preview_needs_nothing_beyond_deckgens_own_install(no_run_project: Project) -> None:
    """Imported and run without the test extras: neither anki nor playwright is loaded."""
    code = (
        "import sys\n"
        "from deckgen.cli import main\n"
        "try:\n"
        "    main(['preview', 'source', '-o', 'out', '--no-run'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "loaded = {'anki', 'playwright', 'pytest'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=no_run_project.root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (no_run_project.root / "out" / "index.html").is_file()


def test_cards_are_rendered_exactly_as_real_anki_renders_them(no_run_project: Project, anki) -> None:  # noqa: ANN001
    report = build(no_run_project.settings)
    anki.import_package(next(p for p in report.packages if p.stem == "三年面试五年模拟"))
    in_anki = sorted((c.render_output().question_text, c.render_output().answer_text) for c in anki.cards())
    shown = preview.collect(no_run_project.settings)
    assert sorted((c.front, c.back) for c in shown.cards) == in_anki
