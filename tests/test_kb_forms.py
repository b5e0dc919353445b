"""The knowledge base's heading forms, one small fixture each: which headings become cards,
which are parts of an answer, which group questions (tag and crumb), and what is reported."""
from __future__ import annotations

from pathlib import Path

import pytest

from deckgen.check import lint_text
from deckgen.config import Settings
from deckgen.markdown import make_markdown
from deckgen.model import WARNING, Question
from deckgen.parse import load_file
from deckgen.render import Renderer

ROOT = Path(__file__).parent / "fixtures" / "kb_forms"
TOPIC = ROOT / "主题"


def line_of(path: Path, needle: str) -> int:
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def load(name: str) -> tuple[list[Question], list[tuple[int, str, str]]]:
    parsed = load_file(ROOT, TOPIC / name)
    assert parsed.source is not None
    return parsed.source.questions, [(d.line, d.level, d.message) for d in parsed.diagnostics]


def test_markdown_numbered_questions_under_chapters_the_toc_lists() -> None:
    path = TOPIC / "数字标题.md"
    questions, problems = load(path.name)
    assert [(q.title, q.line, q.context, q.tags) for q in questions] == [
        ("什么是满二叉树？", line_of(path, "### 1."), ("二叉树经典问题",), ("主题", "二叉树经典问题")),
        ("完全二叉树的最小高度是多少？", line_of(path, "### 2."), ("二叉树经典问题",),
         ("主题", "二叉树经典问题")),
        # a chapter with text of its own and no numbered questions is one question; its
        # unnumbered sub-heading is a part of the answer, not a card of its own
        ("回溯算法经典问题", line_of(path, "## 回溯"), (), ("主题",)),
    ]
    assert questions[0].answer == "每层都满的二叉树。"
    assert "### 枚举子集" in questions[2].answer
    # the chapter the TOC lists but the file leaves empty: reported at its own line, not the TOC's
    assert problems == [(line_of(path, "## 字符串"), WARNING, "nothing under this heading: no card")]


def test_level_four_markdown_questions_then_raw_ones_in_one_file() -> None:
    path = TOPIC / "四级标题.md"
    questions, problems = load(path.name)
    assert [(q.title, q.line) for q in questions] == [
        ("标准化/归一化（Normalization）", line_of(path, "#### 标准化")),
        ("Mixup", line_of(path, "<h3")),
    ]
    # its numbered sub-headings (`###### 1、`) are parts of the answer
    assert "###### 1、Min-Max归一化" in questions[0].answer
    assert "###### 2、Z-Score 标准化" in questions[0].answer
    assert problems == []


def test_company_sets_group_their_wenti_questions_raw_or_markdown() -> None:
    path = TOPIC / "问题编号.md"
    questions, problems = load(path.name)
    assert [(q.title, q.context) for q in questions] == [
        ("推荐系统包含哪些流程？", ("携程推荐算法面试题2道",)),
        ("位置编码是什么？", ("携程推荐算法面试题2道",)),
        ("多头有什么作用？", ("快手算法面试题2道",)),
        ("优化器有哪些？", ("快手算法面试题2道",)),
    ]
    assert [q.answer for q in questions] == ["召回、排序、重排。", "给每个位置一个向量。",
                                             "不同子空间的注意力。", "SGD、Adam。"]
    assert questions[1].line == line_of(path, "### 问题2：位置")
    assert problems == []  # every TOC entry is a question or the set that groups them


def test_sub_headings_and_restarted_numbering_are_parts_of_the_answer() -> None:
    path = TOPIC / "答案小节.md"
    questions, problems = load(path.name)
    assert [q.title for q in questions] == [
        "Git，GitLab，SVN的相关知识", "全参数微调需要多少显存？", "为什么SFT之后感觉LLM傻了?",
    ]
    git, memory, _ = questions
    # the raw sub-headings stay in the answer, as headings
    assert git.answer == "### Git\n\n分布式版本控制。\n\n### SVN\n\n集中式版本控制。"
    assert git.answer_line == line_of(path, 'id="git"')
    # `### 1.`…`### 3.` under the raw question 2 are its parts, even `### 3.` after `### 2.`
    assert memory.answer.count("\n### ") == 2 and memory.answer.startswith("### 1. 显存需求")
    assert problems == []


def test_malformed_heading_tags_read_as_meant_with_a_warning_at_their_line() -> None:
    path = TOPIC / "坏标题.md"
    questions, problems = load(path.name)
    assert [(q.title, q.answer) for q in questions] == [
        ("定义", "分配存储。"),
        ("声明和定义的区别是什么？", "声明不分配存储。"),
        ('＃include<file.h>与＃include"file.h"的区别？', "查找路径不同。"),
        ("什么是内联函数？", "在调用处展开的函数。"),  # closed by </h3>
    ]
    assert [(line, level) for line, level, _ in problems] == [
        (line_of(path, f'<h2 id="{n}.'), WARNING) for n in (2, 3, 4)
    ]
    assert all(message.startswith("malformed heading tag") for *_, message in problems)


def test_a_file_without_any_question_says_so() -> None:
    questions, problems = load("只有目录.md")
    assert questions == []
    assert problems == [(0, WARNING, "no question found: this file gives no cards")]


def test_the_crumb_shows_the_group(tmp_path: Path) -> None:
    from deckgen.build import plan_notes
    from deckgen.ids import Lock
    from deckgen.load import load_sources

    corpus, rendered = load_sources([TOPIC / "问题编号.md"], cache_dir=None)
    settings = Settings(sources=(TOPIC / "问题编号.md",), lock=tmp_path / "kb.lock", run_code=False)
    notes = plan_notes(corpus, rendered, Lock(), settings).notes
    # the Section field: deck path, then the groups
    assert {note.fields[2] for note in notes} == {
        "主题 › 问题编号 › 携程推荐算法面试题2道", "主题 › 问题编号 › 快手算法面试题2道",
    }


# --- emphasis next to CJK punctuation, and escapes in link text ---------------------------------


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("**LoRA+**：在 LoRA 上改进", "<strong>LoRA+</strong>：在 LoRA 上改进"),
        ("**该星号会被识别。**这是因为", "<strong>该星号会被识别。</strong>这是因为"),
        ("这是**“引号”**里", "这是<strong>“引号”</strong>里"),
        ("中文*斜体*中文", "中文<em>斜体</em>中文"),
        # everything else stays CommonMark
        ("**foo.**bar", "**foo.**bar"),
        ("a **b** c", "a <strong>b</strong> c"),
        ("中文__下划线__中文", "中文__下划线__中文"),
        ("$x**2$ 和 **", "$x**2$ 和 **"),
    ],
)
def test_cjk_friendly_emphasis(source: str, html: str) -> None:
    md = make_markdown()
    md.disable(["math_inline", "math_inline_double"], ignoreInvalid=True)
    assert md.renderInline(source) == html


def test_an_escaped_bracket_in_link_text_is_no_unbalanced_math() -> None:
    text = "论文：[[2305.02567\\] LayoutDM](https://arxiv.org/abs/2305.02567)\n\n孤立的 \\] 在这里\n"
    assert [(d.line, d.message) for d in lint_text(Path("a.md"), text)] == [
        (3, "unbalanced `\\]`: no `\\[` opens it"),
    ]


def test_a_heading_whose_bold_is_never_closed_reads_as_meant() -> None:
    html = Renderer().markdown("### **3. `requires_grad=True`\n\n正文\n", path=Path("a.md"), first_line=1).html
    assert html.startswith("<h3>3. <code>requires_grad=True</code></h3>")
    html = Renderer().markdown("### a ** b\n", path=Path("a.md"), first_line=1).html
    assert html == "<h3>a ** b</h3>\n"  # not a bold heading: as CommonMark reads it


def test_a_lone_double_star_is_warned_at_its_line() -> None:
    text = "### **3. `requires_grad=True`\n\n正文 **粗体**：好，2**10 与 `a**b`\n\n另一段 ** 粗体 ** 好\n"
    assert [(d.line, d.message) for d in lint_text(Path("a.md"), text)] == [
        (1, "unclosed `**` in the heading `**3.`: read as a bold heading, the two stars left out"),
        (5, "unclosed `**` in `另一段 ** 粗体 ** 好`: shows as two stars"),
    ]
