"""The allow-list that card HTML passes through before it reaches Anki (issue 7, security).

A shared deck runs on other people's phones and desktops, where a card's HTML is live: a
`<script>`, an `onerror=` or a `javascript:` link in a source file would run there. nh3 (the
maintained Rust sanitizer ammonia) enforces the list and guarantees balanced output;
`removals` tells the author what it takes out, since nh3 itself reports nothing.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

from deckgen.outline import MAX_PARTS, PART_ID

# What MathJax text, Pygments markup, Markdown output and the sources' raw HTML need.
# b/i are the tags Anki's own editor writes for bold/italic, as harmless as strong/em.
TAGS = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "font",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
        "pre", "s", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td",
        "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
# Removed together with their content: what they hold is code or fallback, never card text.
CONTENT_TAGS = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "applet", "noscript", "template",
        "textarea", "select", "frame", "frameset", "noembed", "noframes", "xmp", "svg", "math",
    }
)  # fmt: skip
ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "width", "height", "title", "align"}),
    "font": frozenset({"color", "size", "face"}),
    "div": frozenset({"class", "style", "align"}),
    "span": frozenset({"class", "style"}),
    "p": frozenset({"style", "align"}),
    "pre": frozenset({"class", "data-lang"}),
    "code": frozenset({"class"}),
    "ol": frozenset({"start"}),
    "td": frozenset({"style", "align", "colspan", "rowspan"}),
    "th": frozenset({"style", "align", "colspan", "rowspan"}),
    "details": frozenset({"open"}),
}
# Removed without a word: they neither show nor run anything (`<a id="anchor">`, `target=`),
# and a warning for each would bury the ones that matter.
INERT_ATTRIBUTES = frozenset({"id", "name", "class", "target", "rel", "lang", "dir", "title", "role"})
URL_ATTRIBUTES = frozenset({"href", "src"})
URL_SCHEMES = frozenset({"http", "https", "mailto"})  # plus relative URLs: packed media names
# Styles that colour or align text (markdown-it writes text-align on table cells); nothing that
# positions, sizes or loads, so a card cannot overlay Anki's own buttons.
STYLE_PROPERTIES = frozenset(
    {"color", "background-color", "text-align", "font-weight", "font-style", "text-decoration"}
)

# The ids a long answer's outline links to (deckgen.outline), and no other: an author's id could
# clash with those of Anki's own page (`#answer`).
PART_IDS = frozenset(PART_ID.format(n) for n in range(1, MAX_PARTS + 1))
_PART_ID_VALUES = {tag: {"id": set(PART_IDS)} for tag in ("h1", "h2", "h3", "h4", "h5", "h6", "li")}

_CLEANER = nh3.Cleaner(
    tags=set(TAGS),
    clean_content_tags=set(CONTENT_TAGS),
    # "*": none, or ammonia would add its default lang/title on every tag.
    attributes={"*": set(), **{tag: set(names) for tag, names in ATTRIBUTES.items()}},
    tag_attribute_values=_PART_ID_VALUES,
    url_schemes=set(URL_SCHEMES),
    filter_style_properties=set(STYLE_PROPERTIES),
    strip_comments=True,
)

_VOID_TAGS = frozenset({"embed", "frame"})  # the content tags that never have an end tag

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
# Browsers ignore these inside a scheme ("java\tscript:"), so a check must too.
_URL_NOISE = re.compile(r"[\x00-\x20]")


def clean(html: str) -> str:
    """The HTML with everything outside the allow-list removed, tags balanced."""
    return _CLEANER.clean(html)


def sanitize(html: str) -> tuple[str, list[str]]:
    """The clean HTML and a description of each thing removed ("<script>", "onerror attribute")."""
    return clean(html), removals(html)


def removals(html: str) -> list[str]:
    """What `clean` removes from this HTML, described for a warning, in order, each once.

    Works on fragments too (a lone `<font color=red>` opening tag), so a renderer can ask
    about one raw-HTML token and report the source line it came from.
    """
    if "<" not in html:
        return []
    scanner = _RemovalScanner()
    scanner.feed(html)
    scanner.close()
    return list(dict.fromkeys(scanner.found))


def url_problem(url: str) -> str | None:
    """Why a link or image URL is refused ("javascript: URL"), or None when it is allowed."""
    match = _SCHEME.match(_URL_NOISE.sub("", url))
    if match is None or match.group(1).lower() in URL_SCHEMES:
        return None
    return f"{match.group(1).lower()}: URL"


def style_problems(style: str) -> list[str]:
    """The declarations of a style attribute that `clean` drops, described."""
    problems = []
    for declaration in style.split(";"):
        name = declaration.partition(":")[0].strip().lower()
        if name and name not in STYLE_PROPERTIES:
            problems.append(f"style property '{name}'")
    return problems


class _RemovalScanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._removed_with_content: list[str] = []  # open <svg>, <iframe>…: their insides go too

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._removed_with_content:
            if tag == self._removed_with_content[-1]:
                self._removed_with_content.append(tag)
            return
        if tag not in TAGS:
            self.found.append(f"<{tag}>")
            if tag in CONTENT_TAGS and tag not in _VOID_TAGS:
                self._removed_with_content.append(tag)
            return
        allowed = ATTRIBUTES.get(tag, frozenset())
        for name, value in attrs:
            if name not in allowed:
                if name not in INERT_ATTRIBUTES and not name.startswith(("aria-", "data-")):
                    self.found.append(f"{name} attribute")
            elif name in URL_ATTRIBUTES and value is not None:
                problem = url_problem(value)
                if problem:
                    self.found.append(problem)
            elif name == "style" and value:
                self.found.extend(style_problems(value))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self._removed_with_content and tag == self._removed_with_content[-1]:
            self._removed_with_content.pop()  # <svg/>: nothing inside

    def handle_endtag(self, tag: str) -> None:
        if self._removed_with_content and tag == self._removed_with_content[-1]:
            self._removed_with_content.pop()
