"""The article source file: faithful structure, TeX, code and no leftovers of the lossy capture.

Parsed with plain line scanning on purpose: these tests check the file itself, independently of
`deckgen.parse`, so a parser bug cannot hide a broken source (or the other way round).
"""
from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent.parent / "source" / "三年面试五年模拟-第二十三式.md"

SECTIONS = [
    "AI绘画基础",
    "AI视频基础",
    "深度学习基础",
    "机器学习基础",
    "Python编程基础",
    "模型部署基础",
    "计算机基础",
    "开放性问题",
]

# From the article's 目录先行, in article order (two questions per section), with the article's
# full-width punctuation (the capture had turned it half-width).
QUESTIONS = [
    "AI绘画大模型的数据预处理都包含哪些步骤？",
    "AI绘画大模型的训练流程都包含哪些步骤？",
    "介绍一下CogVideoX系列模型的VAE结构",
    "在CogVideoX系列模型中VAE是如何训练的？",
    "ROPE（Rotary-Position-Embedding）位置编码有何特点？",
    "深度学习中模型权重融合有哪些主流的方法？",
    "介绍一下总变分损失的概念与作用",
    "介绍一下机器学习中的Nucleus采样原理",
    "python中文件有哪些打开模式，它们的区别是什么？",
    "python字典和json字符串如何相互转化？",
    "介绍一下torch、torchvision、CUDA、cuDNN之间的关系",
    "介绍一下XPU、MLU、MUSA各自的特点",
    "介绍一下AI行业中的API以及具体的作用",
    "Linux中修改用户权限的命令有哪些？",
    "如何减少对下一个AIGC式的时代周期的错判率？",
    "如何减少对下一个OpenAI式公司的错判率？",
]

# Display formulas, TeX exactly as the capture's middle copy has it.
NAMED_DISPLAY_FORMULAS = {
    "RoPE rotation matrix": r"\mathbf{R}(\theta) = \begin{bmatrix} \cos(\theta) & -\sin(\theta) \\ \sin(\theta) & \cos(\theta) \end{bmatrix}",
    "RoPE pair rotation": r"\begin{bmatrix} x_{ik}' \\ x_{i(k+1)}' \end{bmatrix}= \begin{bmatrix} \cos(\theta_i) & -\sin(\theta_i) \\ \sin(\theta_i) & \cos(\theta_i) \end{bmatrix} \begin{bmatrix} x_{ik} \\ x_{i(k+1)} \end{bmatrix}",
    "RoPE example at position 1": r"\begin{bmatrix} x_{1,1}' \\ x_{1,2}' \end{bmatrix}= \begin{bmatrix} \cos(0.5) & -\sin(0.5) \\ \sin(0.5) & \cos(0.5) \end{bmatrix} \begin{bmatrix} x_{1,1} \\ x_{1,2} \end{bmatrix}",
    "weight averaging": r"W_{\text{fused}} = \frac{1}{N} \sum_{i=1}^N W_i",
    "linear interpolation": r"W_{\text{fused}} = \alpha W_1 + (1 - \alpha) W_2",
    "FedAvg": r"W_{\text{global}} = \sum_{i=1}^N \frac{n_i}{n} W_i",
    "EWC loss": r"L = L_{\text{new task}} + \frac{\lambda}{2} \sum_i F_i (\theta_i - \theta^*_{i,\text{old task}})^2",
    "total variation loss": r"L_{TV} = \sum_{i,j} \left( (I_{i,j} - I_{i+1,j})^2 + (I_{i,j} - I_{i,j+1})^2 \right)^{\frac{\beta}{2}}",
}

# Rendered-glyph characters the capture put around every formula; the article's prose never uses them.
GLYPHS = set("θ′∑⋅∗−…αβλ")
TEX_COMMAND = re.compile(r"\\[A-Za-z]+|[_^]\{|[A-Za-z]_[A-Za-z0-9]")
# The glyph copy of a one-letter formula: `i i i`, `p p p`.
SPACED_TRIPLE = re.compile(r"(?<![\w\\])([A-Za-z]) \1 \1(?!\w)")
INLINE_MATH = re.compile(r"\$[^$\n]+\$")
INLINE_CODE = re.compile(r"`[^`\n]+`")
QUESTION_HEADING = re.compile(r"^(#+)\s*【[一二三四五六七八九十]+】(.*)$")
HEADING = re.compile(r"^(#{1,6}) (.*)$")


@dataclass
class Line:
    number: int  # 1-based, in the file
    text: str
    in_fence: bool  # inside a fenced code block, fence lines included


@dataclass
class Fence:
    info: str
    code: str
    open_line: int
    close_line: int


def read_lines() -> list[Line]:
    lines: list[Line] = []
    in_fence = False
    for number, text in enumerate(SOURCE.read_text(encoding="utf-8").split("\n"), start=1):
        is_fence_line = text.strip().startswith("```")
        lines.append(Line(number, text, in_fence or is_fence_line))
        if is_fence_line:
            in_fence = not in_fence
    return lines


def body_lines() -> list[Line]:
    """Lines after the front matter, outside code fences."""
    lines = read_lines()
    assert lines[0].text == "---"
    end = next(i for i, line in enumerate(lines[1:], start=1) if line.text == "---")
    return [line for line in lines[end + 1 :] if not line.in_fence]


def fences() -> list[Fence]:
    """Fenced blocks, their code de-indented by the opening fence's indentation (list items)."""
    found: list[Fence] = []
    lines = read_lines()
    opening: int | None = None
    for i, line in enumerate(lines):
        if not line.text.strip().startswith("```"):
            continue
        if opening is None:
            opening = i
            continue
        start = lines[opening]
        indent = len(start.text) - len(start.text.lstrip())
        code = "".join(l.text[indent:] + "\n" for l in lines[opening + 1 : i])
        found.append(Fence(start.text.strip()[3:].strip(), code, start.number, line.number))
        opening = None
    return found


def headings() -> list[tuple[int, str, int]]:
    """(level, text, line number) of every Markdown heading outside code."""
    result = []
    for line in body_lines():
        match = HEADING.match(line.text)
        if match:
            result.append((len(match.group(1)), match.group(2).strip(), line.number))
    return result


@dataclass
class DisplayMath:
    opening: int  # index into body_lines() of the opening $$
    closing: int
    tex: str


def display_math() -> list[DisplayMath]:
    """$$ lines paired in order; the TeX is whatever lies between them."""
    lines = body_lines()
    dollars = [i for i, line in enumerate(lines) if "$$" in line.text]
    return [
        DisplayMath(o, c, "\n".join(l.text.strip() for l in lines[o + 1 : c]))
        for o, c in zip(dollars[::2], dollars[1::2])
    ]


def display_formulas() -> list[str]:
    return [block.tex for block in display_math()]


def prose_lines() -> list[Line]:
    """Body lines that are neither code nor display math."""
    inside = {i for b in display_math() for i in range(b.opening, b.closing + 1)}
    return [line for i, line in enumerate(body_lines()) if i not in inside]


def prose_without_math_and_code(text: str) -> str:
    return INLINE_CODE.sub("", INLINE_MATH.sub("", text))


def leftovers_of_capture(text: str) -> list[str]:
    """What in a prose line still looks like the capture's glyph–TeX–glyph formula copies."""
    prose = prose_without_math_and_code(text)
    problems = []
    if TEX_COMMAND.search(prose):
        problems.append("TeX outside $…$")
    if GLYPHS & set(prose):
        problems.append("rendered formula glyphs")
    if SPACED_TRIPLE.search(prose):
        problems.append("spaced-out formula copy")
    return problems


def test_front_matter_names_the_article() -> None:
    text = SOURCE.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, flags=re.S)
    assert match, "the file must start with a --- front matter block"
    fields = dict(line.split(": ", 1) for line in match.group(1).split("\n"))
    assert set(fields) >= {"title", "series", "part", "period", "source"}
    assert fields["part"] == "第二十三式"
    assert fields["period"] == "2024-09-16 to 2024-09-29"
    assert fields["source"] == "https://github.com/WeThinkIn/Interview-for-Algorithm-Engineer"


def test_top_level_sections_in_article_order() -> None:
    level_one = [text for level, text, _ in headings() if level == 1]
    assert level_one == ["写在前面", "目录先行", *SECTIONS, "推荐阅读"]


def test_sixteen_questions_in_article_order_two_per_section() -> None:
    current_section = None
    seen: list[tuple[str, str]] = []
    for level, text, _ in headings():
        if level == 1:
            current_section = text
        elif level == 2:
            seen.append((current_section, text))
    markers = ["【一】", "【二】"] * len(SECTIONS)
    expected = [
        (SECTIONS[i // 2], markers[i] + title) for i, title in enumerate(QUESTIONS)
    ]
    assert seen == expected


def test_table_of_contents_lists_the_same_titles() -> None:
    lines = body_lines()
    start = next(i for i, l in enumerate(lines) if l.text == "# 目录先行")
    end = next(i for i, l in enumerate(lines) if i > start and l.text.startswith("# "))
    toc_items = [l.text[2:] for l in lines[start:end] if l.text.startswith("- ")]
    assert toc_items == QUESTIONS


def test_question_headings_are_level_two_and_sections_level_one() -> None:
    for line in body_lines():
        marker = QUESTION_HEADING.match(line.text)
        if marker:
            assert marker.group(1) == "##", f"line {line.number}: question heading must be level 2"
        stripped = line.text.lstrip("#").strip()
        if stripped in SECTIONS:
            assert line.text == f"# {stripped}", f"line {line.number}: section heading must be level 1"


def test_headings_inside_answers_are_level_three_or_deeper() -> None:
    for level, text, number in headings():
        if level == 2:
            assert QUESTION_HEADING.match("## " + text), f"line {number}: level 2 is for questions only"


def test_every_question_has_an_answer() -> None:
    lines = body_lines()
    starts = [i for i, l in enumerate(lines) if QUESTION_HEADING.match(l.text)]
    for i in starts:
        following = next((l for l in lines[i + 1 :] if l.text.strip()), None)
        assert following and not following.text.startswith("#"), f"line {lines[i].number}: no answer"


@pytest.mark.parametrize("name", sorted(NAMED_DISPLAY_FORMULAS))
def test_named_formula_is_display_math_with_exact_tex(name: str) -> None:
    assert NAMED_DISPLAY_FORMULAS[name] in display_formulas()


def test_all_twelve_display_formulas_present() -> None:
    assert len(display_formulas()) == 12


def test_display_math_sits_on_its_own_lines_between_blank_lines() -> None:
    lines = body_lines()
    assert sum(l.text.count("$$") for l in lines) % 2 == 0
    for block in display_math():
        opening, closing = lines[block.opening], lines[block.closing]
        assert opening.text.strip() == "$$", f"line {opening.number}: $$ must stand alone"
        assert closing.text.strip() == "$$", f"line {closing.number}: $$ must stand alone"
        assert block.closing == block.opening + 2, f"line {opening.number}: one TeX line per formula"
        assert lines[block.opening - 1].text.strip() == "", f"line {opening.number}: blank line before"
        assert lines[block.closing + 1].text.strip() == "", f"line {closing.number}: blank line after"


def test_inline_math_keeps_tex_from_the_capture() -> None:
    text = "\n".join(l.text for l in body_lines())
    inline = {m[1:-1] for m in INLINE_MATH.findall(text)}
    assert {r"x_i = [x_{i1}, x_{i2}, \dots, x_{id}]", r"\theta^*_{\text{old task}}", r"(I_{i,j} - I_{i+1,j})^2"} <= inline


def test_no_prose_line_keeps_the_capture_formula_triples() -> None:
    problems = [
        f"line {l.number}: {', '.join(found)}: {l.text}"
        for l in prose_lines()
        if (found := leftovers_of_capture(l.text))
    ]
    assert problems == []


@pytest.mark.parametrize(
    "capture_line",
    [
        "对于每个位置 i i i ,ROPE 使用一个角度 θ i \\theta_i θi 来进行旋转。",
        "其中, W i W_i Wi 是第 i i i 个模型的权重",
        "其中, W_i 是第 i 个模型的权重",
        "W fused = 1 N ∑ i = 1 N W i W_{\\text{fused}} = \\frac{1}{N} \\sum_{i=1}^N W_i Wfused=N1i=1∑NWi",
    ],
)
def test_detector_flags_capture_style_formulas(capture_line: str) -> None:
    assert leftovers_of_capture(capture_line)


def test_detector_accepts_restored_formulas() -> None:
    assert leftovers_of_capture("对于每个位置 $i$ ,ROPE 使用一个角度 $\\theta_i$ 来进行旋转。") == []


def test_every_fence_names_its_language() -> None:
    assert {f.info for f in fences()} == {"python", "bash", "text"}


def test_every_python_block_compiles() -> None:
    python = [f for f in fences() if f.info == "python"]
    assert len(python) == 17
    for fence in python:
        compile(fence.code, f"{SOURCE.name}:{fence.open_line}", "exec")


def test_code_indentation_restored() -> None:
    codes = [f.code for f in fences() if f.info == "python"]
    nucleus = next(c for c in codes if "def nucleus_sampling" in c)
    assert "\n    return filtered_indices[sampled_index]\n" in nucleus
    assert "\nlogits = torch.tensor(" in nucleus
    cnn = next(c for c in codes if "class SimpleCNN" in c)
    assert "\n        running_loss += loss.item()\n" in cnn
    assert '\n    print(f"Epoch {epoch + 1}' in cnn


def shown_outputs() -> list[tuple[Fence, Fence]]:
    """(code, output) pairs: a code fence, then a paragraph 输出, then a text fence."""
    lines = {l.number: l.text for l in read_lines()}
    all_fences = fences()
    pairs = []
    for code, output in zip(all_fences, all_fences[1:]):
        between = [lines[n].strip() for n in range(code.close_line + 1, output.open_line)]
        if [t for t in between if t] == ["输出："]:
            pairs.append((code, output))
    return pairs


def test_output_paragraphs_are_followed_by_text_blocks() -> None:
    text_fences = [f for f in fences() if f.info == "text"]
    pairs = shown_outputs()
    assert len(pairs) == 2
    assert [o for _, o in pairs] == text_fences
    assert all(code.info == "python" for code, _ in pairs)


def test_shown_outputs_are_what_the_code_prints() -> None:
    for code, output in shown_outputs():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code.code, f"{SOURCE.name}:{code.open_line}", "exec"), {})
        assert printed.getvalue() == output.code


def test_file_mode_summary_is_a_pipe_table() -> None:
    lines = [l.text for l in body_lines()]
    start = lines.index("| 模式 | 描述 |")
    assert lines[start + 1] == "|---|---|"
    rows = lines[start + 2 : start + 9]
    assert [r.split("|")[1].strip() for r in rows] == [f"`'{m}'`" for m in "rwaxtb+"]


def test_inline_code_is_back_inline() -> None:
    text = "\n".join(l.text for l in body_lines())
    for span in ["`open()`", "`'r'`", "`json.dumps()`", "`FileNotFoundError`", "`tensor.cuda()`", "`ls -l`"]:
        assert span in text
    # The capture put inline code on lines of its own; none may remain.
    stray = [l for l in body_lines() if re.fullmatch(r"[\w.']+(\(\))?|'[a-z+]+'", l.text.strip(), re.ASCII)]
    assert stray == []


def test_list_markers_restored() -> None:
    assert [l.number for l in body_lines() if l.text.strip() == "-"] == []


def test_the_two_cogvideox_figures_are_back_as_files_beside_the_source() -> None:
    text = SOURCE.read_text(encoding="utf-8")
    images = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", text)
    assert [src for _, src in images] == [
        "imgs/CogVideoX的3DVAE结构示意图.png",
        "imgs/CogVideoX-3DVAE完整结构图.jpg",
    ]
    for alt, src in images:
        assert alt, f"{src}: an image needs its alt text"
        assert (SOURCE.parent / src).is_file(), f"{src} must ship with the source"
    # each figure stands where the text points at it
    assert text.index("下图展示了3D VAE的结构示意图") < text.index(images[0][1]) < text.index("如上图(b)中所示")
    assert text.index("完整结构图**，大家可以感受一下其魅力") < text.index(images[1][1])
