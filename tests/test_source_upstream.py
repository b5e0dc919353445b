"""source/ against the upstream originals of its sixteen questions (../shared/kb).

The capture the article was first typed from lost its numbered lists, bold, full-width
punctuation, some headings and the figures. These tests hold source/ to the upstream Markdown
for everything the two share: the prose character for character (white space aside), the
numbered items, the bold spans, the headings, the formulas, the code and the figures. Like
test_source, they read the files with plain line scanning, independently of deckgen.parse.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deckgen.ids import normalize_key

from .conftest import REPO
from .test_source import QUESTIONS, SOURCE

# ../shared beside the checkout, or beside the folder that holds the checkouts (worktrees)
KB = next(
    (p / "shared" / "kb" for p in (REPO.parent, REPO.parent.parent) if (p / "shared" / "kb").is_dir()),
    None,
)
pytestmark = pytest.mark.skipif(KB is None, reason="../shared/kb (the upstream knowledge base) is absent")

# Where each question of the article comes from, upstream.
UPSTREAM = {
    "AI绘画大模型的数据预处理都包含哪些步骤？": "AI绘画基础/AI绘画大模型基础.md",
    "AI绘画大模型的训练流程都包含哪些步骤？": "AI绘画基础/AI绘画大模型基础.md",
    "介绍一下CogVideoX系列模型的VAE结构": "AI视频基础/视频生成典型模型与架构.md",
    "在CogVideoX系列模型中VAE是如何训练的？": "AI视频基础/视频生成典型模型与架构.md",
    "ROPE（Rotary-Position-Embedding）位置编码有何特点？": "深度学习基础/注意力机制知识点.md",
    "深度学习中模型权重融合有哪些主流的方法？": "深度学习基础/深度学习优化方法知识点.md",
    "介绍一下总变分损失的概念与作用": "机器学习基础/损失函数知识点.md",
    "介绍一下机器学习中的Nucleus采样原理": "机器学习基础/经典机器学习算法知识点.md",
    "python中文件有哪些打开模式，它们的区别是什么？": "编程基础：Python/Python基础知识高频考点.md",
    "python字典和json字符串如何相互转化？": "编程基础：Python/AI行业常用Python代码案例考频考点.md",
    "介绍一下torch、torchvision、CUDA、cuDNN之间的关系": "模型部署基础/推理框架知识点.md",
    "介绍一下XPU、MLU、MUSA各自的特点": "模型部署基础/边云端部署知识点.md",
    "介绍一下AI行业中的API以及具体的作用": "计算机基础/计算机工程基础高频知识点.md",
    "Linux中修改用户权限的命令有哪些？": "计算机基础/操作系统高频知识点.md",
    "如何减少对下一个AIGC式的时代周期的错判率？": "开放性问题/AI行业发展趋势问题.md",
    "如何减少对下一个OpenAI式公司的错判率？": "开放性问题/AI行业发展趋势问题.md",
}

# The capture also turned the full-width commas of six Chinese code comments half-width. Code stays
# exactly as the article has it (its code notes are what learners run), so code is compared with
# the width folded.
WIDTH = str.maketrans("，：（）？；！", ",:()?;!")

RAW_HEADING = re.compile(r"""^<h([1-6]) id=["']([^"']*)["']>(.*?)</h\1>\s*$""")
ARTICLE_QUESTION = re.compile(r"^## 【[一二三四五六七八九十]+】(.*)$")
HEADING = re.compile(r"^(#{1,6}) +(.*)$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|(\d+)\.) +")
IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")
BOLD = re.compile(r"\*\*(.+?)\*\*")
TABLE_RULE = re.compile(r"^[|:\- ]+$")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@dataclass
class Answer:
    """What a comparison needs of one answer, read line by line."""

    prose: list[str] = field(default_factory=list)  # text lines without heading or list markers
    headings: list[tuple[int, str]] = field(default_factory=list)
    numbered: list[tuple[int, str]] = field(default_factory=list)  # (number, item text)
    bold: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    math: list[str] = field(default_factory=list)  # display formulas
    images: list[str] = field(default_factory=list)  # src as written


def read_answer(lines: list[str]) -> Answer:
    answer = Answer()
    fence: list[str] | None = None
    math: list[str] | None = None
    for line in lines:
        text = line.strip()
        if fence is not None:
            if text.startswith("```"):
                answer.code.append("\n".join(fence))
                fence = None
            else:
                fence.append(line)
            continue
        if math is not None:
            if text.endswith("$$"):
                math.append(text[:-2])
                answer.math.append(" ".join(math))
                math = None
            else:
                math.append(text)
            continue
        if text.startswith("```"):
            fence = []
        elif text.startswith("$$"):
            if len(text) > 4 and text.endswith("$$"):
                answer.math.append(text[2:-2])
            else:
                math = [text[2:]]
        elif image := IMAGE.match(text):
            answer.images.append(image.group(2))
        elif text and not TABLE_RULE.match(text):
            if heading := HEADING.match(text):
                answer.headings.append((len(heading.group(1)), heading.group(2)))
                text = heading.group(2)
            elif item := LIST_ITEM.match(line):
                if item.group(1):
                    answer.numbered.append((int(item.group(1)), line[item.end():]))
                text = line[item.end():]
            answer.prose.append(text)
            answer.bold += BOLD.findall(text)
    return answer


def article_answers() -> dict[str, Answer]:
    lines = SOURCE.read_text(encoding="utf-8").split("\n")
    starts = [i for i, line in enumerate(lines) if ARTICLE_QUESTION.match(line)]
    answers = {}
    for i in starts:
        end, in_fence = i + 1, False
        while end < len(lines):
            in_fence ^= lines[end].strip().startswith("```")
            if not in_fence and re.match(r"#{1,2} ", lines[end]):
                break
            end += 1
        answers[ARTICLE_QUESTION.match(lines[i]).group(1)] = read_answer(lines[i + 1 : end])
    return answers


@dataclass
class Original:
    heading_id: str
    answer: Answer
    folder: Path


def upstream_original(title: str) -> Original:
    path = KB / UPSTREAM[title]
    lines = path.read_text(encoding="utf-8").split("\n")
    headings = [(i, m) for i, line in enumerate(lines) if (m := RAW_HEADING.match(line))]
    for n, (i, match) in enumerate(headings):
        if normalize_key(match.group(2), is_id=True) == normalize_key(title):
            end = headings[n + 1][0] if n + 1 < len(headings) else len(lines)
            return Original(match.group(2), read_answer(lines[i + 1 : end]), path.parent)
    raise AssertionError(f"{title}: no question with this id in {path}")


@pytest.fixture(scope="module")
def article() -> dict[str, Answer]:
    return article_answers()


def test_every_question_has_its_upstream_original(article) -> None:  # noqa: ANN001
    assert list(article) == QUESTIONS == list(UPSTREAM)


@pytest.mark.parametrize("title", QUESTIONS)
def test_title_is_the_upstream_heading_id_with_its_punctuation(title: str) -> None:
    # the id, not the heading text: for RoPE the article (and the id) say Rotary-Position-Embedding
    assert re.sub(r"^\d+\.?", "", upstream_original(title).heading_id) == title


@pytest.mark.parametrize("title", QUESTIONS)
def test_prose_is_the_upstream_text(title: str, article) -> None:  # noqa: ANN001
    mine, theirs = article[title], upstream_original(title).answer
    # full-width punctuation and every word, compared as one string per answer
    assert squeeze("".join(mine.prose)) == squeeze("".join(theirs.prose))


@pytest.mark.parametrize("title", QUESTIONS)
def test_numbered_lists_bold_and_headings_are_the_upstream_ones(title: str, article) -> None:  # noqa: ANN001
    mine, theirs = article[title], upstream_original(title).answer
    assert [(n, squeeze(t)) for n, t in mine.numbered] == [(n, squeeze(t)) for n, t in theirs.numbered]
    assert [squeeze(b) for b in mine.bold] == [squeeze(b) for b in theirs.bold]
    assert [squeeze(t) for _, t in mine.headings] == [squeeze(t) for _, t in theirs.headings]
    # inside a `##` question the article may sit every heading one level deeper than upstream
    # (whose questions are raw <h1>/<h2>), but keeps their nesting
    shifts = {a - b for (a, _), (b, _) in zip(mine.headings, theirs.headings)}
    assert len(shifts) <= 1


@pytest.mark.parametrize("title", QUESTIONS)
def test_formulas_and_code_are_the_upstream_ones(title: str, article) -> None:  # noqa: ANN001
    mine, theirs = article[title], upstream_original(title).answer
    assert [squeeze(m) for m in mine.math] == [squeeze(m) for m in theirs.math]
    assert [squeeze(c).translate(WIDTH) for c in mine.code] == [
        squeeze(c).translate(WIDTH) for c in theirs.code
    ]


@pytest.mark.parametrize("title", QUESTIONS)
def test_figures_are_the_upstream_files(title: str, article) -> None:  # noqa: ANN001
    mine, original = article[title], upstream_original(title)
    assert [Path(src).name for src in mine.images] == [Path(src).name for src in original.answer.images]
    for src, theirs in zip(mine.images, original.answer.images):
        assert (SOURCE.parent / src).read_bytes() == (original.folder / theirs).read_bytes()


def test_the_restoration_is_complete(article) -> None:  # noqa: ANN001
    """The figures the issue counted: 39 numbered items, 215 bold lines, 2 images, 4 headings back."""
    answers = list(article.values())
    assert sum(len(a.numbered) for a in answers) == 39
    assert sum(1 for a in answers for line in a.prose if "**" in line) == 215
    assert sum(len(a.images) for a in answers) == 2
    headings = {t for a in answers for _, t in a.headings}
    assert {"四者之间的关系：", "形象理解：", "实际应用中的协同工作：", "三者的对比："} <= headings
