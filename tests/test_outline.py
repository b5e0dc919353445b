"""Long answers open with their outline: parts linked, nothing dropped or reordered (issue 12)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from deckgen.load import load_sources
from deckgen.outline import SCREEN_LINES, add_outline, estimated_lines
from deckgen.render import Renderer
from deckgen.sanitize import clean

from .conftest import REPO

KB = next((p for p in (REPO.parent / "shared" / "kb", REPO.parent.parent / "shared" / "kb")
           if p.is_dir()), None)
PARAGRAPH = "这是一段足够长的中文说明文字，用来把答案撑到超过一屏的高度，学习者需要滚动才能读完。" * 2


def _render(markdown: str, tmp_path: Path) -> str:
    return Renderer().markdown(markdown, path=tmp_path / "a.md", first_line=1).html


def _without_outline(html: str) -> str:
    """The answer as it was before the outline: its div gone, the parts' ids gone."""
    html = re.sub(r'^<div class="outline">.*?</ul></div>\n', "", html, count=1, flags=re.DOTALL)
    return re.sub(r' id="dg-part-\d+"', "", html)


def _long_answer(tmp_path: Path) -> str:
    parts = [f"### {n}. 第{n}部分 $x_{n}$\n\n" + (PARAGRAPH + "\n\n") * 3 + "#### 细节\n\n- 要点\n"
             for n in range(1, 5)]
    return _render("开头的总述。\n\n" + "".join(parts), tmp_path)


def test_a_long_answer_opens_with_its_headings_each_linking_to_its_part(tmp_path: Path) -> None:
    html = _long_answer(tmp_path)
    assert estimated_lines(html) > SCREEN_LINES
    outlined = add_outline(html)
    soup = BeautifulSoup(outlined, "html.parser")
    first = next(soup.children)
    assert first.name == "div" and first["class"] == ["outline"]  # it opens the answer
    links = first.select("li > a")
    assert [a["href"] for a in links] == ["#dg-part-1", "#dg-part-2", "#dg-part-3", "#dg-part-4"]
    assert [a.get_text() for a in links] == [f"{n}. 第{n}部分 \\(x_{n}\\)" for n in range(1, 5)]
    for n, heading in enumerate(soup.find_all("h3"), start=1):  # the highest level used, not h4
        assert heading["id"] == f"dg-part-{n}"
    assert not any(h.get("id") for h in soup.find_all("h4"))
    assert _without_outline(outlined) == html


def test_without_sub_headings_the_first_level_list_items_make_the_outline(tmp_path: Path) -> None:
    items = "".join(f"{n}. **第{n}点**：{PARAGRAPH}\n   - 细节 {PARAGRAPH}\n" for n in range(1, 6))
    html = _render(items, tmp_path)
    outlined = add_outline(html)
    soup = BeautifulSoup(outlined, "html.parser")
    assert [a.get_text() for a in soup.select(".outline a")] == [f"第{n}点" for n in range(1, 6)]
    top = soup.select("div.outline ~ ol > li")
    assert [li["id"] for li in top] == [f"dg-part-{n}" for n in range(1, 6)]
    assert not soup.select("li li[id]")  # nested items are not parts
    assert _without_outline(outlined) == html


def test_a_label_is_cut_short_but_never_inside_a_formula(tmp_path: Path) -> None:
    long_item = "这一条很长" * 5 + r"$\frac{a}{b} + \sum_{i=1}^{n} x_i$" + "后面还有很多文字" * 3
    html = _render("".join(f"- {long_item}{n}\n\n  {PARAGRAPH * 3}\n" for n in range(3)), tmp_path)
    label = BeautifulSoup(add_outline(html), "html.parser").select_one(".outline a").get_text()
    assert label.endswith("…") and len(label) < len(long_item)
    assert label.count("\\(") == label.count("\\)")


def test_short_answers_and_answers_with_a_single_part_are_unchanged(tmp_path: Path) -> None:
    short = _render("### 一\n\n短。\n\n### 二\n\n也短。\n", tmp_path)
    assert add_outline(short) == short
    single = _render("### 唯一的部分\n\n" + (PARAGRAPH + "\n\n") * 12, tmp_path)
    assert estimated_lines(single) > SCREEN_LINES
    assert add_outline(single) == single


def test_the_parts_ids_and_links_pass_the_sanitizer_and_no_other_id_does(tmp_path: Path) -> None:
    outlined = add_outline(_long_answer(tmp_path))
    cleaned = clean(outlined)
    assert cleaned.count(' id="dg-part-') == outlined.count(' id="dg-part-') == 4
    assert cleaned.count('href="#dg-part-') == 4
    assert clean('<h3 id="answer">x</h3><li id="dg-part-x">y</li>') == "<h3>x</h3><li>y</li>"


@pytest.mark.parametrize("source", ["article", "kb"])
def test_every_real_answer_keeps_all_its_content_in_order(source: str) -> None:
    if source == "kb" and KB is None:
        pytest.skip("../shared/kb is absent")
    folder = REPO / "source" if source == "article" else KB / "深度学习基础"  # (one folder: fast)
    corpus, rendered = load_sources([folder], None)
    outlined = 0
    for item in rendered:
        html = item.answer.html  # already outlined by the renderer
        if html.startswith('<div class="outline">'):
            outlined += 1
            assert 'id="dg-part-1"' in html
        again = add_outline(_without_outline(html))
        assert again == html
    assert outlined >= (10 if source == "article" else 50)
