"""The per-file stage: one parse serves parse, lint and render, and changes nothing a card shows."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deckgen import check, parse
from deckgen.load import load_sources
from deckgen.render import Renderer

from .conftest import REPO, SHARED_CORPUS
from .test_robustness import _BLOCK, FAKE, PROPERTY, _article

FOLDERS = [REPO / "source", REPO / "tests" / "fixtures" / "parse", REPO / "tests" / "nasty", SHARED_CORPUS]


def assert_same_cards(root: Path, parsed: parse.ParsedFile) -> int:
    """Each answer rendered from the file's own parse equals the answer rendered alone."""
    renderer = Renderer([root])
    assert parsed.source is not None
    sliced = 0
    for question, tokens in zip(parsed.source.questions, parsed.answer_tokens):
        alone = renderer.answer(question)
        if tokens is None:
            continue
        sliced += 1
        shared = renderer.answer(question, tokens)
        assert (shared.html, shared.diagnostics, shared.media, shared.remote_images) == (
            alone.html, alone.diagnostics, alone.media, alone.remote_images), (question.path, question.line)
    return sliced


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_answers_from_the_files_parse_equal_answers_parsed_alone(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    pairs, _ = parse.discover([folder])
    questions = sliced = 0
    for root, path in pairs:
        parsed = parse.load_file(root, path, lint=check.lint_text)
        if parsed.source is not None:
            questions += len(parsed.source.questions)
            sliced += assert_same_cards(root, parsed)
    # the shared parse must actually serve most answers, or it saves nothing
    assert sliced >= questions * 0.8


@PROPERTY
@given(_article())
def test_generated_articles_render_the_same_either_way(article: tuple[str, list[int]]) -> None:
    text, _ = article
    assert_same_cards(FAKE.parent, parse.parse_document(FAKE, text, root=FAKE.parent))


@PROPERTY
@given(st.lists(st.lists(_BLOCK, min_size=1, max_size=3), min_size=1, max_size=5))
def test_generated_knowledge_base_files_render_the_same_either_way(answers: list[list[str]]) -> None:
    lines = ["# 目录", ""]
    for n, blocks in enumerate(answers, 1):
        lines += [f'<h2 id="{n}.问题{n}">{n}.问题{n}</h2>', *"\n\n".join(blocks).split("\n")]
    text = "\n".join(lines)
    assert_same_cards(FAKE.parent, parse.parse_document(FAKE, text, root=FAKE.parent))


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.md").write_text("# 节\n\n## 【一】问\n\n答 $x$。\n", encoding="utf-8")
    first, _ = load_sources([source], tmp_path / "cache")
    monkeypatch.setattr(parse, "parse_document", lambda *a, **k: pytest.fail("parsed again"))
    again, rendered = load_sources([source], tmp_path / "cache")
    assert [q.title for q in again.questions] == [q.title for q in first.questions] == ["问"]
    assert r"\(x\)" in rendered[0].answer.html


def test_a_new_image_beside_the_file_renders_the_file_again(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.md").write_text("# 节\n\n## 【一】问\n\n![图](fig.png)\n", encoding="utf-8")
    _, rendered = load_sources([source], tmp_path / "cache")
    assert not rendered[0].answer.media and rendered[0].answer.diagnostics
    (source / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _, rendered = load_sources([source], tmp_path / "cache")
    assert [m.source.name for m in rendered[0].answer.media] == ["fig.png"]


def test_worker_processes_give_what_one_process_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    import deckgen.load as load

    folders = [f for f in (REPO / "source", REPO / "tests" / "fixtures" / "parse") if f.is_dir()]
    alone, alone_html = load_sources(folders, None)
    monkeypatch.setattr(load, "PARALLEL_BYTES", 0)  # the workers, whatever the size
    shared, shared_html = load_sources(folders, None)
    assert [(q.path, q.line, q.key, q.answer) for q in shared.questions] == [
        (q.path, q.line, q.key, q.answer) for q in alone.questions]
    assert [(r.title, r.answer.html, r.code) for r in shared_html] == [
        (r.title, r.answer.html, r.code) for r in alone_html]
    assert shared.diagnostics == alone.diagnostics
