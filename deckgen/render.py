"""Answer Markdown → the HTML a card shows: MathJax-ready math, highlighted code, packed images.

Anki runs MathJax on `\\(…\\)` and `\\[…\\]` in text nodes, so math is emitted as TeX between those
delimiters, escaped only as HTML requires. Code is highlighted by Pygments with CSS classes
(`code_css()`), images referenced by the sources are packed as media, and everything passes
the allow-list of `deckgen.sanitize` last.

Classes the card CSS can style: `pre.highlight` (code, `data-lang` names the language),
`div.table-wrap` (around each table, for horizontal scrolling on a phone), `code.words` (long
inline code, each word in a `span.tok`), `span.math` /
`div.math` (`.display` for display math), `span.image-missing` (an image that could not be packed).
"""
from __future__ import annotations

import functools
import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from deckgen.markdown import fence_language, make_markdown
from deckgen.config import DEFAULT_MAX_IMAGE_MB
from deckgen.media import MediaRefused, local_image
from deckgen.outline import add_outline
from deckgen.model import WARNING, Description, Diagnostic, MediaFile, Question, RemoteImage
from deckgen.sanitize import TAGS, UNWRAPPED_TAGS, clean, removals, sanitize_tex, tex_problems, url_problem

LIGHT_STYLE = "default"
NIGHT_STYLE = "github-dark"
NIGHT_SELECTORS = (".nightMode .highlight", ".night_mode .highlight")

# Fence words asking for plain text on purpose: shown as written, without a warning.
PLAIN_LANGUAGES = frozenset(
    {"", "text", "plaintext", "plain", "txt", "output", "log", "none", "nohighlight"}
)
# Fence words Pygments knows under another name.
LANGUAGE_ALIASES = {"cmd": "batch", "shell": "bash", "py3": "python", "ipython": "python"}


@functools.lru_cache(maxsize=None)
def lexer_for(language: str) -> Lexer | None:
    """The Pygments lexer for a fence's language; None for plain text and for a language
    Pygments does not know (shown as plain text too)."""
    if language in PLAIN_LANGUAGES:
        return None
    try:
        return get_lexer_by_name(LANGUAGE_ALIASES.get(language, language))
    except ClassNotFound:
        return None


def is_known_language(language: str) -> bool:
    return language in PLAIN_LANGUAGES or lexer_for(language) is not None


_RAW_HEADING = re.compile(r"^\s*<(h[1-6])\b[^>]*>(.*?)</\1\s*>\s*$", re.IGNORECASE | re.DOTALL)
_IMG_TAG = re.compile(r"""<img\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_ATTRIBUTE = r"""(?:^|\s){name}\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)"""
_SRC = re.compile(_ATTRIBUTE.format(name="src"), re.IGNORECASE)
_ALT = re.compile(_ATTRIBUTE.format(name="alt"), re.IGNORECASE)
# `![alt](imgs/a b.png)`: a destination with spaces, which CommonMark reads as text but GitHub
# and the editors the sources are written in show as an image (an optional "title" last).
# Bounded, so a long line of `![a](…` without an end stays linear.
_SPACED_IMAGE = re.compile(
    r"""!\[([^\]\n]{0,1000})\]\([ \t]*([^()<>"'\n]{0,1000}?[^()<>"'\s])"""
    r"""(?:[ \t]+("[^"\n]{0,1000}"|'[^'\n]{0,1000}'))?[ \t]*\)"""
)
_REFUSED = "\0"  # starts what _media_name gives for an image it refuses (no file name can)
_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\-]+")
_TAG_START = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?=[\s/>]|$)")
_ENV_KEY = "deckgen"
_PLACEHOLDER = re.compile("\ue000([0-9a-f]+):([0-9]+)\ue001")

Tokens = Sequence[Token]
Env = dict[str, Any]  # markdown-it's env: carries the _Job of the rendering under _ENV_KEY


__all__ = ["MediaFile", "Rendered", "Renderer", "code_css"]


@dataclass
class Rendered:
    html: str
    media: list[MediaFile]  # named "<stem>-<sha256[:10]><ext>": one entry per content
    remote_images: int  # remote images not packed: the card loads them from the web
    diagnostics: list[Diagnostic]
    math: int = 0  # math spans and blocks rendered
    remote: list[RemoteImage] = field(default_factory=list)  # for the build to download and pack


@dataclass
class _Job:
    """The state of one rendering, reachable from markdown-it's render rules through `env`."""

    path: Path
    first_line: int
    base_dir: Path
    roots: tuple[Path, ...]
    pack_media: bool = True  # titles cannot ship files: their local images become alt text
    unpacked_image: str = ""  # with pack_media off, the warning a local image gets (none if "")
    media: dict[str, MediaFile] = field(default_factory=dict)
    remote_images: int = 0
    remote: list[RemoteImage] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    math: int = 0
    code: list[str] = field(default_factory=list)  # highlighted blocks, set aside from sanitizing

    def warn(self, offset: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.path, self.first_line + offset, WARNING, message))


def _job(env: Env) -> _Job:
    return env[_ENV_KEY]


class Renderer:
    """Renders Markdown of one build; reuses one parser, lexers and media hashes throughout."""

    def __init__(self, allowed_roots: Sequence[Path] = (),
                 max_image_bytes: int = DEFAULT_MAX_IMAGE_MB << 20) -> None:
        # Images may come only from these folders; with none given, from the rendered file's own.
        self._roots = tuple(Path(root).resolve() for root in allowed_roots)
        self._max_image_bytes = max_image_bytes
        self._formatter = HtmlFormatter(nowrap=True)
        self._code_cache: dict[tuple[str, str], str] = {}
        self._media_names: dict[Path, str] = {}
        self._folders: dict[Path, Path] = {}
        self._md = self._make_markdown()
        # The core rules that follow the block parse (inline parsing and its clean-ups).
        core = self._md.core.ruler
        self._after_block = [r.fn for r in core.__rules__ if r.enabled and r.name not in ("normalize", "block")]
        self._nonce = secrets.token_hex(8)

    # -- public API --------------------------------------------------------------------------

    def answer(self, question: Question, block_tokens: list[Token] | None = None) -> Rendered:
        """The answer's HTML; diagnostics carry lines counted from `question.answer_line`.

        `block_tokens`, when given, are the answer's block tokens as `parse` already made them
        (lines counted from the answer's first line): only the inline parse remains to do.
        """
        if block_tokens is None:
            # ended as within its file, so that both ways give the same blocks
            text = question.answer + "\n"
            rendered = self.markdown(text, path=question.path, first_line=question.answer_line)
        else:
            job = self._new_job(question.path, question.answer_line, None)
            state = StateCore(question.answer, self._md, {_ENV_KEY: job}, block_tokens)
            for rule in self._after_block:
                rule(state)
            rendered = self._rendered(block_tokens, job)
        rendered.html = add_outline(rendered.html)  # a long answer opens with its outline
        return rendered

    def title(self, question: Question) -> Rendered:
        """The title as sanitized inline HTML (math, code, emphasis); what the sanitizer
        removed is reported at the heading's line."""
        job = self._new_job(question.path, question.line, None)
        job.pack_media = False
        tokens = self._md.parseInline(question.title, {_ENV_KEY: job})
        return Rendered(clean(self._render(tokens, job)).strip(), [], 0, job.diagnostics, job.math)

    def description(self, description: Description) -> Rendered:
        """A section's description as sanitized HTML for its deck's overview screen. Anki imports
        only the media that notes use, so a local image shows as its alt text, with a warning."""
        job = self._new_job(description.path, description.line, None)
        job.pack_media = False
        job.unpacked_image = "image not shown: a deck description cannot carry image files"
        return self._rendered(self._md.parse(description.text + "\n", {_ENV_KEY: job}), job)

    def markdown(
        self, text: str, *, path: Path, first_line: int, base_dir: Path | None = None
    ) -> Rendered:
        """Markdown whose first line is line `first_line` of `path`, as sanitized card HTML."""
        job = self._new_job(path, first_line, base_dir)
        return self._rendered(self._md.parse(text, {_ENV_KEY: job}), job)

    def _rendered(self, tokens: list[Token], job: _Job) -> Rendered:
        return Rendered(
            html=self._put_back_code(clean(self._render(tokens, job)), job),
            media=list(job.media.values()),
            remote_images=job.remote_images,
            diagnostics=job.diagnostics,
            math=job.math,
            remote=job.remote,
        )

    def code(self, code: str, language: str) -> str:
        """A highlighted `<pre>` for the code note type; an unknown language is plain text."""
        return self._code_html(code, fence_language(language))  # ours: nothing to sanitize

    # -- setup -------------------------------------------------------------------------------

    def _make_markdown(self) -> MarkdownIt:
        md = make_markdown()
        # An answer has no front matter: a leading `---` rule must stay a rule.
        md.disable("front_matter")
        rules = {
            "fence": self._fence,
            "code_block": self._code_block,
            "image": self._image,
            "link_open": self._link_open,
            "html_block": self._html_block,
            "html_inline": self._html_inline,
            "code_inline": _code_inline,
            "table_open": _table_open,
            "table_close": _table_close,
            "math_inline": self._math_inline,
            "math_inline_double": self._math_display_inline,
            "math_block": self._math_block,
            "math_block_label": self._math_block,
            "math_block_eqno": self._math_block,
            "text": self._text,
        }
        for name, method in rules.items():
            md.add_render_rule(name, _as_rule(method))
        md.inline.ruler.after("image", "image_spaced", _spaced_image)
        return md

    def _new_job(self, path: Path, first_line: int, base_dir: Path | None) -> _Job:
        base = self._resolved(Path(base_dir if base_dir is not None else Path(path).parent))
        return _Job(path=path, first_line=first_line, base_dir=base, roots=self._roots or (base,))

    def _resolved(self, folder: Path) -> Path:
        """A file's folder, resolved once for all its answers (resolving asks the file system)."""
        if folder not in self._folders:
            self._folders[folder] = folder.resolve()
        return self._folders[folder]

    def _render(self, tokens: list[Token], job: _Job) -> str:
        _number_lines(tokens)
        return self._md.renderer.render(tokens, self._md.options, {_ENV_KEY: job})

    # -- math --------------------------------------------------------------------------------

    def _math_inline(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        return f'<span class="math">\\({self._safe_tex(tokens[idx], env)}\\)</span>'

    def _math_display_inline(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        # `$$…$$` inside a paragraph: display math, but a <div> would break the <p> apart.
        return f'<span class="math display">\\[{self._safe_tex(tokens[idx], env)}\\]</span>'

    def _math_block(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        token = tokens[idx]
        tex = self._safe_tex(token, env)
        if token.type in ("math_block_label", "math_block_eqno"):
            # `$$ … $$ (1)`: an equation label, typeset as MathJax's own tag. (texmath's
            # plain `\[…\]` block repeats its TeX in `info`, so the type decides.)
            tex = f"{tex} \\tag{{{escapeHtml(token.info)}}}"
        return f'<div class="math display">\\[{tex}\\]</div>\n'

    def _safe_tex(self, token: Token, env: Env) -> str:
        """The token's TeX without what could act in a card (reported), ready for HTML."""
        job = _job(env)
        job.math += 1
        tex, problems = sanitize_tex(token.content)
        for problem in problems:
            job.warn(_line(token), f"TeX removed: {problem}")
        return _tex(tex)

    def _text(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        # Prose can hold math too: `\\(…\\)` written out is typeset by Anki all the same.
        # `clean` neutralises it; the author hears of it here, at its line.
        token = tokens[idx]
        if "\\" in token.content:
            for problem in tex_problems(token.content):
                _job(env).warn(_line(token), f"TeX removed: {problem}")
        return escapeHtml(token.content)

    # -- code --------------------------------------------------------------------------------

    def _fence(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        token = tokens[idx]
        language = fence_language(token.info)  # an unknown one is plain text; `check` reports it
        return self._set_aside(self._code_html(token.content, language), _job(env)) + "\n"

    def _code_block(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        return self._set_aside(self._code_html(tokens[idx].content, ""), _job(env)) + "\n"

    def _set_aside(self, code_html: str, job: _Job) -> str:
        """A placeholder for highlighted code, put back after sanitizing.

        Pygments' markup is ours (every token escaped) and is most of an answer's HTML: the
        sanitizer need not read it. The placeholder is made of private-use characters and a
        per-renderer nonce, so no source text can spell it.
        """
        job.code.append(code_html)
        return f"\ue000{self._nonce}:{len(job.code) - 1}\ue001"

    def _put_back_code(self, html: str, job: _Job) -> str:
        if not job.code:
            return html
        return _PLACEHOLDER.sub(
            lambda m: job.code[int(m.group(2))] if m.group(1) == self._nonce else m.group(0), html
        )

    def _code_html(self, code: str, language: str) -> str:
        # Lexing is most of the rendering time, and a build renders every block twice (in
        # its answer and as a code note): highlight each once.
        key = (language, code)
        if key not in self._code_cache:
            lexer = lexer_for(language)
            body = escapeHtml(code) if lexer is None else highlight(code, lexer, self._formatter)
            label = f' data-lang="{escapeHtml(language)}"' if language else ""
            self._code_cache[key] = f'<pre class="highlight"{label}><code>{body}</code></pre>'
        return self._code_cache[key]

    # -- images, links, raw HTML -------------------------------------------------------------

    def _image(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        token = tokens[idx]
        alt = renderer.renderInlineAsText(token.children or [], options, env)
        src = self._image_source(str(token.attrGet("src") or ""), _job(env), _line(token))
        if src is None:
            return _missing_image(alt, unquote(str(token.attrGet("src") or "")))
        token.attrSet("src", src)
        token.attrSet("alt", alt)
        return renderer.renderToken(tokens, idx, options, env)

    def _link_open(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        token = tokens[idx]
        problem = url_problem(str(token.attrGet("href") or ""))
        if problem:
            _job(env).warn(_line(token), f"HTML removed: {problem}")
            token.attrs.pop("href", None)
        return renderer.renderToken(tokens, idx, options, env)

    def _html_block(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        token = tokens[idx]
        job = _job(env)
        heading = _RAW_HEADING.match(token.content)
        if heading:
            # A raw <hN id=…> heading: its text is Markdown (math, code) like any other line;
            # the id would only collide with ids of Anki's own page.
            tag, inner = heading.group(1).lower(), heading.group(2)
            inline = self._md.parseInline(inner, env)
            for inline_token in inline:
                inline_token.map = token.map
            _number_lines(inline)
            body = self._md.renderer.render(inline, options, env)
            return f"<{tag}>{body}</{tag}>\n"
        return self._raw_html(token.content, job, _line(token))

    def _html_inline(self, renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        token = tokens[idx]
        return self._raw_html(token.content, _job(env), _line(token))

    def _raw_html(self, content: str, job: _Job, line: int) -> str:
        content = _tags_as_text(content, job, line)
        if "<img" in content.lower():
            # Images first: one refused or missing is replaced whole, so is not reported twice.
            content = _IMG_TAG.sub(lambda match: self._raw_image(match.group(0), job, line), content)
        for removed in removals(content):
            job.warn(line, f"HTML removed: {removed}")
        for problem in tex_problems(html.unescape(content)):
            job.warn(line, f"TeX removed: {problem}")
        return content

    def _raw_image(self, tag: str, job: _Job, line: int) -> str:
        src_match = _SRC.search(tag)
        if src_match is None:
            return tag
        raw_src = html.unescape(src_match.group(1).strip("\"'"))
        src = self._image_source(raw_src, job, line)
        if src is None:
            alt_match = _ALT.search(tag)
            alt = html.unescape(alt_match.group(1).strip("\"'")) if alt_match else ""
            return _missing_image(alt, raw_src)
        start, end = src_match.span(1)
        return f'{tag[:start]}"{escapeHtml(src)}"{tag[end:]}'

    def _image_source(self, src: str, job: _Job, line: int) -> str | None:
        """The src a card uses for this image, or None (and a warning) when it cannot show."""
        src = src.strip()
        try:
            parts = urlsplit(src)
        except ValueError:  # "http://[x": not even a URL
            job.warn(line, f"image refused: malformed URL {_shorten(src)}")
            return None
        scheme = parts.scheme.lower()
        if scheme in ("http", "https") or (not scheme and parts.netloc):
            url = src if scheme else f"https:{src}"
            job.remote_images += 1
            if job.pack_media:
                job.remote.append(RemoteImage(url, job.first_line + line))
            return url
        if len(scheme) > 1:
            job.warn(line, f"image refused: {scheme}: URL")
            return None
        relative = unquote(parts.path) if not scheme else src
        if not relative:
            job.warn(line, "image without a source removed")
            return None
        if scheme or relative.startswith(("/", "\\")):  # "C:\x.png" parses as scheme "c"
            job.warn(line, f"image refused: absolute path {_shorten(relative)}")
            return None
        try:
            return self._pack(relative, job, line)
        except (OSError, ValueError) as error:  # a NUL byte, a name too long, no permission
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            job.warn(line, f"image unreadable: {_shorten(relative)} ({reason})")
            return None

    def _pack(self, relative: str, job: _Job, line: int) -> str | None:
        file = (job.base_dir / relative).resolve()
        if not any(file.is_relative_to(root) for root in job.roots):
            job.warn(line, f"image refused: {_shorten(relative)} is outside the source folders")
            return None
        if not job.pack_media:
            if job.unpacked_image:
                job.warn(line, f"{job.unpacked_image}: {_shorten(relative)}")
            return None
        if not file.is_file():
            job.warn(line, f"image not found: {_shorten(relative)}")
            return None
        name = self._media_name(file)
        if name.startswith(_REFUSED):
            job.warn(line, f"image refused: {_shorten(relative)}: {name.removeprefix(_REFUSED)}")
            return None
        job.media.setdefault(name, MediaFile(file, name))
        return name

    def _media_name(self, file: Path) -> str:
        """The packed name of a local image, or _REFUSED and why; each file is read once."""
        if file not in self._media_names:
            try:
                self._media_names[file] = local_image(file, self._max_image_bytes)
            except MediaRefused as refused:
                self._media_names[file] = f"{_REFUSED}{refused}"
        return self._media_names[file]


def code_css() -> str:
    """Pygments token colours: light under `.highlight`, night under Anki's two night classes.

    Backgrounds and plain text colour are left to the card's stylesheet, which follows night
    mode (github-dark's plain text is the card's night text colour). The
    night rules are more specific than the light ones, so they win in any order; a reset first
    keeps light-only token styles (backgrounds, borders) from leaking into night mode.
    """
    light = HtmlFormatter(style=LIGHT_STYLE)
    night = HtmlFormatter(style=NIGHT_STYLE)
    night_spans = ", ".join(f"{selector} span" for selector in NIGHT_SELECTORS)
    lines = [
        "/* Pygments, light */",
        *light.get_token_style_defs(".highlight"),
        # A token the lexer could not place (a full-width comma in code) is no error to a reader.
        ".highlight .err { border: none }",
        "/* Pygments, night */",
        f"{night_spans} {{ color: inherit; background: none; border: none;"
        " font-weight: inherit; font-style: inherit }",
        *night.get_token_style_defs(list(NIGHT_SELECTORS)),
    ]
    return "\n".join(lines) + "\n"


def _as_rule(method: Any) -> Any:
    """A render rule markdown-it can bind to its renderer (it calls `__get__` on the function)."""

    def rule(renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
        return method(renderer, tokens, idx, options, env)

    return rule


def _spaced_image(state: StateInline, silent: bool) -> bool:
    """`![alt](imgs/a b.png)`, which the image rule (tried first) refused for its spaces."""
    if not state.src.startswith("![", state.pos):
        return False
    match = _SPACED_IMAGE.match(state.src, state.pos)
    if match is None or not re.search(r"\s", match.group(2)):
        return False
    if not silent:
        label, destination, title = match.groups()
        token = state.push("image", "img", 0)
        token.attrs = {"src": state.md.normalizeLink(destination), "alt": ""}
        token.children = []
        token.content = label
        state.md.inline.parse(label, state.md, state.env, token.children)
        if title:
            token.attrSet("title", title[1:-1])
    state.pos = match.end()
    return True


# Inline code up to this long stays one unbroken piece on a line (card.css); longer code may
# wrap, but only at its spaces: each of its words is marked so the card can keep it whole.
INLINE_CODE_PIECE = 24
_SPACES = re.compile(r"(\s+)")


def _code_inline(renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
    content = tokens[idx].content
    if len(content) <= INLINE_CODE_PIECE:
        return f"<code>{escapeHtml(content)}</code>"
    words = "".join(
        escapeHtml(piece) if not piece or piece.isspace() else f'<span class="tok">{escapeHtml(piece)}</span>'
        for piece in _SPACES.split(content)
    )
    return f'<code class="words">{words}</code>'


def _table_open(renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
    return '<div class="table-wrap">' + renderer.renderToken(tokens, idx, options, env)


def _table_close(renderer: Any, tokens: Tokens, idx: int, options: Any, env: Env) -> str:
    return renderer.renderToken(tokens, idx, options, env) + "</div>\n"


def _tex(content: str) -> str:
    """TeX ready to sit between MathJax delimiters in HTML text."""
    tex = _unwrap_delimiters(content)
    if tex.endswith("\\"):
        # Not stripped, and never glued to the closing delimiter: `x\ ` + `\]` must not
        # become `x\\]`, which MathJax reads as a line break and then finds no end.
        tex += " "
    return escapeHtml(tex)


def _unwrap_delimiters(tex: str) -> str:
    """`$\\( d_k \\)$` → ` d_k `: the sources double some delimiters, which MathJax rejects."""
    inner = tex.strip()
    for opening, closing in (("\\(", "\\)"), ("\\[", "\\]")):
        if inner.startswith(opening) and inner.endswith(closing) and len(inner) >= 4:
            body = inner[2:-2]
            if opening not in body and closing not in body:
                return body
    return tex


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tags_as_text(content: str, job: _Job, line: int) -> str:
    """Raw HTML with every tag a card cannot use shown as text: prose that mentions `<style>` or
    `<reasoning_process>` keeps the tag and all that follows (the sanitizer would remove a
    `<style>` with everything after it). Tags the sanitizer unwraps stay tags, for it to remove."""
    shown: list[str] = []

    def as_text(match: re.Match[str]) -> str:
        name = match.group(2).lower()
        if name in TAGS or name in UNWRAPPED_TAGS:
            return match.group(0)
        shown.append(name)
        return "&lt;" + match.group(0)[1:]

    content = _TAG_START.sub(as_text, content) if "<" in content else content
    for name in dict.fromkeys(shown):
        message = f"HTML shown as text: <{name}>"
        # an opening and a closing tag, or a tag named twice on a line: one warning
        if not any(d.message == message and d.line == job.first_line + line for d in job.diagnostics):
            job.warn(line, message)
    return content


def _missing_image(alt: str, src: str) -> str:
    return f'<span class="image-missing">{escapeHtml(alt or src)}</span>'


def _line(token: Token) -> int:
    """The 0-based line of a token within the rendered text (see `_number_lines`)."""
    if token.map:
        return token.map[0]
    return int(token.meta.get("line", 0))


def _number_lines(tokens: list[Token]) -> None:
    """Give each inline token the line it starts on, for diagnostics (only blocks have `.map`)."""
    for token in tokens:
        if not token.children:
            continue
        line = token.map[0] if token.map else 0
        for child in token.children:
            child.meta["line"] = line
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type in ("html_inline", "math_inline", "math_inline_double"):
                line += child.content.count("\n")
