"""The one Markdown parser configuration, shared by `parse` (block structure) and `render` (HTML).

Settings measured on the whole knowledge base: ../shared/docs/markdown-facts.md.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.common.utils import isWhiteSpace
from markdown_it.ruler import Ruler
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline.state_inline import Scanned
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.texmath import texmath_plugin

Highlighter = Callable[[str, str, str], str]  # (code, language, attrs) -> HTML starting with <pre

BlockRule = Callable[[StateBlock, int, int, bool], bool]
InlineRule = Callable[[StateInline, bool], bool]


def fence_language(info: str) -> str:
    """The language a fence names: its info string's first word, lower-cased, without the
    braces or dot some writers put around it (```{python}, ```.py)."""
    words = info.split(maxsplit=1)
    return words[0].lower().strip("{}.") if words else ""


def make_markdown(highlight: Highlighter | None = None) -> MarkdownIt:
    """A CommonMark parser with tables, raw HTML, front matter and $/$$/\\(\\)/\\[\\] math."""
    md = MarkdownIt("commonmark", {"html": True, "highlight": highlight})
    # Past this nesting the parser skips the rest of the file (losing every later question);
    # CommonMark's 20 is reached by a list ten levels deep. 100 stays far from Python's
    # recursion limit; deeper input is reported by `check` as an error.
    md.options["maxNesting"] = 100
    md.enable("table")
    _cjk_friendly_emphasis(md)
    md.use(front_matter_plugin)
    md.use(
        dollarmath_plugin,
        double_inline=True,
        allow_space=True,
        allow_digits=True,
        allow_blank_lines=False,
    )
    # Replace the plugin's rules before texmath adds rules of the same names.
    md.block.ruler.at(
        "math_block",
        _interrupting_math_block(_rule(md.block.ruler, "math_block")),
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.inline.ruler.at(
        "math_inline", _math_inline_outside_code(_rule(md.inline.ruler, "math_inline"))
    )
    md.use(texmath_plugin, delimiters="brackets")
    for ruler, name, opener, closer in (
        (md.inline.ruler, "math_inline", "\\(", "\\)"),
        (md.block.ruler, "math_block", "\\[", "\\]"),
        (md.block.ruler, "math_block_eqno", "\\[", "\\]"),
    ):
        _guard_texmath(ruler, name, opener, closer)
    # texmath knows `\[…\]` only as a block of its own; mid-paragraph the escape rule would
    # eat the backslashes and leave "[…]".
    md.inline.ruler.before("escape", "math_inline_bracket", _bracket_display_inline)
    return md


def _guard_texmath(ruler: Ruler, name: str, opener: str, closer: str) -> None:
    """texmath's bracket rules, run only where a closing delimiter follows.

    texmath copies the rest of the text and scans it for every opener, so many unclosed `\\(`
    or `\\[` cost time quadratic in the input; one look at the last closer keeps it linear.
    """
    # dollarmath registered rules of the same names first: texmath's come after them.
    index = max(i for i, r in enumerate(ruler.__rules__) if r.name == name)
    rule = ruler.__rules__[index].fn
    last_closer = _LastOccurrence(closer)

    def guarded(state, *args):  # noqa: ANN001, ANN002, ANN202 - a block or an inline rule
        if len(args) == 3:  # a block rule: (start line, end line, silent)
            position = state.bMarks[args[0]] + state.tShift[args[0]]
        else:
            position = state.pos
        if not state.src.startswith(opener, position) or last_closer(state.src) < position:
            return False
        return rule(state, *args)

    ruler.__rules__[index].fn = guarded
    ruler.__cache__ = None


class _LastOccurrence:
    """Where `needle` last occurs in a text, remembered for the text last asked about."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.text: str | None = None
        self.index = -1

    def __call__(self, text: str) -> int:
        if text is not self.text:
            self.text, self.index = text, text.rfind(self.needle)
        return self.index


def _rule(ruler: Ruler, name: str) -> Callable:
    """The function of the first rule called `name` (Ruler has no public getter for one rule)."""
    return ruler.__rules__[ruler.__find__(name)].fn


def _interrupting_math_block(rule: BlockRule) -> BlockRule:
    """dollarmath's `$$` block rule, made fit to end a paragraph that a `$$` line follows.

    The corpus glues `$$` lines under text; without interrupting, the formula's lines would be
    read as paragraph text, where a TeX line starting with `+ ` or `- ` starts a list. The
    plugin's rule ignores `silent` (it always pushes a token), which as a terminator check
    would duplicate the formula, so a silent call runs it and takes its effects back.
    """

    def math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if not silent:
            return rule(state, start, end, False)
        if not state.src.startswith("$$", state.bMarks[start] + state.tShift[start]):
            return False  # the common case, decided before the costlier checks below
        if state.parentType == "paragraph" and _opens_inline_double(state, start):
            return False  # this `$$` closes a `$$` the paragraph opened mid-line
        tokens, line = len(state.tokens), state.line
        found = rule(state, start, end, False)
        del state.tokens[tokens:]
        state.line = line
        return found

    return math_block


def _opens_inline_double(state: StateBlock, line: int) -> bool:
    """Whether the paragraph's lines before `line` leave a `$$` open (`公式：$$` then TeX lines)."""
    text = state.src[state.bMarks[state.line] : state.eMarks[line - 1]]
    return text.count("$$") % 2 == 1


def _math_inline_outside_code(rule: InlineRule) -> InlineRule:
    """dollarmath's `$` rule, refusing a span that would run into a code span.

    `cost $5 and `echo $x`` must leave the shell `$` alone: CommonMark gives code spans
    precedence, and TeX has no use for backticks.
    """

    def math_inline(state: StateInline, silent: bool) -> bool:
        start = state.pos
        if not rule(state, True):
            return False
        end, state.pos = state.pos, start
        if "`" in state.src[start:end]:
            return False
        return rule(state, silent)

    return math_inline


def _bracket_display_inline(state: StateInline, silent: bool) -> bool:
    """`\\[…\\]` inside a paragraph: display math, as a `math_inline_double` token like `$$…$$`."""
    if not state.src.startswith("\\[", state.pos):
        return False
    end = state.src.find("\\]", state.pos + 2)
    if end <= state.pos + 2:
        return False
    if not silent:
        token = state.push("math_inline_double", "math", 0)
        token.content = state.src[state.pos + 2 : end]
        token.markup = "\\["
    state.pos = end + 2
    return True


# ---------------------------------------------------------------------------------------------
# CJK-friendly emphasis


def _cjk_friendly_emphasis(md: MarkdownIt) -> None:
    """Emphasis as the CJK-friendly amendment to CommonMark reads it (the `markdown-it-cjk-friendly`
    plugin of markdown-it): `**LoRA+**：…` is bold.

    CommonMark's flanking rules treat Chinese punctuation like ASCII punctuation, and Chinese
    puts no space around it, so a `**` between punctuation inside and a letter or ideograph
    outside opens or closes nothing and shows as two stars. The amendment lets a `*` run next
    to a CJK character (either side) flank as if a space stood there; everything else stays
    CommonMark. markdown-it-py makes its StateInline itself, so the inline parse is replaced
    by one that makes ours.
    """
    inline = md.inline

    def parse(src: str, md: MarkdownIt, env: dict, tokens: list[Token]) -> list[Token]:
        state = _CjkFriendlyState(src, md, env, tokens)
        inline.tokenize(state)
        for rule in inline.ruler2.getRules(""):
            rule(state)
        return state.tokens

    inline.parse = parse  # type: ignore[method-assign]


class _CjkFriendlyState(StateInline):
    def scanDelims(self, start: int, canSplitWord: bool) -> Scanned:  # noqa: N802, N803
        scanned = super().scanDelims(start, canSplitWord)
        if not canSplitWord:  # `_` stays CommonMark, as in the amendment
            return scanned
        last = self.src[start - 1] if start > 0 else " "
        if start > 1 and _is_general_variation_selector(last):
            if unicodedata.category(self.src[start - 2]) != "Zs":
                last = self.src[start - 2]  # the selector decorates the character before it
        end = start + scanned.length
        after = self.src[end] if end < self.posMax else " "
        if isWhiteSpace(ord(last)) or isWhiteSpace(ord(after)):
            return scanned  # next to a space CommonMark already decides well
        if _is_cjk(last) or _is_cjk(after):
            # a CJK neighbour stands for the space CommonMark asks for: the run may open and close
            return Scanned(True, True, scanned.length)
        return scanned


def _is_general_variation_selector(char: str) -> bool:
    return "\ufe00" <= char <= "\ufe0e"


def _is_cjk(char: str) -> bool:
    """Wide or full-width characters (ideographs, kana, CJK punctuation) but not emoji, and
    Hangul, as the amendment defines them by East Asian Width."""
    code = ord(char)
    if code < 0x1100:
        return False
    width = unicodedata.east_asian_width(char)
    if width in ("F", "H"):
        return True
    if width == "W":
        return not (0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF)  # emoji blocks
    if width == "N":
        return "HANGUL" in unicodedata.name(char, "")
    return False
