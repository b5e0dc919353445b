"""deckgen.check.lint_text: each problem at its exact line, and the look-alikes it must leave alone."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deckgen.check import _parser, _trace_inline, lint_text
from deckgen.markdown import make_markdown
from deckgen.model import ERROR, WARNING

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PATH = Path("source/文章.md")


def lint(text: str) -> list[tuple[int, str, str]]:
    found = lint_text(PATH, text)
    assert all(d.path == PATH for d in found)
    return [(d.line, d.level, d.message) for d in found]


def only(text: str) -> tuple[int, str, str]:
    found = lint(text)
    assert len(found) == 1, found
    return found[0]


def assert_clean(text: str) -> None:
    assert lint(text) == []


# --- inline `$` ---------------------------------------------------------------------------------


def test_unclosed_dollar_is_a_warning_at_its_line() -> None:
    line, level, message = only("# 章\n\n## 【一】问题\n\n第一行\n其中 $x_i 是输入，\n没有闭合。\n")
    assert (line, level) == (6, WARNING)
    assert message.startswith("unclosed math: `$`")
    assert "$x_i" in message


def test_stray_closing_dollar_is_reported() -> None:
    # The escaped `\$` does not close the first formula, so the pairs shift and the last `$`
    # is left without a partner (a real line of the knowledge base).
    text = "权重矩阵 $\\mathbf{W}^K\\$ ， $\\mathbf{W}^V$ 将其映射\n"
    assert lint(text) == [
        (1, WARNING, "escaped `\\$` inside math `\\mathbf{W}^K\\$ ，`: it does not close the formula, the next `$` does"),
        (1, WARNING, "unclosed math: `$` in `\\mathbf{W}^V$ 将其映射` has no partner in its paragraph, so it shows as a raw `$`"),
    ]


def test_dollar_lines_inside_lists_quotes_and_tables() -> None:
    text = "- 一\n- 二 $a$\n  续行 $\\alpha 未闭合\n\n> 引用\n> 又 $b\n\n| a | b |\n|---|---|\n| $c | d |\n"
    assert [(line, level) for line, level, _ in lint(text)] == [(3, WARNING), (6, WARNING), (10, WARNING)]


def test_crlf_line_endings_keep_line_numbers() -> None:
    line, level, _ = only("a\r\n\r\nb\r\nc $x\r\n")
    assert (line, level) == (4, WARNING)


def test_prices_that_stay_text_are_fine() -> None:
    assert_clean("它 costs $5 a month.\n")
    assert_clean("价格5$，或者 US$ 10。\n")
    assert_clean("美元符号 $ 很常见。\n")
    assert_clean("价格 \\$5 和 \\$10。\n")


def test_prices_the_renderer_pairs_into_math_are_a_warning_not_an_error() -> None:
    # With allow_digits the renderer reads `$5和$` as a formula: the card shows "5和" in math.
    line, level, message = only("价格$5和$10。\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("dollar signs pair into math: `$5和$10")
    line, level, message = only("It costs $5 and $10.\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("dollar signs pair into math")


def test_shell_variables_in_prose_are_not_math() -> None:
    assert_clean("设置 $HOME 变量。\n")
    assert_clean("设置 ${MODEL_DIR} 变量。\n")


def test_prices_and_variables_paired_across_prose_are_a_warning() -> None:
    line, level, message = only("这台 costs $5 per hour，那台 US$ 10。\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("dollar signs pair into math: `$5 per hour，那台 US$ 10")
    line, level, message = only("变量 $HOME 与 ${MODEL_DIR} 都要设置。\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("dollar signs pair into math: `$HOME 与 ${MO")


def test_formulas_next_to_numbers_are_not_prices() -> None:
    assert_clean("取 $2$ 和 $3$，以及 $N$ 与 $KL(P||Q)$、$x$5 个。\n")


def test_math_glued_to_chinese_punctuation() -> None:
    assert_clean("其中为$x_i$，权重为$w_i$。损失为$L$：\n")


def test_image_alt_and_link_url_dollars_are_not_math() -> None:
    assert_clean("![价格 $5](img/a.png)\n")
    assert_clean("[链接](https://example.com/$x?a=$b)\n")


def test_a_dollar_in_alt_text_pairs_across_to_a_later_link() -> None:
    # The renderer reads `$5](img/a.png) 和 [链接](https://example.com/$` as one formula.
    line, level, message = only("![价格 $5](img/a.png) 和 [链接](https://example.com/$x?a=$b)\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("unclosed math: `$`")


def test_html_comment_is_not_checked() -> None:
    assert_clean("<!-- 备注 $x 未闭合 -->\n\n正文\n")


# --- code is never math ---------------------------------------------------------------------------


def test_dollars_in_code_are_never_math() -> None:
    text = (
        "```bash\nawk '{print $9}' file\ncp ${MODEL_DIR}/a $HOME\n```\n\n"
        "    echo $PATH $x_i\n\n"
        "用 `echo $x_i` 打印，或 `${MODEL_DIR}`。\n"
        "~~~\n$$ unclosed\n~~~\n"
    )
    assert_clean(text)


def test_a_price_before_a_code_span_does_not_pair_with_its_dollar() -> None:
    assert_clean("cost $5 and `echo $x`\n")


# --- `$$` display math ----------------------------------------------------------------------------


def test_well_formed_display_blocks() -> None:
    assert_clean("公式：\n$$\nL = \\sum_i (y_i - \\hat{y}_i)^2\n$$\n后文 $x$。\n")
    assert_clean("$$\n\\begin{aligned}\na &= b \\\\\nc &= d\n\\end{aligned}\n$$\n")
    assert_clean("$$ E = mc^2 $$\n\n行内 $$x^2$$ 也行。\n")
    assert_clean("$$\nx = 1\n$$ (1)\n")


def test_unclosed_display_math() -> None:
    text = "前文\n\n$$\na = b\n\n正文继续\n"
    line, level, message = only(text)
    assert (line, level) == (3, WARNING)
    assert message.startswith("unclosed display math `$$`")


def test_display_math_split_by_a_blank_line_reports_both_halves() -> None:
    text = "$$\na = b\n\nc = d\n$$\n"
    assert [(line, level, message.split(":")[0]) for line, level, message in lint(text)] == [
        (1, WARNING, "unclosed display math `$$`"),
        (5, WARNING, "unclosed display math `$$`"),
    ]


# --- \( \) and \[ \] ------------------------------------------------------------------------------


def test_bracket_math_well_formed() -> None:
    assert_clean("行内 \\( a^2 \\) 和\n\n\\[\nb^2\n\\]\n\n段中 \\[ c \\] 也行。\n")


def test_unbalanced_brackets() -> None:
    assert lint("第一行\n开 \\( a + b 未闭合\n") == [
        (2, WARNING, "unbalanced `\\(`: no `\\)` closes it in its paragraph")
    ]
    assert lint("多余 a \\) 右括号\n") == [(1, WARNING, "unbalanced `\\)`: no `\\(` opens it")]
    assert lint("\\[ x + y\n\n后文\n") == [(1, WARNING, "unbalanced `\\[`: no `\\]` closes it in its paragraph")]
    assert lint("前文\n\n文中 x \\] 多余\n") == [(3, WARNING, "unbalanced `\\]`: no `\\[` opens it")]


def test_escaped_backslash_before_a_paren_is_not_a_delimiter() -> None:
    assert_clean("路径 C:\\\\(x) 与 a\\\\[0]\n")


# --- braces and doubled delimiters ----------------------------------------------------------------


def test_unbalanced_braces_in_math() -> None:
    line, level, message = only("分数 $\\frac{a}{b$ 写错\n")
    assert (line, level) == (1, WARNING)
    assert message == "unbalanced braces in math `\\frac{a}{b`: a `{` is never closed"
    line, level, message = only("$$\nx}^2\n$$\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("unbalanced braces in math")
    assert message.endswith("a `}` closes nothing")


def test_escaped_braces_are_balanced() -> None:
    assert_clean("集合 $\\{x \\mid x > 0\\}$ 与 $\\left\\{ a \\right.$\n")


def test_doubled_delimiters() -> None:
    line, level, message = only("缩放因子 $\\( d_k \\)$ 的作用\n")
    assert (line, level) == (1, WARNING)
    assert message.startswith("doubled math delimiters `$\\(`")
    line, level, message = only("前文\n\n$$\n\\[ a = b \\]\n$$\n")
    assert (line, level) == (3, WARNING)
    assert message.startswith("doubled math delimiters `$$\\[`")


# --- code fences ----------------------------------------------------------------------------------


def test_unclosed_fence_swallowing_the_rest_of_the_file() -> None:
    text = "# 章\n\n## 【一】问\n\n```python\nprint(1)\n\n## 【二】下一问\n\n答。\n"
    expected = [(5, ERROR, "unclosed code fence opened here: everything after it, to the end of the file, becomes code")]
    assert lint(text) == expected
    assert lint(text.rstrip("\n")) == expected  # no newline at the end of the file
    assert lint("```") == [(1, *expected[0][1:])]
    assert_clean("```\n```")


def test_oddly_indented_closing_fences_that_commonmark_accepts() -> None:
    assert_clean("```python\nx = 1\n   ```\n\n后文\n")
    assert_clean("````\n```\n````\n")
    assert_clean("1. 步骤\n\n   ```python\n   x = 1\n     ```\n\n2. 下一步\n")


def test_fence_closed_below_its_list_item() -> None:
    # The closing fence sits left of the item's content: CommonMark ends the item (and its
    # fence) there, and the "closing" line opens a new fence that runs to the end of the file.
    text = "1. 步骤\n   ```python\n   x = 1\n```\n\n后文\n"
    assert lint(text) == [
        (2, WARNING, "unclosed code fence opened here: it runs to the end of its list item or quote (line 3); indent the closing fence like the opening one"),
        (4, ERROR, "unclosed code fence opened here: everything after it, to the end of the file, becomes code"),
    ]


def test_unknown_code_language() -> None:
    assert lint("```mermaid\ngraph TD\n```\n") == [(1, WARNING, "unknown code language 'mermaid': shown as plain text")]
    assert lint("文\n\n~~~ notalanguage {.x}\ny\n~~~\n") == [
        (3, WARNING, "unknown code language 'notalanguage': shown as plain text")
    ]


def test_known_and_plain_languages() -> None:
    for language in ("python", "Python", "bash", "sh", "json", "yaml", "cmd", "{python}", "text", "plaintext", "output", ""):
        assert_clean(f"```{language}\nx\n```\n")


# --- nesting past the parser's limit -------------------------------------------------------------


def test_a_list_nested_too_deeply_drops_the_rest_of_the_file() -> None:
    text = "# 章\n\n## 【一】问\n\n" + "- " * 60 + "深处\n\n## 【二】下一问\n\n答。\n"
    assert lint(text) == [
        (5, ERROR, "lists or quotes nested too deeply: the Markdown parser skips lines 5–9, so no card shows them")
    ]


def test_a_quote_nested_too_deeply_drops_its_own_lines() -> None:
    text = "前文\n\n" + "> " * 120 + "深处\n" + "> " * 120 + "更深\n\n后文 $x\n"
    assert [(line, level, message.split(",")[0]) for line, level, message in lint(text)] == [
        (3, ERROR, "lists or quotes nested too deeply: the Markdown parser skips lines 3–5"),
        (6, WARNING, "unclosed math: `$` in `后文 $x` has no partner in its paragraph"),
    ]


def test_forty_list_levels_are_fine() -> None:
    assert_clean("- " * 40 + "深处\n\n后文\n")
    assert_clean("".join("  " * depth + "- 项\n" for depth in range(40)))


# --- raw HTML question headings (knowledge-base layout) ------------------------------------------


def test_raw_heading_title_and_glued_text_are_checked() -> None:
    text = '<h2 id="1.问题">1.问题 $x</h2>\n答案紧贴标题 $\\alpha 未闭合\n'
    assert [(line, level) for line, level, _ in lint(text)] == [(1, WARNING), (2, WARNING)]


def test_raw_heading_inside_code_is_code() -> None:
    assert_clean('```html\n<h2 id="a">标题 $x</h2>\n```\n')


# --- robustness -----------------------------------------------------------------------------------


def test_empty_and_odd_input() -> None:
    for text in ("", "\n", "$", "$$", "\\", "\\(", "```", "\0$x\0", "\ufeff# 章\n"):
        found = lint_text(PATH, text)
        assert all(d.line >= 1 and "could not check" not in d.message for d in found), (text, found)


# --- the real knowledge base ----------------------------------------------------------------------


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*/*.md")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not _corpus_files(), reason="../shared/corpus is absent")
def test_corpus_findings_checked_by_hand() -> None:
    found = {
        path.relative_to(CORPUS).as_posix(): [
            (d.line, d.level, d.message.split(":")[0])
            for d in lint_text(path, path.read_text(encoding="utf-8"))
        ]
        for path in _corpus_files()
    }
    assert found == {
        "机器学习基础/损失函数知识点.md": [],
        # `$\mathbf{W}^K\$ ， $\mathbf{W}^V$`: the escaped `\$` keeps the first formula open.
        "深度学习基础/注意力机制知识点.md": [
            (656, WARNING, "escaped `\\$` inside math `\\mathbf{W}^K\\$ ，`"),
            (656, WARNING, "unclosed math"),
        ],
        "深度学习基础/激活函数层知识点.md": [],
        # its one `cmd` fence is Windows batch, which Pygments knows
        "编程基础：Python/AI行业常用Python代码案例考频考点.md": [],
    }


# --- lint sees the renderer's math ----------------------------------------------------------------

_INLINE_PIECES = st.sampled_from(
    ["$", "$$", "\\", "\\(", "\\\\(", "\\)", "\\[", "\\]", "\\$", "\\\\", "`", "``", "[", "]", "(", ")", "<", ">",
     "<b>", "![", "](x)", "*", "_", "{", "}", "&amp;", "x_i", "5", " ", "\n", "  \n", "价格", "，", "a"]
)


@settings(max_examples=300, deadline=None)
@example("\\\\(x\\) $y$")  # an escaped backslash, then `(`: no math until `$y$`
@example("\\$x$ \\\\$y$")
@given(st.lists(_INLINE_PIECES | st.text(max_size=3), max_size=40).map("".join))
def test_lint_sees_exactly_the_math_the_renderer_parses(src: str) -> None:
    # The lint's shortcut (visiting only `$` and `\`) must agree with markdown-it's tokenizer.
    src = src.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")  # as parsing does
    rendered = [
        (token.type, token.content)
        for token in make_markdown().parseInline(src)[0].children or []
        if token.type.startswith("math")
    ]
    seen = [(token.type, token.content) for _, token in _trace_inline(_parser(), src).math]
    assert seen == rendered
