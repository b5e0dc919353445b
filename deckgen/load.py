"""Source files → parsed, linted and rendered questions: the per-file work of a build.

Until questions get their identities, files are independent of each other, so they are worked
on in parallel (one process per core) and remembered by content: a file whose text, images and
code have not changed since the last build is not parsed or rendered again.
"""
from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import re
import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from deckgen import check, code_fingerprint, datafile, parse
from deckgen.atomic import write_atomic
from deckgen.config import DEFAULT_MAX_IMAGE_MB
from deckgen.model import CodeBlock, Corpus, Diagnostic, MediaFile, Question, SourceFile
from deckgen.quiz import QuizBlock, pick_blocks, without_comments
from deckgen.render import Rendered, Renderer, lexer_for
from deckgen.sanitize import clean
from deckgen.workers import die_with

# Below this much Markdown, starting worker processes costs more than it saves.
PARALLEL_BYTES = 256 * 1024
_CACHE_VERSION = 3  # 2: JSON instead of pickle; 3: code cards (which blocks, their explanations)

Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass
class CodeCard:
    """A code block that becomes a code note, as its card shows it."""

    block: CodeBlock
    front_code: str  # the code without its comments (deckgen.quiz), as text
    front: str  # the same, highlighted
    full: str  # the highlighted code as written, comments and all
    explanation: str  # the article's explanation as sanitized HTML; "" when it has none
    media: list[MediaFile]  # images the explanation shows
    comments: bool  # whether the front left out comments that say something


@dataclass
class RenderedQuestion:
    title: str  # the question as HTML
    answer: Rendered
    code: list[CodeCard]  # the blocks that become code notes
    dropped: dict[str, int]  # the blocks that do not, by reason (deckgen.quiz)


@dataclass
class LoadedFile:
    source: SourceFile | None  # None when the file could not be read
    diagnostics: list[Diagnostic]
    rendered: list[RenderedQuestion]  # one for each of source.questions


def load_file(root: Path, path: Path, renderer: Renderer) -> LoadedFile:
    """Read, lint, parse and render one source file."""
    parsed = parse.load_file(root, path, lint=check.lint_text)
    source = parsed.source
    rendered = []
    for question, tokens in zip(source.questions if source else (), parsed.answer_tokens):
        picked, dropped = pick_blocks(question, tokens)  # before rendering, which takes the tokens
        answer = renderer.answer(question, tokens)
        code = [_code_card(renderer, question, quiz) for quiz in picked]
        title = renderer.title(question)
        answer.diagnostics[:0] = title.diagnostics
        rendered.append(RenderedQuestion(title.html, answer, code, dict(dropped)))
    return LoadedFile(source, parsed.diagnostics, rendered)


def _code_card(renderer: Renderer, question: Question, quiz: QuizBlock) -> CodeCard:
    block = quiz.block
    explanation = Rendered("", [], 0, [], 0)
    if quiz.explanation:
        # Its problems (math, images) are the answer's, reported once from there.
        explanation = renderer.markdown(quiz.explanation, path=question.path,
                                        first_line=question.answer_line + quiz.explanation_line)
    full = renderer.code(block.code, block.language)  # highlighted once, for the answer too
    front, front_code, comments = without_comments(full)
    return CodeCard(block, front_code, front, full, explanation.html.strip(), explanation.media, comments)


def load_sources(
    sources: Sequence[Path],
    cache_dir: Path | None,
    progress: Progress | None = None,
    meanwhile: Callable[[], object] | None = None,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_MB << 20,
) -> tuple[Corpus, list[RenderedQuestion]]:
    """The corpus of `sources` and, in the same order as its questions, their rendered HTML.

    `meanwhile` is work for this process while worker processes render (when they do).
    """
    pairs, diagnostics = parse.discover(sources)
    allowed_roots = image_roots(sources)
    cache = _FileCache(cache_dir, allowed_roots, max_image_bytes)
    keys = [cache.key(root, path) for root, path in pairs]
    loaded: list[LoadedFile | None] = [cache.get(k) for k in keys]
    todo = [i for i, item in enumerate(loaded) if item is None]
    done = len(pairs) - len(todo)
    jobs = [(*pairs[i], keys[i]) for i in todo]
    for index, item in zip(todo, _load_many(jobs, cache, allowed_roots, max_image_bytes, meanwhile)):
        loaded[index] = item
        done += 1
        if progress:
            progress(done, len(pairs))
    files = [item for item in loaded if item is not None]
    corpus = parse.assemble((parse.ParsedFile(f.source, f.diagnostics) for f in files), diagnostics)
    # The corpus lists questions section by section; pair them with their HTML by identity.
    html = {id(q): r for f in files if f.source for q, r in zip(f.source.questions, f.rendered)}
    return corpus, [html[id(q)] for q in corpus.questions]


def image_roots(sources: Sequence[Path]) -> tuple[Path, ...]:
    """The folders a card's images may come from: the source folders, a file's own folder."""
    return tuple(p if p.is_dir() else p.parent for p in sources)


def render_descriptions(corpus: Corpus, sources: Sequence[Path]) -> dict[str, Rendered]:
    """Each section's description (its introductions, in source order) as sanitized card HTML,
    made the way answers are. A few short texts: rendered here, not in the workers."""
    renderer = Renderer(image_roots(sources))
    described = {}
    for section in corpus.sections:
        parts = [renderer.description(d) for d in section.descriptions]
        if parts:
            described[section.name] = Rendered(
                html="\n".join(p.html for p in parts),
                media=[m for p in parts for m in p.media],
                remote_images=sum(p.remote_images for p in parts),
                diagnostics=[d for p in parts for d in p.diagnostics],
                math=sum(p.math for p in parts),
            )
    return described


_Job = tuple[Path, Path, "str | None"]  # (root, file, cache key)


def _load_many(jobs: list[_Job], cache: _FileCache, allowed_roots: tuple[Path, ...],  # noqa: ANN202
               max_image_bytes: int, meanwhile: Callable[[], object] | None):
    """LoadedFile of each job, in order, each remembered in the cache by whoever made it."""
    size = sum(_size(path) for _, path, _ in jobs)
    if size < PARALLEL_BYTES or (os.cpu_count() or 1) < 2 or sys.platform != "linux":
        renderer = Renderer(allowed_roots, max_image_bytes)
        for job in jobs:
            yield _load_and_remember(job, renderer, cache)
        return
    # fork: the workers start with everything imported; the build has no threads yet. The
    # lexers nearly every corpus needs are made first, once, for both workers to inherit.
    for language in ("python", "bash"):
        lexer_for(language)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(os.cpu_count(), mp_context=context, initializer=_start_worker,
                             initargs=(allowed_roots, max_image_bytes, cache, os.getpid())) as pool:
        # largest files first, one at a time: both workers stay busy to the end
        order = sorted(range(len(jobs)), key=lambda i: -_size(jobs[i][1]))
        futures = {i: pool.submit(_work, jobs[i]) for i in order}
        if meanwhile:
            meanwhile()
        for i in range(len(jobs)):
            yield futures[i].result()


def _load_and_remember(job: _Job, renderer: Renderer, cache: _FileCache) -> LoadedFile:
    root, path, key = job
    item = load_file(root, path, renderer)
    cache.put(key, item)
    return item


_worker: tuple[Renderer, _FileCache] | None = None


def _start_worker(allowed_roots: tuple[Path, ...], max_image_bytes: int, cache: _FileCache,
                  build: int) -> None:
    global _worker
    die_with(build)
    # A worker lives for one build and its rendering makes no garbage cycles worth collecting
    # (measured: the same peak memory at 4× the knowledge base): spare it the collector.
    gc.freeze()
    gc.disable()
    _worker = (Renderer(allowed_roots, max_image_bytes), cache)


def _work(job: _Job) -> LoadedFile:
    assert _worker is not None
    return _load_and_remember(job, *_worker)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _FileCache:
    """LoadedFile results on disk, keyed by everything that goes into them."""

    def __init__(self, folder: Path | None, allowed_roots: tuple[Path, ...],
                 max_image_bytes: int = DEFAULT_MAX_IMAGE_MB << 20) -> None:
        self.folder = folder / "files" if folder else None
        self.salt = repr((_CACHE_VERSION, code_fingerprint(), sys.version, allowed_roots, max_image_bytes, [
            version(p) for p in ("markdown-it-py", "mdit-py-plugins", "pygments", "nh3")]))
        self._folder_stats: dict[Path, str] = {}

    def key(self, root: Path, path: Path) -> str | None:
        if self.folder is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        digest = hashlib.sha256(self.salt.encode())
        digest.update(f"{root}\0{path}\0".encode())
        digest.update(data)
        # Images live beside the Markdown: one added, removed or replaced changes the cards.
        digest.update(self._stats(path.parent).encode())
        return digest.hexdigest()

    def _stats(self, folder: Path) -> str:
        if folder not in self._folder_stats:
            entries = []
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "build")
                for name in sorted(filenames):
                    if name.lower().endswith(".md"):
                        continue
                    try:
                        stat = os.stat(os.path.join(dirpath, name))
                    except OSError:
                        continue
                    entries.append(f"{dirpath}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
            self._folder_stats[folder] = "\n".join(entries)
        return self._folder_stats[folder]

    def get(self, key: str | None) -> LoadedFile | None:
        """The remembered result, or None when missing, unreadable or not what we write."""
        if key is None or self.folder is None:
            return None
        try:
            data = json.loads((self.folder / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None
        # Data, never code: read back as the declared types only, and the HTML only if it is
        # what our own sanitizer and highlighter write (anyone who can write the folder could
        # have put a <script> in it).
        try:
            if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
                return None
            item = datafile.load(LoadedFile, data.get("item"))
        except datafile.DataError:
            return None
        return item if all(map(_is_our_html, item.rendered)) else None

    def put(self, key: str | None, item: LoadedFile) -> None:
        if key is None or self.folder is None:
            return
        try:
            text = json.dumps({"version": _CACHE_VERSION, "item": datafile.dump(item)},
                              ensure_ascii=False)
            write_atomic(self.folder / f"{key}.json", text)
        except (OSError, datafile.DataError):
            pass  # a cache that cannot be written only costs time


# Highlighted code as Renderer._code_html writes it: escaped text in spans with Pygments' classes.
_CODE_HTML = re.compile(r'<pre class="highlight"(?: data-lang="[^"<>]*")?><code>'
                        r'(?:[^<]|<span(?: class="[\w -]*")?>|</span>)*</code></pre>')
_CODE_START = '<pre class="highlight"'


def _is_our_html(rendered: RenderedQuestion) -> bool:
    """Whether a cached question's HTML is what rendering it gives: sanitized (cleaning it
    again changes nothing) around highlighted code of exactly the highlighter's shape."""
    if not all(_CODE_HTML.fullmatch(card.front) and _CODE_HTML.fullmatch(card.full)
               for card in rendered.code):
        return False
    for html in (rendered.title, rendered.answer.html, *(card.explanation for card in rendered.code)):
        rest = html
        if _CODE_START in html:
            pieces = re.split(r'(<pre class="highlight"[^>]*>.*?</pre>)', html, flags=re.DOTALL)
            if not all(_CODE_HTML.fullmatch(p) for p in pieces[1::2]):
                return False
            rest = "\ue000".join(pieces[::2])
        if clean(rest) != rest:
            return False
    return True
