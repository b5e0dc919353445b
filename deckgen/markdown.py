"""The one Markdown parser configuration, shared by `parse` (block structure) and `render` (HTML).

Settings measured on the whole knowledge base: ../shared/docs/markdown-facts.md.
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable
from typing import Any

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

from deckgen.sanitize import TAGS, UNWRAPPED_TAGS

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
    _limit_inline_nesting(md)
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
    md.block.ruler.at("html_block", _html_block_of_card_tags(_rule(md.block.ruler, "html_block")))
    md.use(texmath_plugin, delimiters="brackets")
    for ruler, name, opener, closer in (
        (md.inline.ruler, "math_inline", "\\(", "\\)"),
        (md.block.ruler, "math_block", "\\[", "\\]"),
        (md.block.ruler, "math_block_eqno", "\\[", "\\]"),
    ):
        _guard_texmath(ruler, name, opener, closer)
    _guard_links(md)
    # texmath knows `\[…\]` only as a block of its own; mid-paragraph the escape rule would
    # eat the backslashes and leave "[…]".
    md.inline.ruler.before("escape", "math_inline_bracket", _bracket_display_inline)
    md.core.ruler.after("inline", "heading_unclosed_strong", _heading_unclosed_strong)
    return md


def _heading_unclosed_strong(state: Any) -> None:
    """A heading that opens `**` and never closes it (`### **3. 标题`) is a bold heading with
    its end forgotten: read as the author meant, without the two stray stars (check warns)."""
    tokens = state.tokens
    for index in range(1, len(tokens)):
        inline = tokens[index]
        if inline.type != "inline" or tokens[index - 1].type != "heading_open" or not inline.children:
            continue
        if any(child.type == "strong_open" for child in inline.children):
            continue
        first = inline.children[0]
        if first.type == "text" and first.content.startswith("**"):
            first.content = first.content[2:].lstrip()


# Inline, CommonMark's own limit: no emphasis or link is nested this deep in a real answer,
# and each `[` left open tries links nested up to the limit (100 made that three times slower).
INLINE_NESTING = 20


def _limit_inline_nesting(md: MarkdownIt) -> None:
    parse = md.inline.parse

    def parse_inline(src: str, md: MarkdownIt, env: Any, tokens: list) -> Any:  # noqa: ANN401
        block_nesting = md.options["maxNesting"]
        md.options["maxNesting"] = min(INLINE_NESTING, block_nesting)
        try:
            return parse(src, md, env, tokens)
        finally:
            md.options["maxNesting"] = block_nesting

    md.inline.parse = parse_inline  # type: ignore[method-assign]


def _guard_links(md: MarkdownIt) -> None:
    """The link and image rules, run only where a `]` follows: each `[` scans on for its `]`,
    so text with many `[` and none after them would cost time quadratic in its length."""
    ruler = md.inline.ruler
    last_closer = _LastOccurrence("]")
    for name, opener in (("link", "["), ("image", "![")):
        index = ruler.__find__(name)

        def guarded(state: StateInline, silent: bool, rule: InlineRule = ruler.__rules__[index].fn,
                    opener: str = opener) -> bool:
            if not state.src.startswith(opener, state.pos) or last_closer(state.src) < state.pos:
                return False
            return rule(state, silent)

        ruler.__rules__[index].fn = guarded
    ruler.__cache__ = None


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


class _NextOccurrence:
    """Where `needle` next occurs in a text from a position on: the text is scanned once, so
    many openers without a closer cost linear time, not a scan to the end each."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.text: str | None = None
        self.positions: list[int] = []

    def __call__(self, text: str, start: int) -> int:
        if text is not self.text:
            self.text, self.positions = text, [m.start() for m in re.finditer(re.escape(self.needle), text)]
        index = bisect.bisect_left(self.positions, start)
        return self.positions[index] if index < len(self.positions) else -1


_NEXT_BRACKET_CLOSER = _NextOccurrence("\\]")


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


# A raw HTML block may start only at a tag a card can show (or at a comment); a line starting
# with any other tag (`<style> 标签是…`, `<reasoning_process>`) is a paragraph whose tag the
# renderer shows as text. CommonMark would start a block there that the sanitizer then removes,
# and for `<script>`, `<style>`, `<textarea>` or an unclosed `<!--` the block runs to the end of
# the file: everything after it would vanish from the card.
_BLOCK_TAGS = TAGS | UNWRAPPED_TAGS
_OPENING_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)(?=[\s/>]|$)")
# Blocks that run to a closing sequence rather than to a blank line: started only when it follows.
_CLOSERS = (
    ("<!--", re.compile(r"-->")),
    ("<?", re.compile(r"\?>")),
    ("<![CDATA[", re.compile(r"\]\]>")),
    ("<!", re.compile(r">")),
)
_PRE = re.compile(r"<pre(?=[\s>]|$)", re.IGNORECASE)
_PRE_CLOSER = re.compile(r"</pre>", re.IGNORECASE)


def _html_block_of_card_tags(rule: BlockRule) -> BlockRule:
    last_closers = {opener: _LastMatch(closer) for opener, closer in (*_CLOSERS, ("<pre", _PRE_CLOSER))}
    unclosed: dict[tuple[str, int], tuple[str, int, int]] = {}  # (opener, indent) → (text, from, to)

    def html_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        position = state.bMarks[start] + state.tShift[start]
        if not state.src.startswith("<", position):
            return False
        tag = _OPENING_TAG.match(state.src, position, state.eMarks[start])
        if tag is not None and tag.group(1).lower() not in _BLOCK_TAGS:
            return False
        opener = "<pre" if tag is not None and _PRE.match(state.src, position) else None
        if tag is None:
            opener = next((o for o, _ in _CLOSERS if state.src.startswith(o, position)), None)
        if opener is None:
            return rule(state, start, end, silent)  # a block that ends at a blank line
        # One that runs to its closing sequence: started only if the sequence closes it within
        # its container (a glance at the file's last closer first keeps many unclosed ones cheap).
        if last_closers[opener](state.src) < position:
            return False
        # Lines up to where a scan from an earlier line of this container found no closer have
        # none either: many unclosed openers in one list item cost one scan, not one each.
        seen = unclosed.get((opener, state.blkIndent))
        if seen is not None and seen[0] is state.src and seen[1] < start < seen[2]:
            return False
        tokens, line = len(state.tokens), state.line
        if not rule(state, start, end, False):
            return False
        closer = dict(_CLOSERS).get(opener, _PRE_CLOSER)
        closed = bool(closer.search(state.tokens[-1].content, len(opener)))
        if not closed:
            unclosed[(opener, state.blkIndent)] = (state.src, start, state.line)
        if silent or not closed:
            del state.tokens[tokens:]
            state.line = line
            return closed
        return True

    return html_block


class _LastMatch:
    """Where `pattern` last matches in a text, remembered for the text last asked about: one
    scan per text, however many lines ask."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.text: str | None = None
        self.index = -1

    def __call__(self, text: str) -> int:
        if text is not self.text:
            self.index = -1
            for match in self.pattern.finditer(text):
                self.index = match.start()
            self.text = text
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
    end = _NEXT_BRACKET_CLOSER(state.src, state.pos + 2)
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
