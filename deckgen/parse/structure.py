"""Block structure of one file: headings (Markdown and raw `<hN id>`), code fences, front matter.

Block structure comes from one markdown-it block parse per file (the configuration `render`
uses; a second one only when a raw heading turns out to sit inside code), so a `#` line inside a
code fence or a `$$` block is never taken for a heading. Raw question
headings are first blanked out of the text: CommonMark ends an HTML block only at a blank line,
so text glued under a raw heading would otherwise be swallowed by it (and a fence opening there
would be misread).
"""
from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it.token import Token

from deckgen.markdown import fence_language, make_markdown
from deckgen.model import WARNING, Diagnostic
from deckgen.parse.text import plain_text

# <h2 id="…"> opening a raw heading line; the closing tag is looked for separately.
_RAW_CANDIDATE = re.compile(r"^[ \t]*<h[1-6][\s>]", re.IGNORECASE | re.MULTILINE)
_RAW_OPEN = re.compile(r"[ \t]*<h([1-6])(\s[^>]*)?>", re.IGNORECASE)
_ID_ATTR = re.compile(r"""\bid\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_RAW_CLOSE = {n: re.compile(rf"</h{n}\s*>", re.IGNORECASE) for n in "123456"}
_ANY_CLOSE = re.compile(r"</h[1-6]\s*>", re.IGNORECASE)
_RAW_CLOSE_LOOKAHEAD = 5  # lines; a heading split over more lines is not a heading we know
# An opening tag whose id attribute a strict reading cannot take: a quote missing, or a `>` or
# a quote inside the quoted value (`<h2 id="8.定义？>8.定义？</h2>`, `id="#include"a.h"">`).
_LOOSE_ID = re.compile(r"""[ \t]*<h([1-6])\s+id\s*=\s*(["'])""", re.IGNORECASE)
# Patterns are written to run in linear time on any line (no nested or adjacent unbounded
# repeats that can backtrack into each other): sources can be 10 MB of anything.
_ID_MARKER = re.compile(r"<!--\s*deckgen-id:")
_TOC_TITLE = "目录"
_OUTPUT_LABEL = re.compile(
    r"^[*_\s]*(?:输出结果|运行结果|输出|output)[*_\s]*[:：][*_\s]*$", re.IGNORECASE
)
# HTML blocks that a blank line does not end: a raw heading inside one is content, not structure.
_OPAQUE_HTML = re.compile(r"\s*<(?:!--|pre|script|style|textarea)", re.IGNORECASE)
_CONTAINER_PREFIX = re.compile(r"^[\s>]*")
_FRONT_MATTER_LINE = re.compile(r"([A-Za-z0-9_-]+)[ \t]*:(.*)")

_md = make_markdown()
# A line no list or quote can hold: where parsing resumes after input nested too deeply.
_RESUME_LINE = re.compile(r"#{1,6}(?:[ \t]|$)|<[hH][1-6][\s>]")


@dataclass
class Heading:
    """A top-level heading: Markdown (`## x`, from the token stream) or raw HTML with an id."""

    line: int  # 0-based first line
    end: int  # 0-based line after the heading
    level: int
    text: str  # inner inline Markdown, id marker removed
    raw: bool
    html_id: str | None = None
    pinned_id: str | None = None  # from <!-- deckgen-id: … -->
    body_start: int = 0  # first line that can belong to the answer
    is_toc: bool = field(init=False)

    def __post_init__(self) -> None:
        plain = plain_text(self.text).rstrip(":：").strip()
        self.is_toc = plain == _TOC_TITLE or self.html_id == _TOC_TITLE


@dataclass
class _RawHeading:
    line: int
    end: int
    level: int
    html_id: str
    inner: str
    trailing: str  # text glued after the closing tag on its last line
    malformed: bool = False  # read as its author meant, not as HTML reads it


@dataclass
class _Fence:
    index: int  # position in the token stream
    line: int  # 0-based opening line
    end: int  # 0-based line after the block
    language: str
    code: str
    output_of: int | None = None  # token index of the code block this fence is the output of


@dataclass
class Doc:
    """What one markdown-it parse tells about a file, in 0-based lines."""

    path: Path
    lines: list[str]  # the file's lines, raw headings outside code blanked (glued text kept)
    headings: list[Heading]
    fences: list[_Fence]
    front_matter: dict[str, str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)  # the block tokens of `tokenized`
    # `lines` as they were parsed; empty when answers cannot be cut from `tokens` (see _block_tokens)
    tokenized: list[str] = field(default_factory=list)
    fence_lines: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.fence_lines = [fence.line for fence in self.fences]

    def diag(self, line0: int, level: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.path, line0 + 1, level, message))



def read_structure(path: Path, text: str) -> Doc:
    lines = text.split("\n")
    raws = _find_raw_headings(text, lines)
    work = list(lines)
    for raw in raws:
        _blank_raw(work, raw)
    tokens, sliceable = _block_tokens(work)

    # A raw heading inside a code block (or a comment, <pre> …) is content: put it back. That
    # changes no structure (those blocks end on their own markers, not on blank lines), only
    # the blocks' text, so a second parse is needed just for that, and only then.
    spans = _content_spans(tokens, work)
    starts = [span.start for span in spans]
    kept: list[_RawHeading] = []
    diagnostics: list[Diagnostic] = []
    for raw in raws:
        span = _containing(spans, starts, raw.line, _indent(lines[raw.line]))
        if span is None:
            kept.append(raw)
            if raw.malformed:
                message = (f"malformed heading tag (a quote missing or out of place, or a "
                           f"closing tag of another level): read as '{raw.inner}'")
                diagnostics.append(Diagnostic(path, raw.line + 1, WARNING, message))
            continue
        work[raw.line : raw.end] = lines[raw.line : raw.end]
        if span.unclosed_fence:
            message = (
                f"heading inside the code fence opened at line {span.start + 1}, which is never "
                "closed: not a question"
            )
            diagnostics.append(Diagnostic(path, raw.line + 1, WARNING, message))
    if len(kept) < len(raws):
        tokens, sliceable = _block_tokens(work)
    doc = Doc(path, work, [], _fences(tokens), _front_matter(tokens), diagnostics, tokens,
               list(work) if sliceable else [])

    headings = [_raw_to_heading(raw) for raw in kept]
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map:
            # a setext heading's text may run over several lines
            inline = tokens[i + 1].content.replace("\n", " ") if i + 1 < len(tokens) else ""
            start, end = token.map
            level = int(token.tag[1])
            headings.append(Heading(start, end, level, inline, raw=False, body_start=end))
    headings.sort(key=lambda h: h.line)
    for heading in headings:
        _take_id_marker(heading, work)
    doc.headings = headings
    return doc


def _find_raw_headings(text: str, lines: list[str]) -> list[_RawHeading]:
    """Lines opening `<hN id="…">`, wherever they are; `read_structure` drops those in code."""
    line_starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    found: list[_RawHeading] = []
    for candidate in _RAW_CANDIDATE.finditer(text):
        i = bisect.bisect_right(line_starts, candidate.start()) - 1
        if found and i < found[-1].end:
            continue
        line = lines[i]
        opening = _RAW_OPEN.match(line)
        id_match = _ID_ATTR.search(opening.group(2) or "") if opening else None
        html_id = next((g for g in id_match.groups() if g is not None), "") if id_match else ""
        malformed = False
        if not opening or not html_id.strip():
            loose = _loose_opening(line)
            if loose is None:
                continue
            level, html_id, rest = loose
            malformed = True
        else:
            level, rest = opening.group(1), line[opening.end() :]
        close = _RAW_CLOSE[level]
        first_rest = rest
        parts = []
        closing = close.search(rest)
        if closing is None and (other := _ANY_CLOSE.search(rest)):
            closing, malformed = other, True  # `<h2 id="…">…</h3>`: the line closes it anyway
        j = i
        # a heading may wrap before its closing tag, within the paragraph it starts
        while closing is None and j + 1 < len(lines) and j - i < _RAW_CLOSE_LOOKAHEAD:
            if not lines[j + 1].strip():
                break
            parts.append(rest)
            j += 1
            rest = lines[j]
            closing = close.search(rest)
        if closing is None:  # never closed: the heading is its first line
            end, inner, trailing = i + 1, first_rest, ""
        else:
            parts.append(rest[: closing.start()])
            end, inner, trailing = j + 1, " ".join(p.strip() for p in parts), rest[closing.end() :]
        found.append(
            _RawHeading(i, end, int(level), html_id.strip(), inner.strip(), trailing.strip(),
                        malformed)
        )
    return found


def _loose_opening(line: str) -> tuple[str, str, str] | None:
    """(level, id, text after the opening tag) of an opening tag HTML cannot read, when its
    line closes the heading: the id runs to the first quote-and-`>`, else to the first `>`."""
    opening = _LOOSE_ID.match(line)
    if not opening:
        return None
    level, quote = opening.group(1), opening.group(2)
    closing = _RAW_CLOSE[level].search(line, opening.end())
    if closing is None:
        return None
    value = line[opening.end() : closing.start()]
    cut = value.find(quote + ">")
    html_id, rest = (value[:cut], value[cut + 2 :]) if cut >= 0 else value.partition(">")[::2]
    if not html_id.strip() or not rest.strip():
        return None
    return level, html_id, rest + line[closing.start() :]


def _blank_raw(work: list[str], raw: _RawHeading) -> None:
    for k in range(raw.line, raw.end):
        work[k] = ""
    work[raw.end - 1] = raw.trailing


def _raw_to_heading(raw: _RawHeading) -> Heading:
    body_start = raw.end - 1 if raw.trailing else raw.end
    return Heading(
        raw.line, raw.end, raw.level, raw.inner, True, html_id=raw.html_id, body_start=body_start
    )


def _take_id_marker(heading: Heading, work: list[str]) -> None:
    """Pin the heading's key from `<!-- deckgen-id: x -->` at its end or on the next line."""
    found = _find_id_marker(heading.text)
    if found:
        start, end, pinned = found
        heading.text = (heading.text[:start] + heading.text[end:]).strip()
    elif heading.raw and heading.body_start < heading.end:  # glued after </hN> on its line
        trailing = work[heading.body_start].strip()
        found = _find_id_marker(trailing)
        if found and found[0] == 0:
            work[heading.body_start] = trailing[found[1] :].strip()
            if not work[heading.body_start]:
                heading.body_start = heading.end
        else:
            found = None
    if not found and heading.body_start < len(work):
        line = work[heading.body_start].strip()
        found = _find_id_marker(line)
        if found and (found[0], found[1]) == (0, len(line)):
            work[heading.body_start] = ""  # the marker is no part of the answer
        else:
            found = None
    if found and found[2]:
        heading.pinned_id = found[2]


def _find_id_marker(text: str) -> tuple[int, int, str] | None:
    """(start, end, id) of the first `<!-- deckgen-id: … -->` in `text`."""
    opening = _ID_MARKER.search(text)
    if not opening:
        return None
    close = text.find("-->", opening.end())
    if close < 0:
        return None
    return opening.start(), close + 3, text[opening.end() : close].strip()


def _fences(tokens: list[Token]) -> list[_Fence]:
    fences: list[_Fence] = []
    by_index: dict[int, _Fence] = {}
    for i, token in enumerate(tokens):
        if token.type != "fence" or not token.map:
            continue
        fence = _Fence(
            index=i,
            line=token.map[0],
            end=token.map[1],
            language=fence_language(token.info),
            code=token.content,
        )
        fences.append(fence)
        by_index[i] = fence
        # fence, paragraph "输出：", fence: the second block is what the first claims to print
        before = i - 4
        if (
            before in by_index
            and tokens[i - 3].type == "paragraph_open"
            and _OUTPUT_LABEL.match(tokens[i - 2].content)
            and by_index[before].output_of is None
        ):
            fence.output_of = before
    return fences


def fence_closed(token: Token, lines: list[str]) -> bool:
    # markdown-it does not say whether it found the closing fence: look at the block's last line
    # (an unclosed fence runs to the end of its container instead)
    start, end = token.map
    if end - start < 2 or end > len(lines):
        return False
    last = _CONTAINER_PREFIX.sub("", lines[end - 1]).rstrip()
    mark = token.markup[:1]
    return len(last) >= len(token.markup) and last == mark * len(last)


@dataclass
class _Span:
    """Lines [start, end) of a block whose lines are content whatever they say."""

    start: int
    end: int
    min_indent: int  # a line indented less is not inside (it ends the container instead)
    unclosed_fence: bool = False


def _content_spans(tokens: list[Token], lines: list[str]) -> list[_Span]:
    """Code blocks, comments, <pre>…: leaf blocks, so they never overlap."""
    spans: list[_Span] = []
    for token in tokens:
        if not token.map:
            continue
        if not (
            token.type in ("fence", "code_block")
            or (token.type == "html_block" and _OPAQUE_HTML.match(token.content))
        ):
            continue
        first = lines[token.map[0]]
        if first.lstrip().startswith(">"):
            continue  # in a blockquote: a line without `>` ends it
        nested = token.level > 0  # in a list item: a line indented less ends it
        if token.type == "code_block":
            min_indent = _indent(first) if nested else 4
        else:
            min_indent = _indent(first) if nested else 0
        unclosed = token.type == "fence" and not fence_closed(token, lines)
        spans.append(_Span(token.map[0], token.map[1], min_indent, unclosed))
    spans.sort(key=lambda span: span.start)
    return spans


def _containing(spans: list[_Span], starts: list[int], line: int, indent: int) -> _Span | None:
    k = bisect.bisect_right(starts, line) - 1
    if k >= 0 and spans[k].start <= line < spans[k].end and indent >= spans[k].min_indent:
        return spans[k]
    return None


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _block_tokens(lines: list[str]) -> tuple[list[Token], bool]:
    """Block tokens of the file, with `map` line ranges into `lines`, and whether each answer's
    share of them is what parsing the answer alone would give (not so when the file defines
    link references, which every answer may use, or when parsing had to resume).

    Past its nesting limit markdown-it skips the rest of the input, questions and all; the
    parse then resumes at the next line a deep list cannot hold (a heading at column 0), so
    only the too-deep part is lost, and `check` reports it.
    """
    tokens: list[Token] = []
    sliceable = True
    start = 0
    while start < len(lines):
        chunk: list[Token] = []
        env: dict = {}
        # ended by a newline as every line is, so the last block reads like any other
        text = "\n".join(lines[start:]).replace("\0", "\ufffd") + "\n"
        _md.block.parse(text, _md, env, chunk)
        sliceable = sliceable and not env.get("references") and not start
        deepest = max((t for t in chunk if t.map), key=lambda t: t.level, default=None)
        resume = None
        if deepest is not None and deepest.level >= _md.options["maxNesting"] - 2:
            resume = next((n for n in range(start + deepest.map[0] + 1, len(lines))
                           if _RESUME_LINE.match(lines[n])), None)
        for token in chunk:
            if token.map:
                token.map = [token.map[0] + start, token.map[1] + start]
                if resume is not None:
                    token.map = [min(token.map[0], resume), min(token.map[1], resume)]
        tokens.extend(chunk)
        if resume is None:
            break
        start = resume
    return tokens, sliceable


def _front_matter(tokens: list[Token]) -> dict[str, str]:
    if not tokens or tokens[0].type != "front_matter":
        return {}
    values: dict[str, str] = {}
    for line in tokens[0].content.split("\n"):
        found = _FRONT_MATTER_LINE.match(line)
        if found:
            value = found.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[found.group(1)] = value
    return values

