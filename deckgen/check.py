"""Lint: the problems hand-edited Markdown hides, reported at their line.

The checks read a source file the way `parse` and `render` do: the same markdown-it
configuration (`deckgen.markdown.make_markdown`) decides what is code, what is math and what
stays raw text, so a `$` in code is never math and a `$` the renderer pairs is never "unclosed".
A tracing inline rule watches the parser at every `$` and `\\` it reaches; that gives exact
positions without a second, hand-written (and inevitably different) math scanner.

Other problems (empty answers, duplicate keys, TOC coverage, images, removed HTML, encoding,
claimed output) are found by the stages that meet them: parse, render, ids and run.
"""
from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from deckgen.markdown import fence_language, make_markdown
from deckgen.model import ERROR, WARNING, Diagnostic
from deckgen.render import is_known_language

__all__ = ["lint_text"]

# A raw question heading `<h2 id="…">3.标题 $x$</h2>` (text may follow on its line). `parse`
# blanks such headings out of the text before parsing and `render` shows their inner text as
# inline Markdown, so lint does the same, line for line.
_RAW_HEADING = re.compile(
    r"^[ \t]*<h([1-6])(\s[^>\n]*)>([^\n]*?)</h\1\s*>([^\n]*)$", re.IGNORECASE | re.MULTILINE
)
_ID_ATTRIBUTE = re.compile(r"""\bid\s*=\s*(?:"\s*[^"\s]|'\s*[^'\s]|[^\s"'>])""", re.IGNORECASE)

# After a `$` the renderer left raw: what shows it is not math on purpose.
_PRICE_AFTER = re.compile(r"[ \t]*\d")  # $5, $ 10
_SHELL_VARIABLE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Z_][A-Z0-9_]+(?![A-Za-z0-9_(^{\[\\])")  # ${DIR}, $HOME
# How a formula starts or ends, glued to its `$`; anything else (a space, CJK, punctuation)
# reads as prose: "the $ sign", "美元$。".
_MATH_START = re.compile(r"[A-Za-z\\(\[{|^_+\-]")
_MATH_END = re.compile(r"[A-Za-z}\])|']$")

_SNIPPET_LENGTH = 40
_TRACE_KEY = "deckgen_check_trace"


@dataclass
class _Trace:
    """What the tracing rule saw in one inline source: math it parsed and delimiters left raw."""

    src: str
    math: list[tuple[int, Token]] = field(default_factory=list)  # (offset, math token)
    raw: list[int] = field(default_factory=list)  # offsets of `$`, `\(`, `\)`, `\[`, `\]` left as text


def lint_text(path: Path, text: str, tokens: list[Token] | None = None) -> list[Diagnostic]:
    """Diagnostics for one source file's decoded text, sorted by line; never raises.

    Errors: unclosed `$`, `$$` and code fences; unbalanced `\\(`/`\\)` and `\\[`/`\\]`; lists or
    quotes nested past the parser's limit (their lines, and after a list the rest of the file,
    are dropped). Warnings: unbalanced braces in math; doubled delimiters (`$\\( x \\)$`); `$`
    pairs that turn prices or shell variables into math; an escaped `\\$` inside math; a fence
    closed only by the end of its list item; fence languages Pygments cannot highlight.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    try:
        found = _Linter(path, text).run(tokens)
    except (RecursionError, RuntimeError, ValueError, IndexError) as exc:  # the parser gave up
        return [Diagnostic(path, 0, ERROR, f"could not check this file: {type(exc).__name__}: {exc}")]
    return sorted(found, key=lambda d: d.line)


class _Linter:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.line_count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        self.found: list[Diagnostic] = []

    def run(self, tokens: list[Token] | None = None) -> list[Diagnostic]:
        """Lint the text; `tokens`, when given, are its block tokens with raw question headings
        blanked (as `parse` makes them), which saves parsing the file again."""
        parser = _parser()
        titles: list[tuple[int, str]] = []  # (1-based line, inner Markdown) of raw headings
        counted = [0, 0]  # offset and line reached, to number headings in one pass

        def blank_heading(match: re.Match[str]) -> str:
            if not _ID_ATTRIBUTE.search(match.group(2)):
                return match.group(0)  # without an id, parse does not take it for a heading
            counted[1] += self.text.count("\n", counted[0], match.start())
            counted[0] = match.start()
            titles.append((counted[1] + 1, match.group(3)))
            return match.group(4)

        source = _RAW_HEADING.sub(blank_heading, self.text) if "<" in self.text else self.text
        verbatim: list[tuple[int, int]] = []  # line spans of code and raw HTML blocks
        if tokens is None:
            # Block structure only: inline math is traced below, just where a `$` or `\` is.
            tokens = []
            parser.md.block.parse(source.replace("\0", "\ufffd"), parser.md, {}, tokens)
        self._check_nesting(tokens, parser.md.options["maxNesting"])
        for index, token in enumerate(tokens):
            if token.type in ("fence", "code_block", "html_block") and token.map:
                verbatim.append((token.map[0], token.map[1]))
            if token.type == "fence":
                self._check_fence(token)
            elif token.type.startswith("math_block") and token.map:
                self._check_math(token, token.map[0] + 1)
            elif token.type == "inline" and token.map:
                self._check_inline(parser, token.content, token.map[0] + 1)
                self._check_stars(parser, token.content, token.map[0] + 1,
                                  heading=index > 0 and tokens[index - 1].type == "heading_open")
        starts = [span[0] for span in verbatim]
        for line, title in titles:
            k = bisect.bisect_right(starts, line - 1) - 1
            if k < 0 or verbatim[k][1] < line:  # a heading line inside code is code
                self._check_inline(parser, title, line)
                self._check_stars(parser, title, line, heading=True)
        return self.found

    def _check_stars(self, parser: _Parser, src: str, first_line: int, heading: bool = False) -> None:
        """A `**` that opens or closes nothing shows on the card as two stars (`### **3. x`)."""
        # Only where a `**` may be left over: an odd number of them, or one beside a space
        # (`** 粗体 **` opens nothing); balanced pairs are the thousands of bold phrases.
        if "**" not in src or (src.count("**") % 2 == 0 and not _SPACED_STARS.search(src)):
            return
        tokens: list[Token] = []
        parser.md.inline.parse(src, parser.md, {}, tokens)  # no trace: math is checked apart
        for token in tokens:
            found = _LONE_STARS.search(token.content) if token.type == "text" else None
            if found:
                offset = max(src.find(token.content), 0) + found.start()
                line = first_line + src.count("\n", 0, offset)
                context = _snippet(token.content[max(0, found.start() - 12) :][:40])
                if heading and src.lstrip().startswith("**"):  # deckgen.markdown drops them
                    self._report(line, WARNING, f"unclosed `**` in the heading `{context}`: read as a "
                                                "bold heading, the two stars left out")
                else:
                    self._report(line, WARNING, f"unclosed `**` in `{context}`: shows as two stars")
                return

    def _report(self, line: int, level: str, message: str) -> None:
        self.found.append(Diagnostic(self.path, line, level, message))

    # --- structure ---

    def _check_nesting(self, tokens: list[Token], limit: int) -> None:
        """Containers nested past markdown-it's limit: it skips their content, and for a list
        everything after it too, without a word (so later questions vanish)."""
        resume = 0  # index of the first token after the last reported skip
        for i, token in enumerate(tokens):
            if i < resume or token.nesting != 1 or token.level < limit - 1 or not token.map:
                continue
            resume = next((k for k in range(i + 1, len(tokens)) if tokens[k].map), len(tokens))
            last = tokens[resume].map[0] if resume < len(tokens) else self.line_count
            self._report(
                token.map[0] + 1,
                ERROR,
                f"lists or quotes nested too deeply: the Markdown parser skips lines "
                f"{token.map[0] + 1}–{max(last, token.map[0] + 1)}, so no card shows them",
            )

    # --- code fences ---

    def _check_fence(self, token: Token) -> None:
        start, end = token.map or (0, 0)
        line = start + 1
        # A closed fence's content excludes both fence lines; an unclosed one runs to where
        # its container (the file, a list item, a quote) ends.
        content_lines = token.content.count("\n") + (not token.content.endswith("\n") and token.content != "")
        if content_lines != end - start - 2:
            if end >= self.line_count:
                self._report(
                    line,
                    ERROR,
                    "unclosed code fence opened here: everything after it, to the end of the file, "
                    "becomes code",
                )
            else:
                self._report(
                    line,
                    WARNING,
                    f"unclosed code fence opened here: it runs to the end of its list item or quote "
                    f"(line {end}); indent the closing fence like the opening one",
                )
        language = fence_language(token.info)
        if not is_known_language(language):
            self._report(line, WARNING, f"unknown code language '{language}': shown as plain text")

    # --- inline math ---

    def _check_inline(self, parser: _Parser, src: str, first_line: int) -> None:
        if "$" not in src and "\\" not in src:
            return
        trace = _trace_inline(parser, src)
        newlines: list[int] = []

        def line_of(offset: int) -> int:
            if not newlines and "\n" in src:
                newlines.extend(i for i, ch in enumerate(src) if ch == "\n")
            return first_line + bisect.bisect_left(newlines, offset)

        for offset, math in trace.math:
            line = line_of(offset)
            self._check_math(math, line)
            if math.markup == "$":
                self._check_dollar_pair(src, offset, math, line)
        self._check_raw(src, trace.raw, line_of)

    def _check_raw(self, src: str, raw: list[int], line_of: Callable[[int], int]) -> None:
        skip = -1  # the second `$` of a `$$` already reported
        for offset in raw:
            if offset == skip:
                continue
            delimiter = src[offset : offset + 2]
            if delimiter == "$$":
                skip = offset + 1
                self._report(
                    line_of(offset),
                    WARNING,
                    "unclosed display math `$$`: no closing `$$` before a blank line or the end of "
                    "the block",
                )
            elif delimiter[0] == "$":
                if _means_math(src, offset):
                    context = _snippet(src[max(0, offset - 12) : offset + 28])
                    self._report(
                        line_of(offset),
                        WARNING,
                        f"unclosed math: `$` in `{context}` has no partner in its paragraph, "
                        "so it shows as a raw `$`",
                    )
            else:
                closing = {"\\(": "\\)", "\\[": "\\]"}.get(delimiter)
                if closing:
                    message = f"unbalanced `{delimiter}`: no `{closing}` closes it in its paragraph"
                else:
                    opening = "\\(" if delimiter == "\\)" else "\\["
                    message = f"unbalanced `{delimiter}`: no `{opening}` opens it"
                self._report(line_of(offset), WARNING, message)

    def _check_dollar_pair(self, src: str, offset: int, math: Token, line: int) -> None:
        """`$…$` the renderer pairs although the author hardly meant a formula."""
        closing = offset + len(math.content) + 1
        if _literal_dollar(src, offset) and _literal_dollar(src, closing):
            self._report(
                line,
                WARNING,
                f"dollar signs pair into math: `{_snippet(src[offset:closing + 4])}` renders "
                f"`{_snippet(math.content)}` as a formula; write a literal dollar as `\\$`",
            )
        if "\\$" in math.content:
            self._report(
                line,
                WARNING,
                f"escaped `\\$` inside math `{_snippet(math.content)}`: it does not close the "
                "formula, the next `$` does",
            )

    # --- any math span ---

    def _check_math(self, token: Token, line: int) -> None:
        content = token.content.strip()
        inner = next((d for d in ("$$", "$", "\\(", "\\[") if content.startswith(d)), None)
        if inner is not None:
            self._report(
                line,
                WARNING,
                f"doubled math delimiters `{token.markup}{inner}`: keep one pair "
                "(MathJax reports an error for them)",
            )
        balance = _brace_balance(content)
        if balance:
            what = "a `{` is never closed" if balance > 0 else "a `}` closes nothing"
            self._report(line, WARNING, f"unbalanced braces in math `{_snippet(content)}`: {what}")


def _literal_dollar(src: str, offset: int) -> bool:
    """Whether the `$` at `offset` reads as a price or a shell variable: $5, $ 10, $HOME, ${DIR}."""
    after = src[offset + 1 : offset + 1 + _SNIPPET_LENGTH]
    return bool(_PRICE_AFTER.match(after) or _SHELL_VARIABLE.match(after))


def _means_math(src: str, offset: int) -> bool:
    """Whether a `$` the renderer left raw reads as a formula's start or end (not a price or a variable)."""
    before = src[max(0, offset - 1) : offset]
    if before.isdigit() or _literal_dollar(src, offset):  # 5$, $5, $HOME
        return False
    after = src[offset + 1 : offset + 2]
    return _MATH_START.match(after) is not None or _MATH_END.search(before) is not None


def _brace_balance(tex: str) -> int:
    """Open minus closed TeX groups: > 0 when a `{` is left open, < 0 when a `}` comes too early."""
    depth = 0
    escaped = False
    for ch in tex:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return depth
    return depth


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_LENGTH else text[: _SNIPPET_LENGTH - 1] + "…"


# Inline rules that never consume a `$` or `\` in a source without "`", "<" or "[" (no code
# spans, HTML, autolinks or links): there, the math and escape rules alone decide.
_SCANNABLE_RULES = frozenset(
    {"deckgen_check_trace", "text", "newline", "math_inline", "math_inline_bracket", "escape",
     "backticks", "emphasis", "link", "image", "autolink", "html_inline", "entity"}
)
_NEEDS_TOKENIZER = re.compile(r"[`<\[]")
# `**` left in text, but not a power between operands (`2**10`, `x**2`) meant as two stars
_SPACED_STARS = re.compile(r"\*\*\s|\s\*\*")
_LONE_STARS = re.compile(r"(?<![A-Za-z0-9)\]])\*\*|\*\*(?![A-Za-z0-9(])")
_MATH_OR_ESCAPE = re.compile(r"[$\\]")
_ESCAPABLE = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\n")


@dataclass(frozen=True)
class _Parser:
    md: MarkdownIt
    trace: Callable[[StateInline, bool], bool]
    scannable: bool  # the configuration has no inline rule beyond _SCANNABLE_RULES


def _trace_inline(parser: _Parser, src: str) -> _Trace:
    """The math spans and raw delimiters the renderer's inline parser finds in `src`."""
    trace = _Trace(src)
    env = {_TRACE_KEY: trace}
    if not parser.scannable or _NEEDS_TOKENIZER.search(src):
        parser.md.inline.parse(src, parser.md, env, [])
        return trace
    # Most paragraphs: only `$` and `\` matter, so visit just those, as the tokenizer would
    # (several times faster on a math-heavy file than tokenizing every character).
    state = StateInline(src, parser.md, env, [])
    pos = 0
    while found := _MATH_OR_ESCAPE.search(src, pos):
        state.pos = found.start()
        if parser.trace(state, False):
            pos = state.pos
        elif src[found.start()] == "\\" and src[found.start() + 1 : found.start() + 2] in _ESCAPABLE:
            pos = found.start() + 2  # the escape rule takes `\` and the character after it
        else:
            pos = found.start() + 1
    return trace


@functools.lru_cache(maxsize=1)
def _parser() -> _Parser:
    """The renderer's parser, with inline parsing left to `_Linter` and a tracing rule in front."""
    md = make_markdown()
    active = zip(md.inline.ruler.get_active_rules(), md.inline.ruler.getRules(""))
    math_rules = [rule for name, rule in active if name.startswith("math")]

    def trace(state: StateInline, silent: bool) -> bool:
        record = state.env.get(_TRACE_KEY) if isinstance(state.env, dict) else None
        # Only the traced source itself: an image's alt text is parsed on its own and never
        # shows as math.
        if silent or record is None or state.src is not record.src:
            return False
        start = state.pos
        ch = state.src[start]
        if ch == "\\":
            if state.src[start + 1 : start + 2] not in ("(", ")", "[", "]"):
                return False
        elif ch != "$":
            return False
        # The math rules come right after `text` and `newline`, which never match at `$` or
        # `\`, so trying them here is exactly what the tokenizer would do next.
        for rule in math_rules:
            if rule(state, False):
                record.math.append((start, state.tokens[-1]))
                return True
        # In a link's text `\]` is how a `]` is written (`[[2305.02567\] LayoutDM](…)`): an
        # escape the card shows as `]`, no math delimiter.
        if ch != "\\" or not state.linkLevel:
            record.raw.append(start)
        return False

    md.inline.ruler.before("text", "deckgen_check_trace", trace)
    md.disable("inline")  # the core rule: _Linter parses each inline source itself, traced
    scannable = set(md.inline.ruler.get_active_rules()) <= _SCANNABLE_RULES
    return _Parser(md, trace, scannable)
