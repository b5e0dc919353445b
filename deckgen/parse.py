"""Markdown source files → the data model (`deckgen.model`), for both source layouts.

Two layouts, one parser:

- **article**: `# 章节` section headings, `## 【一】问题` question headings below them; the
  answer runs to the next heading of the question's level or shallower.
- **knowledge-base** (upstream WeThinkIn/Interview-for-Algorithm-Engineer): a `目录` table of
  contents, then one raw HTML heading `<hN id="…">33.问题</hN>` per question; the answer runs to
  the next question. Topic folder → section, file → subdeck.

Block structure comes from one markdown-it block parse per file (the configuration `render`
uses; a second one only when a raw heading turns out to sit inside code), so a `#` line inside a
code fence or a `$$` block is never taken for a heading. Raw question
headings are first blanked out of the text: CommonMark ends an HTML block only at a blank line,
so text glued under a raw heading would otherwise be swallowed by it (and a fence opening there
would be misread). Every answer keeps the file's line numbering (`answer_line + i` is the file
line of answer line `i`), so later stages can point at the right line.
"""
from __future__ import annotations

import bisect
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from markdown_it.token import Token

from deckgen.ids import QUESTION_MARKER, normalize_key, strip_number
from deckgen.markdown import fence_language, make_markdown
from deckgen.model import (
    ERROR,
    WARNING,
    CodeBlock,
    Corpus,
    Diagnostic,
    Question,
    Section,
    SourceFile,
    TocEntry,
)

ARTICLE = "article"
KNOWLEDGE_BASE = "knowledge-base"

# <h2 id="…"> opening a raw heading line; the closing tag is looked for separately.
_RAW_CANDIDATE = re.compile(r"^[ \t]*<h[1-6][\s>]", re.IGNORECASE | re.MULTILINE)
_RAW_OPEN = re.compile(r"[ \t]*<h([1-6])(\s[^>]*)?>", re.IGNORECASE)
_ID_ATTR = re.compile(r"""\bid\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_RAW_CLOSE = {n: re.compile(rf"</h{n}\s*>", re.IGNORECASE) for n in "123456"}
_RAW_CLOSE_LOOKAHEAD = 5  # lines; a heading split over more lines is not a heading we know
# Patterns are written to run in linear time on any line (no nested or adjacent unbounded
# repeats that can backtrack into each other): sources can be 10 MB of anything.
_ID_MARKER = re.compile(r"<!--\s*deckgen-id:")
_TOC_TITLE = "目录"
_ORDERED_MARKER = re.compile(r"\d{1,9}[.)]")
_NUMBERED = re.compile(r"^\s*\d+\s*(?:[.．、)）:：]|\s)")
_OUTPUT_LABEL = re.compile(
    r"^[*_\s]*(?:输出结果|运行结果|输出|output)[*_\s]*[:：][*_\s]*$", re.IGNORECASE
)
_HTML_TAG = re.compile(r"<[^<>]*>")
_INLINE_MARKS = re.compile(r"[*`]+")
# HTML blocks that a blank line does not end: a raw heading inside one is content, not structure.
_OPAQUE_HTML = re.compile(r"\s*<(?:!--|pre|script|style|textarea)", re.IGNORECASE)
_CONTAINER_PREFIX = re.compile(r"^[\s>]*")
_FRONT_MATTER_LINE = re.compile(r"([A-Za-z0-9_-]+)[ \t]*:(.*)")
_README = "readme.md"
_NOT_A_FILE = "not a regular file (a named pipe, socket or device): skipped"
_SKIPPED_DIRS = {"build"}

_md = make_markdown()
# A line no list or quote can hold: where parsing resumes after input nested too deeply.
_RESUME_LINE = re.compile(r"#{1,6}(?:[ \t]|$)|<[hH][1-6][\s>]")


# ---------------------------------------------------------------------------------------------
# Reading and discovering files


# What a build reads, bounded. A paragraph's inline Markdown costs up to ~40 s and ~400 MB per
# MB in its densest forms (a link every 7 characters, `[` left open: scripts/benchmark.py
# --long-lines), so a line, a paragraph at most, is refused past MAX_LINE_CHARS; past
# MAX_SOURCE_BYTES a file is no article (the knowledge base's largest file is 160 KB, its longest
# line 1,239 characters).
MAX_SOURCE_BYTES = 16_000_000
MAX_LINE_CHARS = 1_000_000


def read_source(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The text of a source file: UTF-8, BOM stripped, line endings LF, tabs kept. Only a
    regular file of at most MAX_SOURCE_BYTES is read (a named pipe would block the build), and
    one with a line longer than MAX_LINE_CHARS is refused."""
    try:
        data = _read_regular(Path(path))
    except OSError as exc:
        return None, [Diagnostic(path, 0, ERROR, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8: invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start}"
        return None, [Diagnostic(path, line, ERROR, message)]
    text = _normalize_text(text)
    if len(text) > MAX_LINE_CHARS:
        for line, length in enumerate(map(len, text.split("\n")), start=1):
            if length > MAX_LINE_CHARS:
                message = (f"a line of {length:,} characters; deckgen reads lines of at most "
                           f"{MAX_LINE_CHARS:,} characters: break it into paragraphs")
                return None, [Diagnostic(path, line, ERROR, message)]
    return text, []


def _read_regular(path: Path) -> bytes:
    # O_NONBLOCK: opening a named pipe would wait for a writer; it is refused instead.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file (a named pipe or a device): only files are read")
        if info.st_size > MAX_SOURCE_BYTES:
            raise OSError(0, f"the file is {info.st_size / 1e6:.1f} MB; deckgen reads source files "
                             f"of at most {MAX_SOURCE_BYTES / 1e6:g} MB: split it into several files")
        return handle.read(MAX_SOURCE_BYTES + 1)


def is_regular_file(path: Path) -> bool:
    """A regular file (or a link to one): not a folder, named pipe, socket or device."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _normalize_text(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def discover(paths: Sequence[Path]) -> tuple[list[tuple[Path, Path]], list[Diagnostic]]:
    """(root, file) pairs for the given files and folders, in a deterministic order.

    A file stands for itself (its root is its folder). A folder stands for every `*.md` below
    it, sorted, except README files, hidden folders and `build/` (deckgen's own output).
    """
    found: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    diagnostics: list[Diagnostic] = []

    def add(root: Path, file: Path) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            found.append((root, file))

    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(_markdown_files(path))
            if not files:
                diagnostics.append(Diagnostic(path, 0, WARNING, "no Markdown files found here"))
            for file in files:
                if is_regular_file(file):
                    add(path, file)
                else:
                    diagnostics.append(Diagnostic(file, 0, WARNING, _NOT_A_FILE))
        elif is_regular_file(path):
            add(path.parent, path)
        elif path.exists():
            diagnostics.append(Diagnostic(path, 0, ERROR, _NOT_A_FILE))
        else:
            diagnostics.append(Diagnostic(path, 0, ERROR, "no such file or folder"))
    return found, diagnostics


def _markdown_files(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS]
        for name in filenames:
            lower = name.lower()
            if lower.endswith(".md") and not name.startswith(".") and lower != _README:
                files.append(Path(dirpath) / name)
    return files


def parse_sources(paths: Sequence[Path]) -> Corpus:
    """Every source file under `paths`, parsed; sections of the same name merged in order."""
    pairs, diagnostics = discover(paths)
    return assemble([load_file(root, path) for root, path in pairs], diagnostics)


def load_file(root: Path, path: Path, lint: Linter | None = None) -> ParsedFile:
    """One file read, parsed, checked against its table of contents (and linted, given a
    linter); its source is None when it cannot be read."""
    text, diagnostics = read_source(path)
    if text is None:
        return ParsedFile(None, diagnostics)
    try:
        parsed = parse_document(path, text, root=root, lint=lint)
    except Exception as exc:  # a parser bug must cost one file, not the whole build
        message = f"internal error while parsing (please report): {exc!r}"
        return ParsedFile(None, [*diagnostics, Diagnostic(path, 0, ERROR, message)])
    assert parsed.source is not None
    parsed.diagnostics = diagnostics + parsed.diagnostics + coverage(parsed.source)
    return parsed


def assemble(loaded: Iterable[ParsedFile], diagnostics: list[Diagnostic]) -> Corpus:
    """Parsed files in order as one corpus: sections of the same name merged in order."""
    corpus = Corpus(diagnostics=list(diagnostics))
    sections: dict[str, Section] = {}
    for parsed in loaded:
        source = parsed.source
        corpus.diagnostics.extend(parsed.diagnostics)
        if source is None:
            continue
        corpus.files.append(source)
        for question in source.questions:
            section = sections.get(question.section)
            if section is None:
                section = sections[question.section] = Section(question.section)
                corpus.sections.append(section)
            section.questions.append(question)
    return corpus


# ---------------------------------------------------------------------------------------------
# One file


@dataclass
class _Heading:
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
        plain = _plain(self.text).rstrip(":：").strip()
        self.is_toc = plain == _TOC_TITLE or self.html_id == _TOC_TITLE


@dataclass
class _RawHeading:
    line: int
    end: int
    level: int
    html_id: str
    inner: str
    trailing: str  # text glued after the closing tag on its last line


@dataclass
class _Fence:
    index: int  # position in the token stream
    line: int  # 0-based opening line
    end: int  # 0-based line after the block
    language: str
    code: str
    output_of: int | None = None  # token index of the code block this fence is the output of


@dataclass
class _Doc:
    """What one markdown-it parse tells about a file, in 0-based lines."""

    path: Path
    lines: list[str]  # the file's lines, raw headings outside code blanked (glued text kept)
    headings: list[_Heading]
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


Linter = Callable[[Path, str, list[Token]], list[Diagnostic]]  # (path, text, block tokens)


@dataclass
class ParsedFile:
    """One source file parsed: its questions and problems, and the parser's own output for
    each answer, so the renderer need not parse the text a second time."""

    source: SourceFile | None  # None when the file could not be read
    diagnostics: list[Diagnostic]
    # Per question: its answer's block tokens, lines counted from the answer's first line;
    # None where the file's parse does not give them exactly as the answer alone would.
    answer_tokens: list[list[Token] | None] = field(default_factory=list)


def parse_file(
    path: Path, text: str, *, root: Path, lint: Linter | None = None
) -> tuple[SourceFile, list[Diagnostic]]:
    """The questions, table of contents and front matter of one source file; with a linter,
    its findings too, from the same parse."""
    parsed = parse_document(path, text, root=root, lint=lint)
    assert parsed.source is not None
    return parsed.source, parsed.diagnostics


def parse_document(path: Path, text: str, *, root: Path, lint: Linter | None = None) -> ParsedFile:
    """parse_file, keeping each answer's block tokens for the renderer."""
    text = _normalize_text(text)
    doc = _read_structure(path, text)
    if lint is not None:
        doc.diagnostics.extend(lint(path, text, doc.tokens))
    source = _source_file(doc, root)
    doc.diagnostics.sort(key=lambda d: d.line)
    return ParsedFile(source, doc.diagnostics, _answer_tokens(doc, source.questions))


def _source_file(doc: _Doc, root: Path) -> SourceFile:
    toc = _parse_toc(doc)
    layout = _detect_layout(doc, toc)
    source = SourceFile(path=doc.path, layout=layout, toc=toc, front_matter=doc.front_matter)
    if layout == KNOWLEDGE_BASE:
        source.questions = _knowledge_base_questions(doc, toc, root)
    else:
        source.questions = _article_questions(doc)
    return source


def _answer_tokens(doc: _Doc, questions: Sequence[Question]) -> list[list[Token] | None]:
    """The file's block tokens of each answer, where they are what parsing the answer alone
    gives: its lines unchanged since the parse, no block crossing its edges, no reference
    definitions elsewhere in the file it might use, no unclosed fence running past its end."""
    if not doc.tokenized:
        return [None] * len(questions)
    blocks = []  # (index, first line, last line + 1 without trailing blank lines) of top-level blocks
    for index, token in enumerate(doc.tokens):
        if token.level == 0 and token.map:
            begin, end = token.map
            while end > begin + 1 and not doc.tokenized[end - 1].strip():
                end -= 1  # a list's range takes in the blank lines after it
            blocks.append((index, begin, end))
    begins = [begin for _, begin, _ in blocks]
    return [_slice(doc, blocks, begins, q) for q in questions]


def _slice(doc: _Doc, blocks: list[tuple[int, int, int]], begins: list[int],
           question: Question) -> list[Token] | None:
    start = question.answer_line - 1
    stop = start + question.answer.count("\n") + 1
    if "\n".join(doc.tokenized[start:stop]) != question.answer:
        return None
    first = bisect.bisect_left(begins, start)
    last = bisect.bisect_left(begins, stop)
    if first > 0 and blocks[first - 1][2] > start or last > 0 and blocks[last - 1][2] > stop:
        return None  # a block crossing the answer's edge
    if first == last:
        return []
    end_index = blocks[last][0] if last < len(blocks) else len(doc.tokens)
    picked = doc.tokens[blocks[first][0]:end_index]
    if any(t.type == "fence" and not _fence_closed(t, doc.tokenized) for t in picked):
        return None  # it runs on over the blank lines after the answer
    for token in picked:  # each token belongs to one answer: renumbered in place
        if token.map:
            token.map = [token.map[0] - start, min(token.map[1], stop) - start]
    return picked


def _read_structure(path: Path, text: str) -> _Doc:
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
    doc = _Doc(path, work, [], _fences(tokens), _front_matter(tokens), diagnostics, tokens,
               list(work) if sliceable else [])

    headings = [_raw_to_heading(raw) for raw in kept]
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map:
            # a setext heading's text may run over several lines
            inline = tokens[i + 1].content.replace("\n", " ") if i + 1 < len(tokens) else ""
            start, end = token.map
            level = int(token.tag[1])
            headings.append(_Heading(start, end, level, inline, raw=False, body_start=end))
    headings.sort(key=lambda h: h.line)
    for heading in headings:
        _take_id_marker(heading, work)
    doc.headings = headings
    return doc


def _find_raw_headings(text: str, lines: list[str]) -> list[_RawHeading]:
    """Lines opening `<hN id="…">`, wherever they are; `_read_structure` drops those in code."""
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
        if not opening or not html_id.strip():
            continue
        level = opening.group(1)
        close = _RAW_CLOSE[level]
        rest = line[opening.end() :]
        parts = []
        closing = close.search(rest)
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
            end, inner, trailing = i + 1, line[opening.end() :], ""
        else:
            parts.append(rest[: closing.start()])
            end, inner, trailing = j + 1, " ".join(p.strip() for p in parts), rest[closing.end() :]
        found.append(
            _RawHeading(i, end, int(level), html_id.strip(), inner.strip(), trailing.strip())
        )
    return found


def _blank_raw(work: list[str], raw: _RawHeading) -> None:
    for k in range(raw.line, raw.end):
        work[k] = ""
    work[raw.end - 1] = raw.trailing


def _raw_to_heading(raw: _RawHeading) -> _Heading:
    body_start = raw.end - 1 if raw.trailing else raw.end
    return _Heading(
        raw.line, raw.end, raw.level, raw.inner, True, html_id=raw.html_id, body_start=body_start
    )


def _take_id_marker(heading: _Heading, work: list[str]) -> None:
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


def _fence_closed(token: Token, lines: list[str]) -> bool:
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
        unclosed = token.type == "fence" and not _fence_closed(token, lines)
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


# ---------------------------------------------------------------------------------------------
# Table of contents and layout


def _parse_toc(doc: _Doc) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for k, heading in enumerate(doc.headings):
        if not heading.is_toc:
            continue
        stop = doc.headings[k + 1].line if k + 1 < len(doc.headings) else len(doc.lines)
        for n in range(heading.end, stop):
            link = _toc_link(doc.lines[n])
            if link:
                entries.append(TocEntry(link[0], link[1], n + 1))
    return entries


def _toc_link(line: str) -> tuple[str, str] | None:
    """(title, anchor) of a `- [1.title](#anchor)` line; the anchor may hold parentheses."""
    text = line.strip()
    if text[:1] in ("-", "*", "+"):
        text = text[1:].lstrip()
    else:
        number = _ORDERED_MARKER.match(text)
        if number:
            text = text[number.end() :].lstrip()
    if not (text.startswith("[") and text.endswith(")")):
        return None
    middle = text.find("](#")
    if middle < 0:
        return None
    return text[1:middle].strip(), text[middle + 3 : -1].strip()


def _detect_layout(doc: _Doc, toc: list[TocEntry]) -> str:
    # Counted, not just seen: an article may give a section a raw `<h1 id>`, and a knowledge-base
    # answer may have a `### 【一】` heading of its own.
    marked = sum(1 for h in doc.headings if QUESTION_MARKER.match(h.text))
    raw = sum(
        1 for h in doc.headings if h.raw and not h.is_toc and not QUESTION_MARKER.match(h.text)
    )
    if raw > marked:
        return KNOWLEDGE_BASE
    if marked:
        return ARTICLE
    toc_keys = {k for entry in toc for k in _entry_keys(entry)}
    if toc_keys and any(_is_numbered(h.text) and _heading_keys(h) & toc_keys for h in doc.headings):
        return KNOWLEDGE_BASE
    return ARTICLE


def _is_numbered(text: str) -> bool:
    return bool(_NUMBERED.match(text))


def _loose(key: str) -> str:
    """A key with punctuation gone too: TOC anchors spell spaces and `?` their own way."""
    return re.sub(r"[\W_]+", "", key)


def _anchor_keys(anchor: str) -> set[str]:
    anchor = unquote(anchor).strip()
    if anchor.lower().startswith("user-content-"):
        anchor = anchor[len("user-content-") :]
    return {_loose(normalize_key(anchor, is_id=True)), _loose(normalize_key(anchor))}


def _entry_keys(entry: TocEntry) -> set[str]:
    return ({_loose(normalize_key(entry.title))} | _anchor_keys(entry.anchor)) - {""}


def _heading_keys(heading: _Heading) -> set[str]:
    keys = {_loose(normalize_key(heading.text))}
    for name in (heading.html_id, heading.pinned_id):
        if name:
            keys |= _anchor_keys(name)
    return keys - {""}


def _question_keys(question: Question) -> set[str]:
    keys = {_loose(question.key), _loose(normalize_key(question.title))}
    if question.explicit_id:
        keys |= _anchor_keys(question.explicit_id)
    return keys - {""}


# ---------------------------------------------------------------------------------------------
# The two layouts


def _article_questions(doc: _Doc) -> list[Question]:
    questions: list[Question] = []
    headings = doc.headings
    is_question = [bool(QUESTION_MARKER.match(h.text)) for h in headings]
    # the nearest preceding non-question heading of each level, kept as a stack
    open_sections: list[_Heading] = []
    for k, heading in enumerate(headings):
        if not is_question[k]:
            while open_sections and open_sections[-1].level >= heading.level:
                open_sections.pop()
            open_sections.append(heading)
            continue
        later = k + 1
        while later < len(headings) and not (
            is_question[later] or headings[later].level <= heading.level
        ):
            later += 1
        end = headings[later].line if later < len(headings) else len(doc.lines)
        section = next((s for s in reversed(open_sections) if s.level < heading.level), None)
        title = strip_number(heading.text)
        if not title:
            doc.diag(heading.line, ERROR, "question heading has no title: no card")
            continue
        if section is None:
            doc.diag(heading.line, ERROR, "question outside any section: no card")
            continue
        name = _section_name(section.text)
        answer = _answer(doc, heading.body_start, end, inner=headings[k + 1 : later])
        if answer is None:
            doc.diag(heading.line, WARNING, "empty answer: no card")
            continue
        questions.append(
            _question(doc, heading, title, answer, section=name, deck=(name,), tags=(_tag(name),))
        )
    return questions


def _knowledge_base_questions(doc: _Doc, toc: list[TocEntry], root: Path) -> list[Question]:
    section, deck = _kb_place(doc.path, root)
    headings = doc.headings
    is_question = _kb_question_headings(headings, toc)
    boundaries = [k for k, h in enumerate(headings) if is_question[k] or h.is_toc]
    # Markdown headings that may turn out to be grouping headings, by their last line
    plain_by_end = {
        h.end - 1: h for k, h in enumerate(headings) if not (h.raw or h.is_toc or is_question[k])
    }
    groups = _Groups()
    questions: list[Question] = []
    if boundaries and is_question[boundaries[0]]:
        first = headings[boundaries[0]].line
        groups.enter_all(_trailing_headings(doc, 0, first, plain_by_end)[1])
    for n, k in enumerate(boundaries):
        heading = headings[k]
        nxt = boundaries[n + 1] if n + 1 < len(boundaries) else None
        stop = headings[nxt].line if nxt is not None else len(doc.lines)
        grouping: list[_Heading] = []
        if nxt is not None and is_question[nxt]:
            stop, grouping = _trailing_headings(doc, heading.body_start, stop, plain_by_end)
        if is_question[k]:
            title = strip_number(heading.text)
            answer = _answer(doc, heading.body_start, stop, inner=())
            if answer is None:
                # a title with nothing under it: a section title, or a question still unanswered
                if title and not _is_numbered(heading.text):
                    groups.enter(heading)
            elif not title:
                doc.diag(heading.line, ERROR, "question heading has no title: no card")
            else:
                tags = (_tag(section), *groups.tags)
                questions.append(
                    _question(doc, heading, title, answer, section=section, deck=deck, tags=tags)
                )
        groups.enter_all(grouping)
    return questions


def _kb_question_headings(headings: list[_Heading], toc: list[TocEntry]) -> list[bool]:
    """Which headings are questions: raw ones with an id, and numbered Markdown headings that a
    TOC entry links to (an entry no raw heading answers, and only once)."""
    toc_keys: dict[str, int] = {}
    for n, entry in enumerate(toc):
        for key in _entry_keys(entry):
            toc_keys.setdefault(key, n)
    claimed = {
        toc_keys[key]
        for h in headings
        if toc_keys and h.raw and not h.is_toc
        for key in _heading_keys(h)
        if key in toc_keys
    }
    flags: list[bool] = []
    for heading in headings:
        if heading.is_toc:
            flags.append(False)
        elif heading.raw:
            flags.append(True)
        else:
            hits: set[int] = set()
            if toc_keys and _is_numbered(heading.text):
                hits = {toc_keys[key] for key in _heading_keys(heading) if key in toc_keys}
                hits -= claimed
            flags.append(bool(hits))
            claimed |= hits
    return flags


def _trailing_headings(
    doc: _Doc, start: int, stop: int, plain_by_end: dict[int, _Heading]
) -> tuple[int, list[_Heading]]:
    """Markdown headings with nothing under them right before the next question.

    Those are grouping headings such as `## 1、Transformer模块`. Returns where the text before
    them ends, and them.
    """
    found: list[_Heading] = []
    j = stop - 1
    while j >= start:
        if not doc.lines[j].strip():
            j -= 1
        elif j in plain_by_end and plain_by_end[j].line >= start:
            found.append(plain_by_end[j])
            j = plain_by_end[j].line - 1
        else:
            break
    return j + 1, found[::-1]


@dataclass
class _Groups:
    """The grouping headings in force, as tags: a heading replaces those of its level or deeper."""

    open: list[tuple[int, str]] = field(default_factory=list)  # (level, tag)

    def enter(self, heading: _Heading) -> None:
        tag = _tag(strip_number(_plain(heading.text)))
        if tag:
            while self.open and self.open[-1][0] >= heading.level:
                self.open.pop()
            self.open.append((heading.level, tag))

    def enter_all(self, headings: list[_Heading]) -> None:
        for heading in headings:
            self.enter(heading)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(tag for _, tag in self.open)


def _kb_place(path: Path, root: Path) -> tuple[str, tuple[str, ...]]:
    """The section (topic folder) and deck (section, …folders, file stem) of a file."""
    root_name = Path(os.path.abspath(root)).name
    try:
        folders = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).parts[:-1]
    except ValueError:
        folders = ()
    section = folders[0] if folders else root_name
    return section, (section, *folders[1:], Path(path).stem)


@dataclass
class _Answer:
    text: str
    line: int  # 0-based
    end: int


def _answer(doc: _Doc, start: int, stop: int, inner: Sequence[_Heading]) -> _Answer | None:
    """Lines [start, stop) without blank lines at either end; None when nothing is left."""
    while start < stop and not doc.lines[start].strip():
        start += 1
    while stop > start and not doc.lines[stop - 1].strip():
        stop -= 1
    if start >= stop:
        return None
    lines = doc.lines[start:stop]
    # raw headings inside an article answer were blanked for the parse: give them back as
    # one-line Markdown headings, which need no blank line after them
    for heading in inner:
        if heading.raw and start <= heading.line < stop:
            lines[heading.line - start] = f"{'#' * heading.level} {heading.text}"
    return _Answer("\n".join(lines), start, stop)


def _question(
    doc: _Doc,
    heading: _Heading,
    title: str,
    answer: _Answer,
    *,
    section: str,
    deck: tuple[str, ...],
    tags: tuple[str, ...],
) -> Question:
    explicit = heading.pinned_id or heading.html_id
    key = normalize_key(explicit, is_id=True) if explicit else ""
    return Question(
        title=title,
        answer=answer.text,
        path=doc.path,
        line=heading.line + 1,
        answer_line=answer.line + 1,
        section=section,
        deck=deck,
        key=key or normalize_key(title),
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        explicit_id=explicit,
        pinned=heading.pinned_id is not None,
        code_blocks=_code_blocks(doc, answer.line, answer.end),
    )


def _code_blocks(doc: _Doc, start: int, stop: int) -> list[CodeBlock]:
    lo, hi = bisect.bisect_left(doc.fence_lines, start), bisect.bisect_left(doc.fence_lines, stop)
    blocks: list[CodeBlock] = []
    by_index: dict[int, CodeBlock] = {}
    for fence in doc.fences[lo:hi]:
        code = fence.code
        if fence.end > stop:  # an unclosed fence: the answer ends it, as it will on the card
            kept = code.split("\n")[:-1][: stop - fence.line - 1]
            code = "".join(line + "\n" for line in kept)
        owner = by_index.get(fence.output_of) if fence.output_of is not None else None
        if owner is not None:
            owner.claimed_output, owner.claimed_output_line = code, fence.line + 1
            continue
        block = CodeBlock(fence.language, code, fence.line + 1)
        by_index[fence.index] = block
        blocks.append(block)
    return blocks


# ---------------------------------------------------------------------------------------------
# Coverage


def coverage(file: SourceFile) -> list[Diagnostic]:
    """Differences between a file's table of contents and its questions, as warnings."""
    if not file.toc:
        return []
    by_key: dict[str, list[int]] = {}
    for n, question in enumerate(file.questions):
        for key in _question_keys(question):
            by_key.setdefault(key, []).append(n)
    # TOC lines that name a section or a grouping heading are not missing questions
    group_keys = {
        _loose(normalize_key(name))
        for q in file.questions
        for name in (q.section, *q.tags)
    } - {""}
    covered: set[int] = set()
    diagnostics: list[Diagnostic] = []
    for entry in file.toc:
        keys = _entry_keys(entry)
        hits = {n for key in keys for n in by_key.get(key, ())}
        if hits:
            covered |= hits
        elif not keys & group_keys:
            message = f"TOC entry without a question: {entry.title}"
            diagnostics.append(Diagnostic(file.path, entry.line, WARNING, message))
    for n, question in enumerate(file.questions):
        if n not in covered:
            message = f"question not in the table of contents: {question.title}"
            diagnostics.append(Diagnostic(file.path, question.line, WARNING, message))
    return sorted(diagnostics, key=lambda d: d.line)


# ---------------------------------------------------------------------------------------------
# Small text helpers


def _plain(text: str) -> str:
    """Heading text without HTML tags or emphasis marks: for section names and tags."""
    return " ".join(_INLINE_MARKS.sub("", _HTML_TAG.sub("", text)).split())


def _section_name(text: str) -> str:
    """A section heading as a deck name: plain text, without the decoration some articles put
    around it (`----【机器学习基础】----`), so it meets the folder of the same name."""
    plain = _plain(text) or text.strip()
    bare = plain.strip("-=*~_#·• ")
    if bare.startswith("【") and bare.endswith("】") and bare.count("【") == 1:
        bare = bare[1:-1].strip()
    return bare or plain


def _tag(name: str) -> str:
    """An Anki tag: no spaces (Anki splits tags at spaces)."""
    return "_".join(_plain(name).split())
