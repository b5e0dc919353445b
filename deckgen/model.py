"""The plain data model every stage passes on: source files → parse → model → render → package.

Nothing here does I/O or knows about Markdown syntax, HTML or Anki; these are the nouns the
stages share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """A problem in the input, reported as `file:line: level: message`."""

    path: Path
    line: int  # 1-based; 0 when the problem concerns the whole file
    level: str  # ERROR or WARNING
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.level}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.level == ERROR


@dataclass(frozen=True)
class MediaFile:
    """A local file an answer shows (an image), shipped inside the package."""

    source: Path  # the file on disk, resolved
    name: str  # its collision-safe name inside the package, as the card's `src` says


@dataclass(frozen=True)
class RemoteImage:
    """An http(s) image an answer shows: packed by the build once downloaded."""

    url: str  # exactly as the card's `src` says it
    line: int  # 1-based line in the source file


@dataclass
class CodeBlock:
    """A fenced code block in an answer: the material of a runnable-code note."""

    language: str  # the fence's info word, lower-cased; "" when the fence names none
    code: str  # the block's text, exactly as fenced (ends with a newline when non-empty)
    line: int  # 1-based line of the opening fence in the source file
    claimed_output: str | None = None  # a fenced block right after, introduced by 输出/Output
    claimed_output_line: int | None = None


@dataclass
class Question:
    """One question of the source: becomes one Q&A note (and a code note per code block)."""

    title: str  # inline Markdown, without the 【一】 marker or the 33. number
    answer: str  # the answer's Markdown, as in the file (raw HTML headings already on own lines)
    path: Path  # the source file
    line: int  # 1-based line of the question's heading
    answer_line: int  # 1-based line of the answer's first line in the file
    section: str  # the top-level section, e.g. "深度学习基础"
    deck: tuple[str, ...]  # deck path below the root: ("深度学习基础",) or (section, file stem)
    key: str  # the stable identity key (see deckgen.ids): from the explicit id or the title
    tags: tuple[str, ...] = ()
    explicit_id: str | None = None  # from <hN id="…"> or <!-- deckgen-id: … -->
    pinned: bool = False  # the id came from a <!-- deckgen-id: … --> marker: never rename-matched
    code_blocks: list[CodeBlock] = field(default_factory=list)
    # the headings that group it, outermost first (a chapter, a company's set): its crumb
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Description:
    """A section's introduction in the source (the prose between its heading and its first
    question): its deck's description in Anki, shown on the deck's overview screen."""

    section: str
    text: str  # Markdown, as in the file
    path: Path
    line: int  # 1-based line of its first line in the file


@dataclass
class Section:
    name: str
    questions: list[Question] = field(default_factory=list)
    # in source order: a section spread over several files has an introduction in each
    descriptions: list[Description] = field(default_factory=list)


@dataclass
class TocEntry:
    """A line of a file's table of contents, for the coverage report."""

    title: str
    anchor: str
    line: int


@dataclass
class SourceFile:
    path: Path
    layout: str  # "article" or "knowledge-base"
    questions: list[Question] = field(default_factory=list)
    toc: list[TocEntry] = field(default_factory=list)
    front_matter: dict[str, str] = field(default_factory=dict)
    descriptions: list[Description] = field(default_factory=list)


@dataclass
class Corpus:
    """Everything parsed from the sources of one build."""

    files: list[SourceFile] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)  # in source order, merged by name
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def questions(self) -> list[Question]:
        return [q for s in self.sections for q in s.questions]
