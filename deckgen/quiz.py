"""Which code blocks of an answer become code notes, and what each note asks and answers.

A code note is only worth reviewing when its back answers its front. The answer a learner checks
against is the article's own explanation of the block: the list item the block sits in, or the
prose (and heading) just before it, a sentence right after it that talks about it, and the
code's own comments. Comments are taken off the front and shown on the back: in an article they
say what the line does or prints (`f = open('f.txt', 'rt')  # 读取文本文件`), which is the answer.

Blocks with nothing to recall stay on the Q&A card only, each counted under a reason:
program output, data, plain text and diagrams, syntax templates (`chmod [选项] 模式 文件名`), and
(decided after running, in build) blocks with neither an explanation nor an output.
"""
from __future__ import annotations

import html
import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it.token import Token

from deckgen.markdown import make_markdown
from deckgen.model import CodeBlock, Question

# Reasons a block is not a note; the build summary counts them.
OUTPUT = "program output"
DATA = "data"
TEXT = "plain text"
DIAGRAM = "diagram"
TEMPLATE = "syntax template"
NOTHING = "no explanation or output"

_OUTPUT_LANGUAGES = frozenset({"output", "log", "out", "result", "stdout"})
_TEXT_LANGUAGES = frozenset({"", "text", "plaintext", "plain", "txt", "none", "nohighlight"})
_DATA_LANGUAGES = frozenset({
    "json", "jsonl", "json5", "yaml", "yml", "toml", "csv", "tsv", "xml", "ini", "properties",
})
_DIAGRAM_LANGUAGES = frozenset({"mermaid", "plantuml", "dot", "graphviz"})
# Languages whose blocks are command lines, where a placeholder makes a line a syntax template.
_COMMAND_LANGUAGES = frozenset({
    "bash", "sh", "shell", "zsh", "console", "shell-session", "terminal", "powershell", "cmd",
    "bat", "batch",
})

_CJK = r"[\u3400-\u9fff\uf900-\ufaff]"
# `[选项]`, `[OPTION]...`, `[新所有者][:新组]`, `<file>`, `<用户名>`: a bracketed word that starts
# a shell word (a glob like `*.[ch]` or a test `[ -f x ]` does not).
_PLACEHOLDER = re.compile(
    rf"(?:^|(?<=[\s\]]))(?:\[[:=]?(?:{_CJK}|[A-Za-z_][A-Za-z_-]{{2,}})[^\[\]\s]*\]|<[^<>\s|&;]+>)"
)
# A bare argument in Chinese, outside quotes: `sudo usermod -aG 组名 用户名`.
_CJK_WORD = re.compile(rf"(?:^|(?<=\s)){_CJK}+(?=\s|$)")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")

# Words that introduce a block without saying anything about it: "示例：", "代码如下".
_FILLER = re.compile(
    r"(?i)(示例|例子|例如|比如|举例|如下|以下|下面|代码|实现|用法|步骤|演示|命令|参考|具体|一个|简单|的|是|为|"
    r"example|examples|e\.g\.|code|usage|for instance|as follows|below|"
    r"python|bash|shell|\d+|[\s:：.,，。、()（）*_#`>\-—…!！?？])"
)
# A sentence right after a block that talks about it (or what it prints).
_AFTER = re.compile(
    r"^\s*(?:[*_]+)?(?:上述|以上|上面|这段|该代码|此代码|这个例子|在这个例子|在上面|运行|执行后|可以看到|结果|"
    r"输出|其中|注意|This code|The code|The above|Here,|In this example|Running)"
)
# A paragraph introducing a program's output: "让我们看看它的输出：", "运行结果如下:".
_OUTPUT_INTRO = re.compile(r"(?:输出|结果|output)[^。.\n]{0,12}[:：]\s*$", re.IGNORECASE)
_MAX_BLOCKS_BEFORE = 3


@dataclass
class QuizBlock:
    """A code block that becomes a code note, with what its front and back show."""

    block: CodeBlock
    explanation: str  # the article's prose about the block, as Markdown ("" when it has none)
    explanation_line: int  # the answer line (0-based) the explanation starts at


def pick_blocks(question: Question, tokens: Sequence[Token] | None = None
                ) -> tuple[list[QuizBlock], Counter]:
    """The question's blocks that become code notes, and the others counted by reason.

    `tokens` are the answer's block tokens (lines counted from the answer's first line), as
    parse made them; without them the answer is parsed here.
    """
    lines = question.answer.split("\n")
    if tokens is None:
        tokens = make_markdown().parse(question.answer + "\n")
    fences = [i for i, t in enumerate(tokens) if t.type == "fence" and t.map]
    kept: list[QuizBlock] = []
    dropped: Counter = Counter()
    cursor = 0
    for block in question.code_blocks:
        index, cursor = _find_fence(tokens, fences, cursor, block, question.answer_line)
        reason = _static_reason(block, tokens, index)
        if reason:
            dropped[reason] += 1
            continue
        explanation, start = _explanation(tokens, index, lines) if index is not None else ("", 0)
        kept.append(QuizBlock(block, explanation, start))
    return kept, dropped


def has_substance(text: str) -> bool:
    """Whether prose says something beyond "示例：" or "代码如下": some words of its own."""
    rest = _FILLER.sub("", re.sub(r"<[^>]*>|!\[[^\]]*\]\([^)]*\)", "", text))
    return len(rest) >= 2


# Pygments' classes for comments (Comment, .Single, .Multiline, .Hashbang, .Special); not cp/cpf,
# Comment.Preproc(File): C's `#include <x>` is code.
_COMMENT_SPAN = re.compile(r'<span class="(?:c|c1|cm|ch|cs)">([^<]*)</span>')
_TRAILING_SPACE = re.compile(r'(?:<span class="w">[ \t]*</span>|[ \t])+$')
_TAG = re.compile(r"<[^>]*>")


def without_comments(code_html: str) -> tuple[str, str, bool]:
    """Highlighted code (Pygments HTML) without its comments: (HTML, its text, whether any
    comment said something).

    Worked on the HTML the answer's highlighting already made, so no block is lexed twice:
    Pygments puts each comment, line by line, in a span of its own class. A line that was
    only a comment goes; code before a trailing comment stays. Code that is nothing but
    comments is kept whole: the comments are then the code.
    """
    said = False
    out: list[str] = []
    changed = False
    opening = ""  # `<pre …><code>` of a first line that was only a comment
    for line in code_html.split("\n"):
        comments = _COMMENT_SPAN.findall(line)
        if not comments:
            out.append(opening + line)
            opening = ""
            continue
        changed = True
        said = said or any(has_substance(html.unescape(c)) for c in comments)
        kept = _TRAILING_SPACE.sub("", _COMMENT_SPAN.sub("", line))
        if _TAG.sub("", kept).strip():
            out.append(opening + kept)
            opening = ""
        elif kept.endswith("<code>"):
            opening = kept
    front = "\n".join(out)
    text = html.unescape(_TAG.sub("", front))
    if not changed or not text.strip():
        return code_html, html.unescape(_TAG.sub("", code_html)), False
    return front, text, said


def distinct_labels(codes: Sequence[str]) -> list[str]:
    """For each code, a line of it that tells it apart from the others (its first such line)."""
    counts = Counter(line for code in codes for line in {_line.strip() for _line in code.split("\n")})
    labels = []
    for code in codes:
        lines = [line.strip() for line in code.split("\n") if line.strip()]
        unique = [line for line in lines if counts[line] == 1]
        labels.append((unique or lines or [""])[0])
    return labels


# --- which blocks -----------------------------------------------------------------------------


def _static_reason(block: CodeBlock, tokens: Sequence[Token], index: int | None) -> str:
    language = block.language
    if not block.code.strip():
        return TEXT
    if language in _OUTPUT_LANGUAGES:
        return OUTPUT
    if language in _TEXT_LANGUAGES:
        return TEXT
    if language in _DATA_LANGUAGES:
        return DATA
    if language in _DIAGRAM_LANGUAGES:
        return DIAGRAM
    if index is not None and _introduced_as_output(tokens, index):
        return OUTPUT
    if language in _COMMAND_LANGUAGES and is_syntax_template(block.code):
        return TEMPLATE
    return ""


def is_syntax_template(code: str) -> bool:
    """Whether every command line of a block shows a placeholder rather than a value."""
    lines = [line for line in code.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return False
    return all(_PLACEHOLDER.search(_QUOTED.sub("''", line)) or _CJK_WORD.search(_QUOTED.sub("''", line))
               for line in lines)


def _introduced_as_output(tokens: Sequence[Token], index: int) -> bool:
    """A block right after another block, introduced by "…的输出：": what the first prints."""
    if index < 4 or tokens[index - 1].type != "paragraph_close":
        return False
    intro = tokens[index - 2]
    return (tokens[index - 4].type == "fence" and intro.type == "inline"
            and bool(_OUTPUT_INTRO.search(intro.content)))


def _find_fence(tokens: Sequence[Token], fences: list[int], cursor: int, block: CodeBlock,
                answer_line: int) -> tuple[int | None, int]:
    """The fence token of `block`, searched from `cursor` on (blocks come in order)."""
    line = block.line - answer_line  # the fence's answer line, 0-based
    for n in range(cursor, len(fences)):
        if tokens[fences[n]].map[0] == line:
            return fences[n], n + 1
    return None, cursor


# --- what explains a block --------------------------------------------------------------------


def _explanation(tokens: Sequence[Token], index: int, lines: list[str]) -> tuple[str, int]:
    """(Markdown, first answer line) of the prose that explains the fence at `index`."""
    item = _enclosing_item(tokens, index)
    parts: list[tuple[int, str]] = []
    if item is not None:
        text = _item_prose(tokens, item, lines)
        if has_substance(text):
            parts.append((tokens[item].map[0], text))
    if not parts:
        start = item if item is not None else index
        # An item with no prose of its own: what comes before its list explains it.
        anchor = _list_of(tokens, start) if item is not None else index
        before = _prose_before(tokens, anchor, lines)
        if before:
            parts.append(before)
    after = _prose_after(tokens, index, lines)
    if after:
        parts.append(after)
    if not parts:
        return "", 0
    return "\n\n".join(text for _, text in parts), parts[0][0]


def _enclosing_item(tokens: Sequence[Token], index: int) -> int | None:
    depth = 0
    for i in range(index - 1, -1, -1):
        kind = tokens[i].type
        if kind == "list_item_close":
            depth += 1
        elif kind == "list_item_open":
            if depth == 0:
                return i
            depth -= 1
    return None


def _list_of(tokens: Sequence[Token], item: int) -> int:
    level = tokens[item].level - 1
    for i in range(item - 1, -1, -1):
        if tokens[i].level == level and tokens[i].type in ("bullet_list_open", "ordered_list_open"):
            return i
    return item


def _item_prose(tokens: Sequence[Token], item: int, lines: list[str]) -> str:
    """The list item's text without its code blocks (each is a note of its own) or their output."""
    start, end = tokens[item].map
    skip: set[int] = set()
    level = tokens[item].level
    for token in tokens[item + 1:]:
        if token.type == "list_item_close" and token.level == level:
            break
        if token.type == "fence" and token.map:
            skip.update(range(*token.map))
        if token.type == "inline" and _is_output_label(token.content) and token.map:
            skip.update(range(*token.map))
    kept = [lines[n] for n in range(start, min(end, len(lines))) if n not in skip]
    if kept:
        kept[0] = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s*", "", kept[0])
    return _tidy([kept[0]] + textwrap.dedent("\n".join(kept[1:])).split("\n") if kept else [])


def _prose_before(tokens: Sequence[Token], index: int, lines: list[str]) -> tuple[int, str] | None:
    """The blocks before the fence, back to a heading (kept) or another code block (not)."""
    level = tokens[index].level
    starts: list[int] = []
    skip: set[int] = set()
    said = False
    for i in range(index - 1, -1, -1):
        token = tokens[i]
        if token.level != level or not token.map or token.nesting == -1:
            continue
        if token.type == "fence" and is_syntax_template(token.content):
            # `chown [选项] 新所有者 文件名`, then "示例：", then the example: the prose before
            # the template explains the example too.
            skip.update(range(*token.map))
            continue
        if token.type in ("fence", "code_block", "hr", "html_block"):
            break
        if token.type == "heading_open":
            if _substantive_heading(tokens, i):
                starts.append(i)
                break
            if said:  # "示例代码" names no topic: left out, and the prose below it is enough
                break
            continue
        starts.append(i)
        said = said or token.type != "paragraph_open" or has_substance(tokens[i + 1].content)
        if len(starts) == _MAX_BLOCKS_BEFORE:
            break
    if not starts:
        return None
    first = tokens[starts[-1]].map[0]
    end = tokens[index].map[0]
    kept = [lines[n] for n in range(first, end) if n not in skip]
    text = _tidy(textwrap.dedent("\n".join(kept)).split("\n"))
    return (first, text) if has_substance(text) else None


def _prose_after(tokens: Sequence[Token], index: int, lines: list[str]) -> tuple[int, str] | None:
    """A paragraph right after the block that talks about it ("上述代码…", "可以看到…")."""
    level = tokens[index].level
    following = index + 1
    # The block's claimed output (label paragraph and fence) comes first: step over it.
    if (following + 3 < len(tokens) and tokens[following].type == "paragraph_open"
            and _is_output_label(tokens[following + 1].content)
            and tokens[following + 3].type == "fence"):
        following += 4
    if following >= len(tokens):
        return None
    token = tokens[following]
    if token.type != "paragraph_open" or token.level != level or not token.map:
        return None
    text = tokens[following + 1].content
    if not _AFTER.match(text) or not has_substance(text):
        return None
    start, end = token.map
    return start, _tidy(textwrap.dedent("\n".join(lines[start:end])).split("\n"))


def _substantive_heading(tokens: Sequence[Token], index: int) -> bool:
    return index + 1 < len(tokens) and has_substance(tokens[index + 1].content)


def _is_output_label(text: str) -> bool:
    return bool(re.match(r"^[*_\s]*(?:输出结果|运行结果|输出|output)[*_\s]*[:：][*_\s]*$", text, re.I))


def _tidy(lines: list[str]) -> str:
    """Markdown of an explanation: headings made bold lines (a card is no place for an h4),
    labels that say nothing ("示例：") at its end dropped."""
    out = []
    for line in lines:
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = heading.group(1).strip()
            line = f"**{text}**" if text and not text.startswith("*") else text
        out.append(line)
    while out and (not out[-1].strip() or not has_substance(out[-1])):
        out.pop()
    while out and not out[0].strip():
        out.pop(0)
    return "\n".join(out)
