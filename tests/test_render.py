"""Answer Markdown → the HTML a card shows (issue 2 "Render", issue 7 "Security")."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.model import WARNING, Diagnostic, MediaFile, Question
from deckgen.render import Rendered, Renderer, code_css
from tests.test_sanitize import assert_balanced

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def question(answer: str, *, path: Path = Path("/notes/q.md"), answer_line: int = 1, title: str = "T") -> Question:
    return Question(
        title=title,
        answer=answer,
        path=path,
        line=max(answer_line - 1, 1),
        answer_line=answer_line,
        section="S",
        deck=("S",),
        key="t",
    )


def render(answer: str, *, renderer: Renderer | None = None, **kwargs: object) -> Rendered:
    out = (renderer or Renderer()).answer(question(answer, **kwargs))  # type: ignore[arg-type]
    assert_balanced(out.html)
    return out


def html_of(answer: str) -> str:
    out = render(answer)
    assert out.diagnostics == []
    return out.html.strip()


# -- math ----------------------------------------------------------------------------------


def test_underscores_in_two_formulas_are_tex_not_emphasis() -> None:
    assert html_of("$x_i$ and $w_i$") == (
        '<p><span class="math">\\(x_i\\)</span> and <span class="math">\\(w_i\\)</span></p>'
    )


def test_bmatrix_keeps_its_row_breaks_and_escapes_ampersands() -> None:
    assert html_of("$$\n\\begin{bmatrix} a & b \\\\ c & d \\end{bmatrix}\n$$") == (
        '<div class="math display">\\[\n\\begin{bmatrix} a &amp; b \\\\ c &amp; d \\end{bmatrix}\n\\]</div>'
    )


def test_escaped_braces_and_norm_bars_keep_their_backslashes() -> None:
    assert html_of("集合 $\\{x \\mid \\|x\\| < 1\\}$") == (
        '<p>集合 <span class="math">\\(\\{x \\mid \\|x\\| &lt; 1\\}\\)</span></p>'
    )


def test_stars_in_math_are_not_emphasis() -> None:
    assert html_of("$a*b*c$ and $x^*$ *") == (
        '<p><span class="math">\\(a*b*c\\)</span> and <span class="math">\\(x^*\\)</span> *</p>'
    )


def test_less_than_and_ampersand_in_math_are_escaped_only_as_html_requires() -> None:
    assert html_of("$a<b$ & $c&d$") == (
        '<p><span class="math">\\(a&lt;b\\)</span> &amp; <span class="math">\\(c&amp;d\\)</span></p>'
    )


def test_math_glued_to_chinese_punctuation() -> None:
    assert html_of("设为$x_i$，其中$y$。") == (
        '<p>设为<span class="math">\\(x_i\\)</span>，其中<span class="math">\\(y\\)</span>。</p>'
    )


def test_display_math_glued_to_text_is_display_math() -> None:
    assert html_of("公式如下：$$x^2_i$$继续") == (
        '<p>公式如下：<span class="math display">\\[x^2_i\\]</span>继续</p>'
    )


def test_display_math_lines_right_under_text_stay_one_formula() -> None:
    # Read as paragraph text, the `+ ` line would start a list.
    assert html_of("损失为\n$$\nL = a_i\n+ b_i\n$$\n其中 a 为") == (
        "<p>损失为</p>\n"
        '<div class="math display">\\[\nL = a_i\n+ b_i\n\\]</div>\n'
        "<p>其中 a 为</p>"
    )


def test_display_math_opened_at_the_end_of_a_text_line() -> None:
    assert html_of("公式：$$\na_i\n$$\n其中$$b$$") == (
        '<p>公式：<span class="math display">\\[\na_i\n\\]</span>\n'
        '其中<span class="math display">\\[b\\]</span></p>'
    )


def test_display_math_indented_in_a_list_item() -> None:
    out = html_of("1. 第一步\n\n   $$\n   a_i = b_i\n   $$\n2. 第二步")
    soup = BeautifulSoup(out, "html.parser")
    first = soup.find("li")
    assert first.find("div", class_="math display").get_text() == "\\[\n   a_i = b_i\n   \\]"
    assert len(soup.find_all("li")) == 2


def test_display_math_glued_in_a_list_item() -> None:
    out = html_of("- 公式：\n  $$a_i$$\n- 下一项")
    assert '<li>公式：<div class="math display">\\[a_i\\]</div>\n</li>' in out


def test_bracket_delimiters_pass_through_as_math() -> None:
    assert html_of("\\(a_b\\) 与 \\[c_d\\]") == (
        '<p><span class="math">\\(a_b\\)</span> 与 <span class="math display">\\[c_d\\]</span></p>'
    )
    assert html_of("\\[\nx_1 + x_2\n\\]") == '<div class="math display">\\[\nx_1 + x_2\n\\]</div>'


def test_formula_ending_in_backslash_space_keeps_a_findable_closing_delimiter() -> None:
    assert html_of("$$a \\ $$") == '<div class="math display">\\[a \\ \\]</div>'
    assert "\\\\]" not in html_of("$$a\\$$")


def test_doubled_delimiters_from_the_source_are_unwrapped() -> None:
    assert html_of("$\\( d_k \\)$") == '<p><span class="math">\\( d_k \\)</span></p>'


def test_math_in_a_table_cell() -> None:
    out = html_of("| 公式 | 说明 |\n|---|---|\n| $x_i^2$ | 平方 |")
    assert '<td><span class="math">\\(x_i^2\\)</span></td>' in out


def test_equation_label_becomes_a_mathjax_tag() -> None:
    assert html_of("$$E = mc^2$$ (1)") == '<div class="math display">\\[E = mc^2 \\tag{1}\\]</div>'


def test_math_is_counted() -> None:
    assert render("$a$ $$b$$\n\n$$\nc\n$$\n\n\\(d\\)").math == 4


# -- code ----------------------------------------------------------------------------------


def test_dollar_in_bash_fenced_code_stays_a_dollar() -> None:
    out = html_of("```bash\nls -l | awk '{print $9}'\necho ${MODEL_DIR}\n```")
    assert out.startswith('<pre class="highlight" data-lang="bash"><code>')
    soup = BeautifulSoup(out, "html.parser")
    assert soup.get_text() == "ls -l | awk '{print $9}'\necho ${MODEL_DIR}\n"
    assert '<span class="nb">echo</span>' in out
    assert "math" not in out


def test_dollar_in_inline_code_stays_a_dollar() -> None:
    assert html_of("`${MODEL_DIR}` 与 `$x$`") == "<p><code>${MODEL_DIR}</code> 与 <code>$x$</code></p>"


def test_dollar_before_inline_code_does_not_pair_with_one_inside() -> None:
    assert html_of("花费 $5，命令 `echo $HOME`") == "<p>花费 $5，命令 <code>echo $HOME</code></p>"


def test_long_inline_code_marks_its_words_so_a_phone_breaks_it_only_between_them() -> None:
    code = "@app.route('/predict', methods=['POST'])"
    assert html_of(f"见 `{code}` 。") == (
        '<p>见 <code class="words"><span class="tok">@app.route(\'/predict\',</span> '
        '<span class="tok">methods=[\'POST\'])</span></code> 。</p>'
    )
    assert BeautifulSoup(html_of(f"`{code}`"), "html.parser").get_text() == code  # copies as written
    assert html_of("`short code, kept`") == "<p><code>short code, kept</code></p>"


def test_python_code_is_highlighted_with_pygments_classes() -> None:
    out = html_of("```python\ndef f(x):\n    return x_i * 2  # $x$\n```")
    assert out.startswith('<pre class="highlight" data-lang="python"><code><span class="k">def</span>')
    assert '<span class="c1"># $x$</span>' in out


def test_unknown_language_is_plain_text() -> None:
    out = render("文字\n\n```xyz\na <b> & c\n```", answer_line=40)
    assert out.html.strip() == (
        '<p>文字</p>\n<pre class="highlight" data-lang="xyz"><code>a &lt;b&gt; &amp; c\n</code></pre>'
    )
    assert out.diagnostics == []  # reported once, by `check` (tests/test_lint.py)


def test_missing_language_is_plain_text_without_a_warning() -> None:
    assert html_of("```\nx = {$a}\n```") == '<pre class="highlight"><code>x = {$a}\n</code></pre>'


@pytest.mark.parametrize("language", ["plaintext", "text", "mermaid"])
def test_plain_text_words_are_not_unknown_languages(language: str) -> None:
    out = html_of(f"```{language}\ngraph TD; A-->B\n```")
    assert out == f'<pre class="highlight" data-lang="{language}"><code>graph TD; A--&gt;B\n</code></pre>'


def test_cmd_fence_is_highlighted_as_windows_batch() -> None:
    assert '<span class="k">echo</span>' in html_of("```cmd\necho %PATH%\n```")


def test_code_note_html_matches_the_answer_and_tolerates_anything() -> None:
    renderer = Renderer()
    assert renderer.code("print(1)\n", "Python") == (
        '<pre class="highlight" data-lang="python"><code><span class="nb">print</span>'
        '<span class="p">(</span><span class="mi">1</span><span class="p">)</span>\n</code></pre>'
    )
    assert renderer.code("<script>x</script>\n", "nonsense") == (
        '<pre class="highlight" data-lang="nonsense"><code>&lt;script&gt;x&lt;/script&gt;\n</code></pre>'
    )


def test_code_css_styles_light_and_both_night_classes() -> None:
    css = code_css()
    assert ".highlight .k {" in css
    assert ".nightMode .highlight .k, .night_mode .highlight .k {" in css
    assert "\npre {" not in css  # nothing unscoped that would restyle the card's own <pre>
    assert "background: #" not in css  # the card's stylesheet colours code backgrounds


# -- structure -----------------------------------------------------------------------------


def test_pipe_table_is_wrapped_for_scrolling_and_keeps_alignment() -> None:
    assert html_of("| a | b |\n|---|:-:|\n| **1** | `2` |") == (
        '<div class="table-wrap"><table>\n<thead>\n<tr>\n<th>a</th>\n'
        '<th style="text-align:center">b</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n'
        '<td><strong>1</strong></td>\n<td style="text-align:center"><code>2</code></td>\n'
        "</tr>\n</tbody>\n</table>\n</div>"
    )


def test_nested_lists() -> None:
    assert html_of("- a\n  - b\n    1. c\n- d") == (
        "<ul>\n<li>a\n<ul>\n<li>b\n<ol>\n<li>c</li>\n</ol>\n</li>\n</ul>\n</li>\n<li>d</li>\n</ul>"
    )


def test_bold_inline_code_and_links() -> None:
    assert html_of("**粗体** `x_i` [链接](https://e.com/a_b)") == (
        '<p><strong>粗体</strong> <code>x_i</code> '
        '<a href="https://e.com/a_b" rel="noopener noreferrer">链接</a></p>'
    )


def test_raw_inline_html_anki_can_show_is_kept() -> None:
    assert html_of("<font color=DeepSkyBlue>稀疏</font>：a<br>b<sup>2</sup>") == (
        '<p><font color="DeepSkyBlue">稀疏</font>：a<br>b<sup>2</sup></p>'
    )


def test_raw_heading_text_is_markdown_and_loses_its_id() -> None:
    assert html_of('<h3 id="x">关于 $x_i$ 的 `code`</h3>') == (
        '<h3>关于 <span class="math">\\(x_i\\)</span> 的 <code>code</code></h3>'
    )


def test_leading_rule_is_not_front_matter() -> None:
    assert html_of("---\na: b\n---\n\ntext").startswith("<hr>")


def test_title_renders_inline_markdown() -> None:
    renderer = Renderer()
    title = renderer.title(question("", title="什么是 $x_i$ 与 `f()` 的 **区别**？")).html
    assert title == (
        '什么是 <span class="math">\\(x_i\\)</span> 与 <code>f()</code> 的 <strong>区别</strong>？'
    )
    assert renderer.title(question("", title="a<script>x</script>b")).html == "a&lt;script&gt;x&lt;/script&gt;b"


# -- images --------------------------------------------------------------------------------


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x.png").write_bytes(PNG)
    (tmp_path / "imgs" / "激活函数 图.png").write_bytes(PNG + b"2")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.png").write_bytes(PNG + b"other")
    return tmp_path


def test_local_image_is_packed_under_a_content_named_file(notes: Path) -> None:
    out = render("![示意图](./imgs/x.png)", path=notes / "q.md", renderer=Renderer([notes]))
    name = out.media[0].name
    assert re.fullmatch(r"x-[0-9a-f]{10}\.png", name)
    assert out.html.strip() == f'<p><img src="{name}" alt="示意图"></p>'
    assert out.media == [MediaFile((notes / "imgs" / "x.png").resolve(), name)]
    assert out.diagnostics == [] and out.remote_images == 0


def test_same_image_twice_is_one_media_file_and_same_names_in_two_folders_differ(notes: Path) -> None:
    (notes / "other" / "q.md").write_text("")
    renderer = Renderer([notes])
    out = render("![](imgs/x.png) ![](./imgs/x.png) ![](other/x.png)", path=notes / "q.md", renderer=renderer)
    assert len(out.media) == 2
    assert out.media[0].name != out.media[1].name
    other = render("![](x.png)", path=notes / "other" / "q.md", renderer=renderer)
    assert other.media[0].name == out.media[1].name


def test_image_with_non_ascii_name_and_spaces(notes: Path) -> None:
    out = render("![](imgs/激活函数%20图.png) <img src='imgs/激活函数 图.png' width=300>", path=notes / "q.md")
    assert len(out.media) == 1 and out.media[0].name.startswith("激活函数_图-")
    assert out.html.count(f'src="{out.media[0].name}"') == 2
    assert 'width="300"' in out.html


def test_raw_img_tag_is_packed_too(notes: Path) -> None:
    out = render('<div align="center"><img src="./imgs/x.png" alt="图"></div>', path=notes / "q.md")
    assert out.html.strip() == f'<div align="center"><img src="{out.media[0].name}" alt="图"></div>'


def test_missing_image_becomes_its_alt_text_with_a_warning_at_its_line(notes: Path) -> None:
    out = render("第一行\n第二行 ![缺失的图](imgs/none.png) 后文", path=notes / "q.md", answer_line=30)
    assert out.html.strip() == '<p>第一行\n第二行 <span class="image-missing">缺失的图</span> 后文</p>'
    assert out.diagnostics == [Diagnostic(notes / "q.md", 31, WARNING, "image not found: imgs/none.png")]
    assert out.media == []


def test_missing_raw_image_without_alt_shows_its_path(notes: Path) -> None:
    out = render('<img src="imgs/none.png">', path=notes / "q.md")
    assert out.html.strip() == '<span class="image-missing">imgs/none.png</span>'
    assert [d.message for d in out.diagnostics] == ["image not found: imgs/none.png"]


def test_remote_images_stay_remote_and_are_counted() -> None:
    out = render('![r](https://files.mdnice.com/a.png)\n\n<img src="http://e.com/b.png">')
    assert '<img src="https://files.mdnice.com/a.png" alt="r">' in out.html
    assert '<img src="http://e.com/b.png">' in out.html
    assert out.remote_images == 2 and out.media == [] and out.diagnostics == []


@pytest.mark.parametrize("src", ["../../../../etc/passwd", "../outside.png", "%2E%2E/outside.png"])
def test_image_outside_the_allowed_roots_is_refused_unread(notes: Path, src: str) -> None:
    (notes.parent / "outside.png").write_bytes(PNG)
    out = render(f"![secret]({src})", path=notes / "q.md", renderer=Renderer([notes]))
    assert out.html.strip() == '<p><span class="image-missing">secret</span></p>'
    assert out.media == []
    assert [d.message for d in out.diagnostics] == [
        f"image refused: {src.replace('%2E', '.')} is outside the source folders"
    ]


@pytest.mark.parametrize("src", ["/etc/passwd", "file:///etc/passwd", "C:\\secret.png"])
def test_absolute_image_paths_are_refused(notes: Path, src: str) -> None:
    out = render(f'<img src="{src}" alt="a">', path=notes / "q.md", renderer=Renderer([Path("/")]))
    assert out.media == [] and "image-missing" in out.html
    assert len(out.diagnostics) == 1 and out.diagnostics[0].message.startswith("image refused:")


def test_data_url_image_is_refused(notes: Path) -> None:
    out = render("![d](data:image/png;base64,AAAA)", path=notes / "q.md")
    assert out.html.strip() == '<p><span class="image-missing">d</span></p>'
    assert [d.message for d in out.diagnostics] == ["image refused: data: URL"]


def test_without_roots_images_come_only_from_the_files_folder(notes: Path) -> None:
    out = render("![](../x.png) ![](imgs/x.png)", path=notes / "q.md")
    assert len(out.media) == 1
    assert [d.message for d in out.diagnostics] == ["image refused: ../x.png is outside the source folders"]


def test_base_dir_overrides_the_files_folder(notes: Path) -> None:
    out = Renderer([notes]).markdown("![](x.png)", path=Path("/elsewhere/q.md"), first_line=1, base_dir=notes / "imgs")
    assert out.media[0].source == (notes / "imgs" / "x.png").resolve()


# -- security ------------------------------------------------------------------------------


def test_script_is_shown_as_text_and_reported_at_its_line() -> None:
    out = render("第一段\n\n<script>alert(1)</script>\n\n后文", answer_line=10)
    assert out.html.strip() == "<p>第一段</p>\n<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n<p>后文</p>"
    assert out.diagnostics == [Diagnostic(Path("/notes/q.md"), 12, WARNING, "HTML shown as text: <script>")]


@pytest.mark.parametrize("tag", ["style", "textarea", "script", "svg", "math", "select", "xmp", "iframe"])
@pytest.mark.parametrize("where", ["注意 <{tag}> 标签的用法：", "<{tag}> 标签的用法：", "<{tag}>"])
def test_prose_that_mentions_a_tag_keeps_the_rest_of_the_answer(tag: str, where: str) -> None:
    text = where.format(tag=tag) + "\n\n第二段 **粗体** 与 $x^2$。\n\n$$\nE = mc^2\n$$\n\n- 列表项\n\n<font color=red>红</font>"
    out = render(text)
    assert f"&lt;{tag}&gt;" in out.html
    assert "<p>第二段 <strong>粗体</strong> 与 <span class=\"math\">\\(x^2\\)</span>。</p>" in out.html
    assert "E = mc^2" in out.html and "<li>列表项</li>" in out.html and '<font color="red">红</font>' in out.html
    assert [d.message for d in out.diagnostics] == [f"HTML shown as text: <{tag}>"]


@pytest.mark.parametrize("opener", ["<!--", "<pre>", "<?php", "<![CDATA["])
def test_an_unclosed_comment_or_pre_does_not_swallow_what_follows(opener: str) -> None:
    out = render(f"{opener} 开头\n\n后文 **粗体**\n\n## 不是标题")
    assert "<strong>粗体</strong>" in out.html


def test_allowed_raw_html_and_closed_comments_stay_html() -> None:
    out = render('<div align="center">\n<img src="https://e.com/a.png" width="50%">\n</div>\n\n'
                 "<!-- 注释 -->\n\n<pre>\na  b\n</pre>\n\n<small>小字</small>\n\n后文")
    assert out.html.strip() == (
        '<div align="center">\n<img src="https://e.com/a.png" width="50%">\n</div>\n\n'
        "<pre>a  b\n</pre>\n<p>小字</p>\n<p>后文</p>"
    )
    assert [d.message for d in out.diagnostics] == ["HTML removed: <small>"]


def test_event_handlers_and_javascript_urls_are_removed_and_reported() -> None:
    out = render(
        'a <img src="https://e.com/a.png" onerror="alert(1)">\n'
        'b <a href="javascript:alert(1)" onclick="x()">j</a>\n'
        "c <iframe src=\"https://e.com\"></iframe> <object data='x'></object>",
        answer_line=5,
    )
    assert out.html.strip() == (
        '<p>a <img src="https://e.com/a.png">\nb <a rel="noopener noreferrer">j</a>\n'
        'c &lt;iframe src="https://e.com"&gt;&lt;/iframe&gt; &lt;object data=\'x\'&gt;&lt;/object&gt;</p>'
    )
    assert [(d.line, d.message) for d in out.diagnostics] == [
        (5, "HTML removed: onerror attribute"),
        (6, "HTML removed: javascript: URL"),
        (6, "HTML removed: onclick attribute"),
        (7, "HTML shown as text: <iframe>"),
        (7, "HTML shown as text: <object>"),
    ]


def test_raw_image_with_a_javascript_source_is_replaced_by_its_alt_text() -> None:
    out = render('<img src="javascript:alert(1)" alt="图">', answer_line=3)
    assert out.html.strip() == '<span class="image-missing">图</span>'
    assert out.diagnostics == [Diagnostic(Path("/notes/q.md"), 3, WARNING, "image refused: javascript: URL")]


def test_markdown_link_with_a_disallowed_scheme_loses_its_href() -> None:
    out = render("[f](ftp://e.com/x)")
    assert out.html.strip() == '<p><a rel="noopener noreferrer">f</a></p>'
    assert [d.message for d in out.diagnostics] == ["HTML removed: ftp: URL"]


def test_markdown_javascript_link_is_never_a_link() -> None:
    out = render("[x](javascript:alert(1))")
    assert "<a" not in out.html and "href" not in out.html


@pytest.mark.parametrize(
    "nasty",
    [
        "<div><table><tr><td>$$\n```\n$x_\n<img src=\"\x00\">\n" + "[" * 5000 + "- " * 200,
        "![](a%00b.png) ![](http://[x) <img src='http://[::1'> ![](" + "a/" * 3000 + "x.png)",
        "> " * 300 + "$$\n" * 50,
    ],
)
def test_bad_input_never_raises(nasty: str) -> None:
    out = render(nasty)
    assert all(d.level == WARNING for d in out.diagnostics)


_PIECES = [*"$\\`*_[]()<>!|#-+ \n\tax1{}&\"'=/:.", "<img src=", "```", "$$", "<font color=red>", "为", "，"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_any_text_renders_to_balanced_html_with_markup_free_math(text: str) -> None:
    out = render(text)
    for math in BeautifulSoup(out.html, "html.parser").select(".math"):
        assert math.find() is None


# -- the real knowledge base ---------------------------------------------------------------


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*/*.md")) if CORPUS.is_dir() else []


def _own_lines(text: str) -> str:
    """Raw headings on lines of their own, as the parser hands answers over."""
    return re.sub(r"^[ \t]*(<h[1-6][^>]*>.*?</h[1-6]>)[ \t]*$", r"\n\1\n", text, flags=re.M)


def _scan(text: str) -> tuple[list[str], int]:
    """An independent scan of a Markdown file: its fenced code blocks and its `$$` count outside them."""
    fences: list[str] = []
    dollars = 0
    fence: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        opening = re.match(r"^\s*(`{3,}|~{3,})", line)
        if fence is None and opening:
            fence, body = opening.group(1), []
        elif fence is not None and re.fullmatch(rf"\s*{fence}\s*", line):
            fences.append(textwrap.dedent("\n".join(body)).strip())
            fence = None
        elif fence is not None:
            body.append(line)
        else:
            dollars += line.count("$$")
    return fences, dollars


@pytest.mark.skipif(not _corpus_files(), reason="../shared/corpus is absent")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_real_knowledge_base_file(path: Path) -> None:
    text = _own_lines(path.read_text(encoding="utf-8"))
    out = Renderer([CORPUS]).markdown(text, path=path, first_line=1)
    assert_balanced(out.html)
    soup = BeautifulSoup(out.html, "html.parser")
    fences, dollars = _scan(text)
    # every $$…$$ is display math
    assert out.html.count("\\[") == out.html.count("\\]") == dollars // 2
    # no emphasis, link or other markup inside any formula
    for math in soup.select(".math"):
        assert math.find() is None, math
    # every fenced block intact, in order
    blocks = [textwrap.dedent(pre.get_text()).strip() for pre in soup.select("pre.highlight")]
    it = iter(blocks)
    assert all(any(block == fence for block in it) for fence in fences)
    assert not [d for d in out.diagnostics if "HTML removed" in d.message]


@pytest.mark.skipif(not _corpus_files(), reason="../shared/corpus is absent")
def test_real_images_are_packed() -> None:
    # (how fast the sample renders is scripts/benchmark.py's to measure, not a test's)
    renderer = Renderer([CORPUS])
    texts = [(p, _own_lines(p.read_text(encoding="utf-8"))) for p in _corpus_files()]
    outs = [renderer.markdown(text, path=p, first_line=1) for p, text in texts]
    media = {m.name for out in outs for m in out.media}
    assert len(media) == 3 and all(m.endswith(".png") for m in media)
