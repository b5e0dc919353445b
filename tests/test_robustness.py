"""Robustness: whatever a source file holds, parse + render + lint finish, find the questions that
are there, and produce well-formed, inert card HTML.

Property-based tests feed arbitrary text, Markdown assembled from the constructs the sources use
(and misuse), and raw HTML; tests/nasty/ holds small hostile files; the 10 MB file and the
500-level indented list are generated at run time.
"""
from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deckgen.check import lint_text
from deckgen.model import ERROR, WARNING, Diagnostic, SourceFile
from deckgen.parse import parse_file, read_source
from deckgen.render import Renderer

# Wall-clock bounds in these tests only catch a hang or a quadratic blow-up (minutes to hours on
# these inputs); they are not speed targets, which scripts/benchmark.py measures and prints.
HANG_SECONDS = 120

NASTY = Path(__file__).parent / "nasty"
FAKE = NASTY / "generated.md"  # never written: the path generated text pretends to come from

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_RENDERER = Renderer([NASTY])


# --- what every run must satisfy -----------------------------------------------------------------

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class _CardChecker(HTMLParser):
    """Every non-void element closed in order; no script, no event handler, no javascript: URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inspect(tag, attrs)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inspect(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def _inspect(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.problems.append(f"<{tag}> survived")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name in ("href", "src") and "".join((value or "").split()).lower().startswith(("javascript:", "vbscript:")):
                self.problems.append(f"{name}={value!r} on <{tag}>")


def assert_safe_html(html: str) -> None:
    checker = _CardChecker()
    checker.feed(html)
    checker.close()
    assert checker.problems == [], (checker.problems, html)
    assert checker.open == [], (f"never closed: {checker.open}", html)
    assert "<script" not in html.lower()


def assert_diagnostics_point_into(diagnostics: list[Diagnostic], text: str) -> None:
    # Lines end as CommonMark (and so the cards) end them: at LF, CRLF or a lone CR. A lone CR
    # splits a heading from the line before it on the card, so a file's lines are counted there.
    lines = re.sub("\r\n?", "\n", text).count("\n") + 1
    for d in diagnostics:
        assert d.level in (ERROR, WARNING), d
        assert 0 <= d.line <= lines, d
        assert "could not check" not in d.message and "internal error" not in d.message, d


def run_all(path: Path, text: str) -> tuple[SourceFile, list[Diagnostic]]:
    """What `deckgen build` + `deckgen check` do with one file; every card's HTML checked."""
    source, diagnostics = parse_file(path, text, root=path.parent)
    for question in source.questions:
        rendered = _RENDERER.answer(question)
        assert_safe_html(rendered.html)
        assert_safe_html(_RENDERER.title(question).html)
        diagnostics += rendered.diagnostics
    diagnostics += lint_text(path, text)
    assert_diagnostics_point_into(diagnostics, text)
    return source, diagnostics


# --- arbitrary text -------------------------------------------------------------------------------


@PROPERTY
@given(st.text())
@example("\rA$")  # a lone CR ends a line: the `$` is on line 2
def test_any_text_parses_renders_and_lints(text: str) -> None:
    run_all(FAKE, text)


@PROPERTY
@given(st.text(alphabet=st.sampled_from("#【一】 \n$\\`~-*>|[]()<!/h1=\"'{}_^&;0a中"), max_size=300))
def test_markdown_alphabet_soup_parses_renders_and_lints(text: str) -> None:
    run_all(FAKE, text)


# --- Markdown assembled from the sources' constructs ---------------------------------------------

_CN = "一二三四五六七八九十"

# Inline material, each piece complete: a raw `<!--`, `<pre` or `<script` left open would run on
# over the next question heading, which is the point of other tests, not of this one.
_INLINE = st.sampled_from(
    [
        "文字", "中文，标点。", " ", "$x_i$", "$\\frac{a}{b}$", "$", "$$", "$$x^2$$", "价格$5和$10",
        "costs $5", "\\$", "\\(a\\)", "\\(", "\\)", "\\[b\\]", "\\[", "$\\( d_k \\)$", "{", "}",
        "`code $x`", "``", "`", "**粗**", "*斜*", "_x_", "[链接](https://example.com)",
        "[坏](javascript:alert(1))", "![图](missing.png)", "![远程](https://example.com/a.png)",
        "<b>b</b>", "<font color=red>红</font>", "<script>alert(1)</script>",
        '<img src="x.png" onerror="alert(1)">', '<a href="javascript:alert(1)" onclick="x()">j</a>',
        "<!-- 注释 -->", "<br>", "</p>", "<b>", "</div>", "&amp;", "&#0;", "【二】", "\\", "|", "[", "]",
    ]
)
_LINE = st.lists(_INLINE, min_size=1, max_size=8).map(lambda parts: "文" + "".join(parts))
_CODE_LINE = st.sampled_from(
    [
        "awk '{print $9}' file", "cp ${MODEL_DIR}/a $HOME", "x = {'a': 1}", "## 【二】不是问题", "$$", "$x$",
        "<script>alert(1)</script>", "\tindented\ttabs", "", "```python", "~~~", "<!--",
    ]
)
# A raw `<h2 id>` line is a question heading even when indented (parse takes indented ones, as the
# knowledge base indents some); only fences and comments make it content.
_FENCED_LINE = _CODE_LINE | st.just('<h2 id="a">不是标题</h2>')
_LANGUAGE = st.sampled_from(["", "python", "bash", "mermaid", "{python}", "cmd", "plaintext", "c++", "未知"])
_TEX_LINE = st.sampled_from(["\\frac{a}{b}", "x_i^2", "\\sum_{i=1}^n", "{", "}", "\\\\", "a &= b", "\\$", "\\text{中文}"])


@st.composite
def _fence(draw: st.DrawFn) -> str:
    # Inner lines may look like fences: a four-character fence is not closed by three.
    mark = draw(st.sampled_from(["````", "~~~~"]))
    body = draw(st.lists(_FENCED_LINE, max_size=5))
    return "\n".join([mark + draw(_LANGUAGE), *body, mark])


@st.composite
def _list(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 6))
    marker = draw(st.sampled_from(["- ", "* ", "1. "]))
    lines = [" " * (3 * level) + marker + draw(_LINE) for level in range(depth)]
    if draw(st.booleans()):  # a fence inside the deepest item
        indent = " " * (3 * (depth - 1) + 3)
        lines += ["", indent + "```python", indent + "x = 1", indent + "```"]
    return "\n".join(lines)


@st.composite
def _table(draw: st.DrawFn) -> str:
    columns = draw(st.integers(1, 3))
    rows = draw(st.lists(st.lists(_LINE, min_size=columns, max_size=columns), max_size=3))
    lines = ["| " + " | ".join(f"列{i}" for i in range(columns)) + " |", "|" + "---|" * columns]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


_HTML_BLOCK = st.sampled_from(
    [
        "<div>\n文\n</div>",
        "<!-- 注释里的 ## 【二】不是问题 -->",
        '<!--\n## 【三】多行注释\n<h2 id="x">x</h2>\n-->',
        "<pre>\n## 【二】pre 里的标题\n</pre>",
        "<script>alert(1)</script>",
        '<img src=x onerror=alert(1)>',
        "<details><summary>s</summary>文</details>",
        '<iframe src="https://example.com"></iframe>',
        "<style>p { color: red }</style>",
    ]
)

_BLOCK = st.one_of(
    st.lists(_LINE, min_size=1, max_size=3).map("\n".join),
    _fence(),
    st.lists(_TEX_LINE, max_size=4).map(lambda tex: "\n".join(["$$", *tex, "$$"])),
    st.lists(_LINE, min_size=1, max_size=3).map(lambda lines: "\n".join("> " + line for line in lines)),
    _list(),
    _table(),
    st.lists(_CODE_LINE, min_size=1, max_size=3).map(lambda lines: "\n".join("    " + line for line in lines)),
    _HTML_BLOCK,
    st.just("***"),
).filter(str.strip)  # an answer of blank lines is no card, rightly


@st.composite
def _article(draw: st.DrawFn) -> tuple[str, list[int]]:
    """An article and the 1-based lines of its question headings."""
    lines = ["# 深度学习基础", ""]
    heading_lines: list[int] = []
    for n in range(draw(st.integers(1, 6))):
        title = f"问题{n}" + draw(st.sampled_from(["", "：为什么？", " $d_k$ 的作用", " `code`", " <b>粗</b>", "【注】"]))
        heading_lines.append(len(lines) + 1)
        lines += [f"## 【{_CN[n]}】{title}", ""]
        for block in draw(st.lists(_BLOCK, min_size=1, max_size=5)):
            lines += [*block.split("\n"), ""]
    return "\n".join(lines), heading_lines


@PROPERTY
@given(_article())
def test_every_question_heading_outside_code_is_one_card(article: tuple[str, list[int]]) -> None:
    text, heading_lines = article
    source, _ = run_all(FAKE, text)
    assert source.layout == "article"
    assert [q.line for q in source.questions] == heading_lines


@settings(max_examples=60, deadline=None)
@given(_article(), st.sampled_from(["`````", "~~~~~", "`````python"]))
def test_an_unclosed_fence_swallows_the_questions_after_it(article: tuple[str, list[int]], mark: str) -> None:
    text, heading_lines = article
    lines = text.split("\n")
    # open a fence in the first answer, right under its heading: every later heading is code
    # (five characters: no fence of the generated answers can close it)
    lines.insert(heading_lines[0] + 1, mark)
    text = "\n".join(lines)
    source, diagnostics = run_all(FAKE, text)
    assert [q.line for q in source.questions] == heading_lines[:1]
    assert any(
        d.line == heading_lines[0] + 2 and d.is_error and d.message.startswith("unclosed code fence")
        for d in diagnostics
    )


# --- raw HTML -------------------------------------------------------------------------------------

_TAG = st.sampled_from(
    ["script", "img", "a", "div", "span", "b", "iframe", "svg", "math", "style", "font", "details", "p", "table", "td", "object"]
)
_ATTRIBUTE = st.sampled_from(
    [
        "", ' onerror="alert(1)"', " onclick=x()", ' href="javascript:alert(1)"', ' src="java\tscript:alert(1)"',
        ' style="background:url(javascript:alert(1))"', ' href="https://example.com"', ' src="x.png"', ' color="red"',
        " OnLoad=alert(1)", ' href="&#106;avascript:alert(1)"', ' xlink:href="javascript:alert(1)"',
    ]
)


@st.composite
def _html(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 12))):
        tag = draw(_TAG)
        kind = draw(st.sampled_from(["open", "close", "both", "text"]))
        if kind == "open":
            parts.append(f"<{tag}{draw(_ATTRIBUTE)}>")
        elif kind == "close":
            parts.append(f"</{tag}>")
        elif kind == "both":
            parts.append(f"<{tag}{draw(_ATTRIBUTE)}>内容 $x$</{tag}>")
        else:
            parts.append(draw(st.sampled_from(["文字", "\n", "\n\n", "alert(1)", "<!--", "-->", "<", ">", "&"])))
    return "".join(parts)


@PROPERTY
@given(_html(), _html())
def test_raw_html_in_titles_and_answers_comes_out_inert(title_html: str, answer_html: str) -> None:
    title = "问题 " + title_html.replace("\n", " ")
    text = f"# 深度学习基础\n\n## 【一】{title}\n\n文字在前。\n\n{answer_html}\n"
    source, _ = run_all(FAKE, text)
    assert [q.line for q in source.questions] == [3]


# --- knowledge-base layout ------------------------------------------------------------------------


@PROPERTY
@given(st.lists(st.lists(_BLOCK, min_size=1, max_size=3), min_size=1, max_size=5))
def test_every_raw_id_heading_outside_code_is_one_card(answers: list[list[str]]) -> None:
    lines = ["# 注意力机制知识点", ""]
    heading_lines = []
    for n, blocks in enumerate(answers, 1):
        heading_lines.append(len(lines) + 1)
        lines += [f'<h2 id="{n}.问题{n}">{n}.问题{n} $x_{n}$</h2>', ""]
        for block in blocks:
            lines += [*block.split("\n"), ""]
    text = "\n".join(lines)
    source, _ = run_all(FAKE, text)
    assert source.layout == "knowledge-base"
    assert [q.line for q in source.questions] == heading_lines


# --- nasty files ----------------------------------------------------------------------------------

# file → (1-based lines of the questions that must become cards, [(line, level, message start)]
# of the diagnostics that must be among those reported)
NASTY_FILES = {
    "empty.md": ([], []),
    "bom.md": ([3], []),
    "crlf.md": ([3, 11], [(13, WARNING, "unclosed math: `$`")]),
    "tabs.md": ([3, 16], []),
    "marker_only.md": (
        [11],
        [(3, ERROR, "question heading has no title"), (7, ERROR, "question heading has no title")],
    ),
    "fences.md": ([3, 12, 29], [(31, ERROR, "unclosed code fence opened here")]),
    "prices.md": (
        [3, 11],
        [
            (5, WARNING, "dollar signs pair into math: `$5 per hour"),
            (7, WARNING, "dollar signs pair into math: `$5和$10"),
            (9, WARNING, "dollar signs pair into math: `$HOME"),
        ],
    ),
    "comments.md": ([5, 16], []),
    "deep_nesting.md": ([3, 11], [(5, ERROR, "lists or quotes nested too deeply: the Markdown parser skips lines 5–13")]),
    "brackets.md": ([3, 17], []),
}

def test_every_nasty_file_is_listed() -> None:
    assert sorted(p.name for p in NASTY.glob("*.md")) == sorted(NASTY_FILES)


@pytest.mark.parametrize("name", sorted(NASTY_FILES))
def test_nasty_file(name: str) -> None:
    path = NASTY / name
    expected_lines, expected_diagnostics = NASTY_FILES[name]
    text, problems = read_source(path)
    assert text is not None and problems == []
    started = time.perf_counter()
    source, diagnostics = run_all(path, text)
    # A guard against a hang (a quadratic path takes hours here), not a speed target: speed is
    # measured by scripts/benchmark.py, which prints figures.
    assert time.perf_counter() - started < HANG_SECONDS
    assert [q.line for q in source.questions] == expected_lines
    reported = [(d.line, d.level, d.message) for d in diagnostics]
    for line, level, start in expected_diagnostics:
        assert any(r[:2] == (line, level) and r[2].startswith(start) for r in reported), (start, reported)


def test_nasty_answers_show_what_they_hold() -> None:
    def card(name: str, index: int) -> str:
        text, _ = read_source(NASTY / name)
        assert text is not None
        source, _ = parse_file(NASTY / name, text, root=NASTY)
        return _RENDERER.answer(source.questions[index]).html

    assert '<span class="math">\\(x_i\\)</span>' in card("bom.md", 0)
    assert "'$HOME'" in card("crlf.md", 0)
    fenced = card("fences.md", 0)
    assert "## 【二】这不是问题，它在代码里" in fenced and fenced.count("<pre") == 1
    assert "## 【四】被吞进代码的问题" in card("fences.md", 2)  # inside the unclosed block
    assert "答案后半部分" in card("comments.md", 0) and "多行注释" not in card("comments.md", 0)
    assert "[" * 20000 in card("brackets.md", 0)


def test_lint_reports_what_deep_nesting_drops(tmp_path: Path) -> None:
    text, _ = read_source(NASTY / "deep_nesting.md")
    assert text is not None
    source, diagnostics = run_all(NASTY / "deep_nesting.md", text)
    assert [q.line for q in source.questions][:1] == [3]
    assert [(d.line, d.level) for d in diagnostics if "nested too deeply" in d.message] == [(5, ERROR)]


def test_generated_500_level_indented_list(tmp_path: Path) -> None:
    items = "".join("  " * depth + f"- 第{depth}层 $x_{{{depth}}}$\n" for depth in range(500))
    text = f"# 深度学习基础\n\n## 【一】很深的列表\n\n{items}\n## 【二】之后\n\n答案。\n"
    started = time.perf_counter()
    source, _ = run_all(tmp_path / "deep.md", text)
    assert time.perf_counter() - started < HANG_SECONDS
    assert [q.line for q in source.questions] == [3, 506]


def test_generated_10_mb_file(tmp_path: Path) -> None:
    paragraph = (
        "注意力机制中，查询 $q_i$ 与键 $k_j$ 的点积除以 $\\sqrt{d_k}$ 再做 softmax，"
        "价格 $5 不是公式，`echo $HOME` 也不是。" * 20
    )

    def question(n: int) -> str:
        code = "```python\nprint(f'{n}: ${n}')\n```\n\n" if n % 10 == 0 else ""
        return (
            f"## 【一】问题{n}：为什么要缩放？\n\n{paragraph}\n\n"
            "$$\n\\text{Attention}(Q,K,V)=\\mathrm{softmax}(QK^T/\\sqrt{d_k})V\n$$\n\n" + code
        )

    parts = ["# 深度学习基础\n\n"]
    size = 0
    while size < 10_000_000:
        parts.append(question(len(parts) - 1))
        size += len(parts[-1].encode())
    count = len(parts) - 1
    path = tmp_path / "big.md"
    path.write_text("".join(parts), encoding="utf-8")
    assert path.stat().st_size >= 10_000_000

    text, problems = read_source(path)
    assert text is not None and problems == []
    source, diagnostics = parse_file(path, text, root=tmp_path)
    assert len(source.questions) == count
    assert diagnostics == []
    started = time.perf_counter()
    found = lint_text(path, text)
    lint_seconds = time.perf_counter() - started
    assert found == []
    assert lint_seconds < HANG_SECONDS, f"lint took {lint_seconds:.1f} s for 10 MB"
    for question in source.questions[::50]:
        assert_safe_html(_RENDERER.answer(question).html)
