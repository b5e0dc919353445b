"""deckgen.parse: source files in both layouts → questions, sections, TOC, diagnostics."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.ids import normalize_key
from deckgen.model import ERROR, WARNING
from deckgen.parse import coverage, discover, parse_file, parse_sources, read_source

FIXTURES = Path(__file__).parent / "fixtures" / "parse"
ARTICLE = FIXTURES / "article" / "面试文章.md"
ATTENTION = FIXTURES / "kb" / "深度学习基础" / "注意力机制.md"
LOSS = FIXTURES / "kb" / "机器学习基础" / "损失函数.md"
SHARED_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the one line of `path` that contains `needle`."""
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def parse(path: Path, root: Path | None = None):
    text, problems = read_source(path)
    assert text is not None and problems == []
    return parse_file(path, text, root=root or path.parent)


def by_title(questions):
    return {q.title: q for q in questions}


def assert_lines_map_to_file(question, text: str) -> None:
    """`answer_line + i` is the file line of answer line i (blank where a raw heading stood)."""
    file_lines = text.split("\n")
    for i, line in enumerate(question.answer.split("\n")):
        original = file_lines[question.answer_line - 1 + i]
        assert line == original or (line == "" and "<h" in original) or line in original, (
            question.title,
            i,
            line,
            original,
        )


# --- Reading and discovering ---------------------------------------------------------------------


def test_read_source_strips_bom_and_normalizes_line_endings_but_keeps_tabs(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes("\ufeff# 标题\r\n\tcode\rlast\n".encode())
    text, problems = read_source(path)
    assert problems == []
    assert text == "# 标题\n\tcode\nlast\n"


def test_read_source_reports_invalid_utf8_with_byte_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.md"
    path.write_bytes("# 标题\n第二行\n".encode() + "中文".encode("gbk") + b"\n")
    text, problems = read_source(path)
    assert text is None
    offset = len("# 标题\n第二行\n".encode())
    assert [str(p) for p in problems] == [
        f"{path}:3: error: not UTF-8: invalid byte 0x{'中'.encode('gbk')[0]:02x} at byte offset {offset}"
    ]


def test_read_source_reports_a_file_it_cannot_read(tmp_path: Path) -> None:
    text, problems = read_source(tmp_path)  # a folder
    assert text is None and problems[0].is_error and problems[0].line == 0


def test_discover_walks_folders_in_order_and_skips_readme_hidden_and_build(tmp_path: Path) -> None:
    for name in ["b/2.md", "b/1.md", "a.md", "README.md", "b/Readme.MD", ".git/x.md", "b/.draft/y.md",
                 "build/z.md", "b/build/z.md", "notes.txt", "c/.hidden.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# x\n", encoding="utf-8")
    pairs, problems = discover([tmp_path])
    assert problems == []
    assert [file.relative_to(tmp_path).as_posix() for _, file in pairs] == ["a.md", "b/1.md", "b/2.md"]
    assert {root for root, _ in pairs} == {tmp_path}


def test_discover_takes_a_file_as_its_own_root_and_reports_missing_paths(tmp_path: Path) -> None:
    file = tmp_path / "topic" / "x.md"
    file.parent.mkdir()
    file.write_text("# x\n", encoding="utf-8")
    pairs, problems = discover([file, tmp_path / "nope", file])
    assert pairs == [(file.parent, file)]
    assert [(p.path, p.line, p.level, p.message) for p in problems] == [
        (tmp_path / "nope", 0, ERROR, "no such file or folder")
    ]


def test_discover_warns_about_a_folder_without_markdown(tmp_path: Path) -> None:
    pairs, problems = discover([tmp_path])
    assert pairs == [] and [p.level for p in problems] == [WARNING]


# --- Article layout ------------------------------------------------------------------------------


def test_article_sections_titles_and_which_parts_give_no_cards() -> None:
    source, _ = parse(ARTICLE)
    assert source.layout == "article"
    assert source.front_matter == {"title": "测试文章：第一式", "series": "三年面试五年模拟"}
    assert [(q.section, q.title) for q in source.questions] == [
        ("AI绘画基础", "AI绘画大模型的数据预处理都包含哪些步骤？"),
        ("AI绘画基础", "训练流程 $x_i$ 有哪些步骤？"),
        ("深度学习基础", "ROPE位置编码有何特点？"),
    ]
    for q in source.questions:
        assert q.deck == (q.section,) and q.tags == (q.section,)
        assert "前言" not in q.answer and "其他文章" not in q.answer and "不属于任何问题" not in q.answer


def test_article_answer_keeps_its_own_headings_and_fenced_hash_lines() -> None:
    source, _ = parse(ARTICLE)
    first = source.questions[0]
    assert first.line == line_of(ARTICLE, "【一】AI绘画大模型")
    assert first.answer_line == line_of(ARTICLE, "数据预处理包括")
    assert first.answer.split("\n")[0] == "数据预处理包括清洗、标注和增强。"
    assert "### 数据清洗" in first.answer
    assert first.answer.endswith('# 这一行在代码块里，不是标题\nprint("清洗完成")\n```')
    assert [(b.language, b.line, b.code) for b in first.code_blocks] == [
        ("python", line_of(ARTICLE, "```python"), '# 这一行在代码块里，不是标题\nprint("清洗完成")\n')
    ]


def test_article_code_block_with_claimed_output_and_pinned_id() -> None:
    source, _ = parse(ARTICLE)
    second = source.questions[1]
    assert second.explicit_id == "train-flow" and second.key == "train-flow" and second.pinned
    assert not source.questions[0].pinned
    assert "deckgen-id" not in second.answer
    assert second.answer_line == line_of(ARTICLE, "先预训练")
    [block] = second.code_blocks
    assert block.language == "python"  # `Python title="train.py"`: first word, lower-cased
    assert block.line == line_of(ARTICLE, 'title="train.py"')
    assert block.code == "print(1 + 1)\n"
    assert block.claimed_output == "2\n"
    assert block.claimed_output_line == line_of(ARTICLE, "输出：") + 2


def test_article_raw_heading_gives_explicit_id_and_keeps_glued_text() -> None:
    source, _ = parse(ARTICLE)
    rope = source.questions[2]
    assert rope.explicit_id == "rope-feature" and rope.key == "rope-feature"
    assert not rope.pinned  # an HTML id names the question; only the marker pins it
    assert rope.line == line_of(ARTICLE, '<h2 id="rope-feature">')
    assert rope.answer_line == rope.line + 1
    assert rope.answer == "旋转位置编码紧贴在标题下面，$\\theta_i$ 随位置变化。"


def test_article_problems_are_reported_at_their_lines() -> None:
    _, problems = parse(ARTICLE)
    assert [(p.line, p.level, p.message) for p in problems] == [
        (line_of(ARTICLE, "## 【二十三】"), ERROR, "question heading has no title: no card"),
        (line_of(ARTICLE, "【三】还没有答案"), WARNING, "empty answer: no card"),
    ]


def test_article_answer_lines_map_to_file_lines() -> None:
    source, _ = parse(ARTICLE)
    for question in source.questions:
        assert_lines_map_to_file(question, ARTICLE.read_text(encoding="utf-8"))


def test_article_question_outside_any_section_is_an_error() -> None:
    text = "## 【一】没有章节的问题\n\n答案。\n\n# 章节\n\n## 【二】有章节\n\n答案。\n"
    source, problems = parse_file(Path("x.md"), text, root=Path("."))
    assert [q.title for q in source.questions] == ["有章节"]
    assert [(p.line, p.message) for p in problems] == [(1, "question outside any section: no card")]


def test_article_section_is_the_nearest_shallower_heading_and_any_numeral_works() -> None:
    text = "# 大模型\n\n## 微调 基础\n\n### 【二十三】LoRA 是什么？\n\n低秩适配。\n\n## 【十二】RLHF？\n\n对齐。\n"
    source, _ = parse_file(Path("x.md"), text, root=Path("."))
    assert [(q.title, q.section, q.tags) for q in source.questions] == [
        ("LoRA 是什么？", "微调 基础", ("微调_基础",)),
        ("RLHF？", "大模型", ("大模型",)),
    ]


def test_article_raw_subheading_inside_an_answer_stays_as_a_heading_line() -> None:
    text = '# 章节\n\n## 【一】问题\n\n开头。\n\n<h3 id="sub">小节 $x$</h3>\n紧贴的文字。\n'
    source, _ = parse_file(Path("a.md"), text, root=Path("."))
    [question] = source.questions
    assert question.answer == "开头。\n\n### 小节 $x$\n紧贴的文字。"
    assert question.answer_line == 5


def test_layout_is_decided_by_what_most_headings_are() -> None:
    article = '<h1 id="ai">AI绘画基础</h1>\n\n## 【一】问题一\n\n答案。\n\n## 【二】问题二\n\n答案。\n'
    source, _ = parse_file(Path("a.md"), article, root=Path("."))
    assert source.layout == "article"
    assert [(q.section, q.title) for q in source.questions] == [("AI绘画基础", "问题一"), ("AI绘画基础", "问题二")]
    kb = '<h1 id="1.a">1.问题一</h1>\n\n### 【一】小节\n\n答案。\n\n<h1 id="2.b">2.问题二</h1>\n\n答案。\n'
    source, _ = parse_file(Path("k.md"), kb, root=Path("."))
    assert source.layout == "knowledge-base"
    assert [q.title for q in source.questions] == ["问题一", "问题二"]
    assert "### 【一】小节" in source.questions[0].answer


def test_split_article_merges_sections_by_name_in_order() -> None:
    corpus = parse_sources([FIXTURES / "article_split"])
    assert corpus.diagnostics == []
    assert [(s.name, [q.title for q in s.questions]) for s in corpus.sections] == [
        ("AI绘画基础", ["AI绘画大模型的数据预处理都包含哪些步骤？", "AI绘画大模型的训练流程都包含哪些步骤？"]),
        ("深度学习基础", ["ROPE位置编码有何特点？"]),
    ]


# --- Knowledge-base layout -----------------------------------------------------------------------


def test_kb_questions_titles_decks_and_grouping_tags() -> None:
    source, problems = parse(ATTENTION, root=FIXTURES / "kb")
    assert problems == []
    assert source.layout == "knowledge-base"
    assert [(q.title, q.tags) for q in source.questions] == [
        ("Transformer Encoder 有什么子层？", ("深度学习基础", "Transformer模块")),
        ("为什么 attention 要 scaled？", ("深度学习基础", "Transformer模块")),
        ("什么是 $\\sqrt{d_k}$ 缩放？", ("深度学习基础", "Transformer模块")),
        ("KV Cache 的原理", ("深度学习基础", "推理优化")),
        ("不在目录里的问题", ("深度学习基础", "推理优化")),
        ("介绍一下 RoPE", ("深度学习基础", "第三部分：位置编码")),
    ]
    for q in source.questions:
        assert q.section == "深度学习基础" and q.deck == ("深度学习基础", "注意力机制")
        assert "<h1" not in q.answer.replace('<h1 id="8.代码里的标题">', "")
        assert "Transformer模块" not in q.answer and "推理优化" not in q.answer
    assert "第三部分：位置编码" not in by_title(source.questions)  # an empty entry: no card


def test_kb_raw_headings_in_both_quote_styles_give_ids_and_keys() -> None:
    questions = by_title(parse(ATTENTION)[0].questions)
    single = questions["Transformer Encoder 有什么子层？"]
    assert single.explicit_id == "1.TransformerEncoder有什么子层？"
    assert single.key == normalize_key("1.TransformerEncoder有什么子层？", is_id=True)
    assert single.line == line_of(ATTENTION, "<h1 id='1.TransformerEncoder")
    double = questions["为什么 attention 要 scaled？"]
    assert double.explicit_id == "2.为什么attention要scaled？"


def test_kb_answer_keeps_subheadings_and_glued_text() -> None:
    questions = by_title(parse(ATTENTION)[0].questions)
    first = questions["Transformer Encoder 有什么子层？"]
    assert first.answer == "编码器由多头自注意力和前馈网络组成。\n\n### 残差结构的介绍\n\n每个子层外面都有残差连接。"
    glued = questions["为什么 attention 要 scaled？"]
    assert glued.answer_line == glued.line + 1
    assert glued.answer.startswith("点积随维度增大")
    # the fence right under the glued line is a code block, not part of an HTML block
    assert [(b.language, b.line) for b in glued.code_blocks] == [("python", glued.line + 2)]


def test_kb_indented_raw_heading_with_math_in_its_title() -> None:
    scaled = by_title(parse(ATTENTION)[0].questions)["什么是 $\\sqrt{d_k}$ 缩放？"]
    assert scaled.line == line_of(ATTENTION, '  <h2 id="3.什么是缩放">')
    assert scaled.answer == "缩放让 softmax 不饱和。"


def test_kb_numbered_markdown_heading_linked_from_toc_is_a_question() -> None:
    kv = by_title(parse(ATTENTION)[0].questions)["KV Cache 的原理"]
    assert kv.line == line_of(ATTENTION, "## 4. KV Cache")
    assert kv.explicit_id is None and kv.key == normalize_key("KV Cache 的原理")
    assert kv.answer == "缓存已经算过的 K 和 V。"


def test_kb_raw_heading_inside_a_code_fence_is_code() -> None:
    questions = parse(ATTENTION)[0].questions
    assert all("代码里的标题" not in q.title for q in questions)
    rope = by_title(questions)["介绍一下 RoPE"]
    assert rope.code_blocks[0].code == '<h1 id="8.代码里的标题">8.代码里的标题</h1>\n'


def test_kb_toc_is_parsed_and_gives_no_card() -> None:
    source, _ = parse(ATTENTION)
    assert len(source.toc) == 6
    assert (source.toc[0].title, source.toc[0].anchor, source.toc[0].line) == (
        "1.Transformer Encoder 有什么子层？",
        "user-content-1.TransformerEncoder有什么子层？",
        3,
    )
    assert all(q.line > source.toc[-1].line for q in source.questions)


def test_kb_coverage_reports_each_difference_at_its_line() -> None:
    source, _ = parse(ATTENTION)
    toc_line, question_line = line_of(ATTENTION, "- [5."), line_of(ATTENTION, 'id="附加问题"')
    assert [str(d) for d in coverage(source)] == [
        f"{ATTENTION}:{toc_line}: warning: TOC entry without a question: 5.目录里有但正文没有的问题",
        f"{ATTENTION}:{question_line}: warning: question not in the table of contents: 不在目录里的问题",
    ]


def test_kb_raw_toc_heading_text_after_closing_tag_output_and_pin() -> None:
    source, problems = parse(LOSS)
    assert problems == [] and coverage(source) == []
    assert [t.title for t in source.toc] == ["1.Softmax的定义和作用", "2.交叉熵的定义"]
    softmax, cross = source.questions
    assert softmax.answer_line == softmax.line == line_of(LOSS, "<h2 id=\"1.softmax")
    assert softmax.answer.split("\n")[0] == "Softmax 把分数变成概率。"
    [block] = softmax.code_blocks
    assert block.claimed_output == "1.0\n"
    assert block.claimed_output_line == line_of(LOSS, "```text")
    assert (cross.explicit_id, cross.key, cross.pinned) == ("cross-entropy", "cross-entropy", True)
    assert cross.answer.startswith("交叉熵衡量") and cross.answer_line == line_of(LOSS, "交叉熵衡量")


def test_kb_answer_lines_map_to_file_lines() -> None:
    for path in (ATTENTION, LOSS):
        for question in parse(path)[0].questions:
            assert_lines_map_to_file(question, path.read_text(encoding="utf-8"))


def test_kb_renumbering_keeps_keys() -> None:
    text = ATTENTION.read_text(encoding="utf-8")
    before = {q.title: q.key for q in parse_file(ATTENTION, text, root=ATTENTION.parent)[0].questions}
    renumbered = (
        text.replace('<h1 id="2.为什么attention要scaled？">2.', '<h1 id="5.为什么attention要scaled？">5.')
        .replace("## 4. KV Cache", "## 9. KV Cache")
        .replace("[4.KV Cache 的原理](#4.", "[9.KV Cache 的原理](#9.")
    )
    after = {q.title: q.key for q in parse_file(ATTENTION, renumbered, root=ATTENTION.parent)[0].questions}
    assert after == before


def test_kb_folder_sections_subdecks_and_skipped_readmes() -> None:
    corpus = parse_sources([FIXTURES / "kb"])
    # the fixture's table of contents and its questions differ once each way: both reported
    assert [(d.path.name, d.line, d.level, d.message) for d in corpus.diagnostics] == [
        ("注意力机制.md", 7, "warning", "TOC entry without a question: 5.目录里有但正文没有的问题"),
        ("注意力机制.md", 36, "warning", "question not in the table of contents: 不在目录里的问题"),
    ]
    assert [f.path.name for f in corpus.files] == ["损失函数.md", "注意力机制.md"]
    assert [(s.name, len(s.questions)) for s in corpus.sections] == [("机器学习基础", 2), ("深度学习基础", 6)]
    assert corpus.sections[0].questions[0].deck == ("机器学习基础", "损失函数")


def test_kb_file_directly_in_the_root_takes_the_root_folder_as_section() -> None:
    corpus = parse_sources([FIXTURES / "kb" / "深度学习基础"])
    assert {q.deck for q in corpus.questions} == {("深度学习基础", "注意力机制")}
    corpus = parse_sources([ATTENTION])
    assert {q.section for q in corpus.questions} == {"深度学习基础"}


def test_kb_crlf_and_bom_give_the_same_questions_and_lines(tmp_path: Path) -> None:
    crlf = tmp_path / "深度学习基础" / "注意力机制.md"
    crlf.parent.mkdir()
    crlf.write_bytes(b"\xef\xbb\xbf" + ATTENTION.read_bytes().replace(b"\n", b"\r\n"))
    expected = parse(ATTENTION)[0].questions
    got = parse_sources([tmp_path]).questions
    assert [(q.title, q.line, q.answer_line, q.answer, q.key, q.tags) for q in got] == [
        (q.title, q.line, q.answer_line, q.answer, q.key, q.tags) for q in expected
    ]


def test_unclosed_fence_swallowing_a_question_is_reported() -> None:
    text = (
        '<h1 id="1.a">1.第一题</h1>\n\n答案。\n\n```python\nprint(1)\n\n'
        '<h1 id="2.b">2.第二题</h1>\n\n答案二。\n'
    )
    source, problems = parse_file(Path("k.md"), text, root=Path("."))
    assert [q.title for q in source.questions] == ["第一题"]
    assert [(p.line, p.level) for p in problems] == [(8, WARNING)]
    assert "code fence opened at line 5, which is never closed" in problems[0].message


@pytest.mark.parametrize(
    ("between", "titles"),
    [
        # a line at column 0 ends the list item, and with it the fence opened there
        ("- 列表\n  ```\n  code\n", ["第一题", "第二题"]),
        ("- 列表\n  ```\n  code\n  ", ["第一题"]),  # indented: still inside the fence
        ("    code\n", ["第一题", "第二题"]),  # an unindented line ends an indented code block
        ("<!--\n", ["第一题"]),  # inside a comment
        ("> ```\n> code\n", ["第一题", "第二题"]),  # a line without `>` ends the quote
    ],
)
def test_raw_heading_is_content_only_where_commonmark_says_so(between: str, titles: list[str]) -> None:
    text = f'<h1 id="1.a">1.第一题</h1>\n\n{between}<h1 id="2.b">2.第二题</h1>\n\n答案。\n-->\n'
    source, _ = parse_file(Path("k.md"), text, root=Path("."))
    assert [q.title for q in source.questions] == titles
    for block in source.questions[0].code_blocks:
        assert block.code.startswith("code\n")
        assert ("第二题" in block.code) == (len(titles) == 1)


def test_non_utf8_file_is_reported_and_the_others_still_parse(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes(b"# x\n\xff\n")
    (tmp_path / "b.md").write_text("# 章节\n\n## 【一】问题\n\n答案\n", encoding="utf-8")
    corpus = parse_sources([tmp_path])
    assert [str(d) for d in corpus.diagnostics] == [
        f"{tmp_path / 'a.md'}:2: error: not UTF-8: invalid byte 0xff at byte offset 4"
    ]
    assert [q.title for q in corpus.questions] == ["问题"]


# --- Never raise, linear time --------------------------------------------------------------------

FRAGMENTS = [
    "# 章节", "## 【一】问题", "## 【十二】", "【一】", "<h2 id='1.x'>1.x</h2>",
    '<h1 id="目录">目录</h1>', "  <h3 id=\"q\">3.q $x$</h3>glued", "<h2 id='open'>unclosed",
    "# 目录", "- [1.x](#1.x)", "```", "```python", "~~~", "    indented", "输出：",
    "<!-- deckgen-id: k -->", "<!--", "-->", "## 3. 编号", "## 1、分组", "$$", "> quote",
    "- item", "  - nested", "---", "text", "", "\t", "\r", "\ufeff", "\0", "</h2>", "<pre>",
    "setext", "===",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_parse_file_never_raises_and_keeps_line_mapping(parts: list[str], sep: str) -> None:
    text = sep.join(parts)
    source, problems = parse_file(Path("f.md"), text, root=Path("."))
    lines = text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff").split("\n")
    for q in source.questions:
        assert 1 <= q.line <= len(lines) and 1 <= q.answer_line <= len(lines)
        for i, line in enumerate(q.answer.split("\n")):
            assert line == "" or line in lines[q.answer_line - 1 + i] or line.startswith("#")
    for p in problems:
        assert 0 <= p.line <= len(lines)
    coverage(source)


@pytest.mark.parametrize(
    ("text", "questions", "messages"),
    [
        ("", 0, []),
        ("\ufeff", 0, []),
        ("【一】", 0, []),
        ("# 章\n## 【一】", 0, ["question heading has no title: no card"]),
        ("- " * 500 + "x", 0, []),
        ("".join("  " * i + "- x\n" for i in range(500)), 0, []),
        ("> " * 1000 + "# x", 0, []),
        ("```\n" * 3, 0, []),
        ("<h1 id='x'>" * 1000, 0, ["nothing under this heading: no card"]),
        ('<h1 id="x">1.题</h1>\n答\n' * 1000, 1000, []),
    ],
)
def test_edge_inputs(text: str, questions: int, messages: list[str]) -> None:
    source, problems = parse_file(Path("e.md"), text, root=Path("."))
    assert len(source.questions) == questions
    assert [p.message for p in problems] == messages


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "# 章\n\n## 【一】q <!-- deckgen-id: a" + " " * n + "b\n\nx\n",
        lambda n: "# 章\n\n## 【一】q\n<!-- deckgen-id: a" + " " * n + "b\n\nx\n",
        lambda n: "---\na: x" + " " * n + "y\n---\n# 章\n",
        lambda n: "# 目录\n" + " " * n + "x\n",
        lambda n: "# 目录\n" + "- [1.a](#1.a" * (n // 10) + "\n",
        lambda n: "<h1 id='a" + " " * n + "\n",
    ],
)
def test_pathological_lines_take_linear_time(make) -> None:
    # 300,000 characters: linear parsing takes a fraction of a second, a quadratic one hours.
    # The bound is a hang guard, not a speed target (scripts/benchmark.py measures speed).
    start = time.perf_counter()
    parse_file(Path("x.md"), make(300_000), root=Path("."))
    assert time.perf_counter() - start < 60


def test_parse_time_grows_linearly() -> None:
    def timed(n: int) -> float:
        text = "".join(
            f'<h2 id="{i}.q{i}">{i}.问题 {i}</h2>\n答案 $x_{i}$\n\n- 列表\n  ```python\n  print({i})\n  ```\n\n'
            for i in range(n)
        )
        start = time.perf_counter()
        source, _ = parse_file(Path("big.md"), text, root=Path("."))
        elapsed = time.perf_counter() - start
        assert len(source.questions) == n and source.questions[-1].code_blocks[0].code == f"print({n - 1})\n"
        return elapsed

    # the best of three runs each: a busy machine slows a run, it never speeds one up
    small, large = min(timed(1000) for _ in range(3)), min(timed(8000) for _ in range(3))
    assert large < 8 * small * 2.5, (small, large)


# --- The shared upstream sample ------------------------------------------------------------------

CORPUS_FILES = {
    "机器学习基础/损失函数知识点.md": 16,
    "深度学习基础/注意力机制知识点.md": 42,
    "深度学习基础/激活函数层知识点.md": 14,
    "编程基础：Python/AI行业常用Python代码案例考频考点.md": 20,
}


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared/corpus is not there")
def test_shared_corpus_questions_match_their_tables_of_contents() -> None:
    corpus = parse_sources([SHARED_CORPUS])
    assert corpus.diagnostics == []
    found = {f.path.relative_to(SHARED_CORPUS).as_posix(): f for f in corpus.files}
    assert set(found) == set(CORPUS_FILES)  # README.md skipped
    for name, count in CORPUS_FILES.items():
        source = found[name]
        assert source.layout == "knowledge-base"
        assert (len(source.questions), len(source.toc)) == (count, count), name
        assert coverage(source) == [], name
    assert [(s.name, len(s.questions)) for s in corpus.sections] == [
        ("机器学习基础", 16),
        ("深度学习基础", 56),
        ("编程基础：Python", 20),
    ]


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared/corpus is not there")
def test_shared_corpus_details_checked_by_hand() -> None:
    attention = SHARED_CORPUS / "深度学习基础" / "注意力机制知识点.md"
    questions = parse(attention)[0].questions
    assert all(q.tags == ("深度学习基础", "Transforme模块") for q in questions)  # `## 1、Transforme模块`
    glued = questions[26]  # <h1 id='27.介绍一下TransFormer'> with its text on the next line
    assert (glued.title, glued.line, glued.answer_line) == ("介绍一下TransFormer", 906, 907)
    python = SHARED_CORPUS / "编程基础：Python" / "AI行业常用Python代码案例考频考点.md"
    questions = parse(python)[0].questions
    # TOC says 5., the heading says 6.: the number does not count
    assert questions[4].title == "python如何清理AI模型的显存占用?"
    dict_json = questions[6]
    assert [(b.line, b.claimed_output_line) for b in dict_json.code_blocks[:2]] == [(784, 800), (813, 825)]
    assert dict_json.code_blocks[0].claimed_output == '{"name": "AI", "type": "Technology", "year": 2024}\n'
    for path in (attention, python):
        for question in parse(path)[0].questions:
            assert_lines_map_to_file(question, path.read_text(encoding="utf-8"))


def test_a_decorated_section_heading_gives_the_plain_section_name(tmp_path: Path) -> None:
    text = "# <center>----【机器学习基础】----</center>\n\n## 【一】什么是偏差？\n\n答。\n"
    source, diagnostics = parse_file(tmp_path / "a.md", text, root=tmp_path)
    assert diagnostics == []
    assert [(q.section, q.deck, q.tags) for q in source.questions] == [
        ("机器学习基础", ("机器学习基础",), ("机器学习基础",))]
