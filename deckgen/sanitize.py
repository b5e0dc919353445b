r"""The allow-list that card HTML passes through before it reaches Anki (issues 7 and 14, security).

A shared deck runs on other people's phones and desktops, where a card's HTML is live: a
`<script>`, an `onerror=` or a `javascript:` link in a source file would run there. nh3 (the
maintained Rust sanitizer ammonia) enforces the list and guarantees balanced output;
`removals` tells the author what it takes out, since nh3 itself reports nothing.

The TeX in a card is live too: Anki typesets every `\(…\)` and `\[…\]` in a card's text with
MathJax 3's full TeX input and without its `ui/safe` filter, so TeX can make links (`\href`),
styles (`\style`, `\bbox`, `\unicode` fonts), classes, ids and attributes (`\mmlToken`), or load
extensions (`\require`). `sanitize_tex` takes those out of one formula; `clean`, and
`neutralize_tex` for text fields, out of every formula of a card.
"""
from __future__ import annotations

import html as html_module
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
# HTML elements outside the allow-list whose content is plain card text: the tag is removed (and
# reported), what it holds stays. Any other tag outside TAGS (a content tag like `<style>`, or a
# name that is no HTML, like `<reasoning_process>`) is prose that mentions a tag: the renderer
# shows it as text.
UNWRAPPED_TAGS = frozenset(
    {
        "abbr", "address", "article", "aside", "bdi", "bdo", "big", "caption", "center", "cite",
        "col", "colgroup", "data", "dd", "dfn", "dl", "dt", "figcaption", "figure", "footer",
        "header", "hgroup", "ins", "label", "legend", "main", "mark", "nav", "nobr", "q", "rp",
        "rt", "ruby", "samp", "section", "small", "strike", "time", "tt", "var", "wbr",
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
    """The HTML with everything outside the allow-list removed, tags balanced, TeX made safe."""
    return neutralize_tex(_CLEANER.clean(html))


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


# --- TeX ----------------------------------------------------------------------------------------

# TeX commands that set HTML attributes or load code, with the number of {…} arguments each
# takes (optional […] ones may come before any). What stays of them: the body (their last
# argument) of those that have one; \href and \url with an http(s) target, and \unicode without
# a font, stay as written.
_TEX_COMMANDS = {
    "href": 2, "url": 1, "style": 2, "class": 2, "cssId": 2, "data": 2, "html": 0,
    "require": 1, "mmlToken": 2, "unicode": 1,
}
# Commands whose colour, padding or notation arguments MathJax pastes into a style attribute
# (`\fcolorbox{red;position:fixed}{…}{…}`): kept only while those are plain words and numbers.
_STYLED_COMMANDS = {
    "bbox": 1, "color": 1, "textcolor": 2, "colorbox": 2, "fcolorbox": 3, "definecolor": 3,
    "enclose": 2,
}
_WITHOUT_BODY = frozenset({"url", "require", "html", "color", "definecolor"})
_CANDIDATE = re.compile(r"\\(?:%s)(?![A-Za-z])"
                        % "|".join(sorted({*_TEX_COMMANDS, *_STYLED_COMMANDS})))
_PLAIN_ARGUMENT = re.compile(r"^[\w\s#.,=+-]*$")
_WEB_URL = re.compile(r"^https?://", re.IGNORECASE)
# Where MathJax finds math in a card: Anki's delimiters. Tags it never looks into are skipped.
_MATH_DELIMITERS = ("\\(", "\\[")
_TAG = re.compile(r"(<[^>]*>)")
_SKIPPED_TAGS = frozenset({"pre", "code", "script", "noscript", "style", "textarea"})
_PROCESS_CLASS = "mathjax_process"  # MathJax 3's processHtmlClass, which Anki leaves as it is


def sanitize_tex(tex: str) -> tuple[str, list[str]]:
    r"""TeX without the commands that could act in a card, and a description of each removed.

    `\href{javascript:…}{text}` becomes `{text}`, `\style{…}{x}` becomes `{x}`, `\require{…}`
    goes; a command whose arguments cannot be read here loses its name, so it can do nothing.
    """
    if "\\" not in tex or not _CANDIDATE.search(tex):  # the common case, at regex speed
        return tex, []
    problems: list[str] = []
    return _sanitize_tex(tex, problems), list(dict.fromkeys(problems))


def tex_problems(text: str) -> list[str]:
    """What `neutralize_tex` would take out of the math in this HTML or text."""
    if not any(d in text for d in _MATH_DELIMITERS):
        return []
    return sanitize_tex(text)[1]


def neutralize_tex(html: str) -> str:
    """HTML (or escaped text) whose math can only typeset: `sanitize_tex` applied to every text
    run MathJax reads, that is outside <pre>, <code> and the like."""
    if "\\" not in html or not any(d in html for d in _MATH_DELIMITERS):
        return html
    # `sanitize_tex` changes only text where _CANDIDATE matches, and a match in a text run is a
    # match in the whole HTML too (a run ends at "<", which the look-ahead accepts like an end):
    # with none in the whole, every run stays as it is. One scan instead of a split of the
    # field, which is most of an answer's or a code note's cost here.
    if not _CANDIDATE.search(html):
        return html
    parts = _TAG.split(html)
    # MathJax does read a <pre> or <code> whose class says `mathjax_process`: then nothing is
    # skipped (the allow-list lets an author write classes).
    skipping = _PROCESS_CLASS not in html
    skipped: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:  # a tag
            words = part[1:].lstrip("/").split(None, 1)
            name = words[0].rstrip(">/").lower() if words else ""
            if skipping and name in _SKIPPED_TAGS and not part.endswith("/>"):
                if part.startswith("</"):
                    if name in skipped:
                        del skipped[len(skipped) - 1 - skipped[::-1].index(name)]
                else:
                    skipped.append(name)
        elif part and not skipped and "\\" in part:
            parts[index] = sanitize_tex(part)[0]
    return "".join(parts)


def _sanitize_tex(tex: str, problems: list[str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(tex):
        char = tex[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        j = i + 1
        while j < len(tex) and tex[j].isascii() and tex[j].isalpha():
            j += 1
        name = tex[i + 1:j]
        if name not in _TEX_COMMANDS and name not in _STYLED_COMMANDS:
            end = max(j, i + 2)  # a control word, or a control symbol such as \\ or \{
            out.append(tex[i:end])
            i = end
            continue
        replacement, i = _replace_command(tex, name, j, problems)
        out.append(replacement)
    return "".join(out)


def _replace_command(tex: str, name: str, start: int, problems: list[str]) -> tuple[str, int]:
    """What `\\name` and its arguments, read from `start`, become; and where reading stopped."""
    options: list[str] = []
    arguments: list[str] = []
    i = start
    for _ in range(_TEX_COMMANDS.get(name) or _STYLED_COMMANDS[name]):
        while (group := _argument(tex, i, "[")) is not None:
            options.append(group[0])
            i = group[1]
        group = _argument(tex, i, "{")
        if group is None:
            problems.append(f"\\{name}")
            return "{}", start  # unreadable here: the name goes, what follows is plain TeX
        arguments.append(group[0])
        i = group[1]
    written = tex[start - len(name) - 1:i]
    body = "" if name in _WITHOUT_BODY else "{" + _sanitize_tex(arguments[-1], problems) + "}"
    if name in ("href", "url"):
        target = _URL_NOISE.sub("", html_module.unescape(arguments[0]))
        if _WEB_URL.match(target) and not options and body == "{" + arguments[-1] + "}":
            return written, i
        if _WEB_URL.match(target) and not options:
            return f"\\{name}{{{arguments[0]}}}{body}", i
        scheme = _SCHEME.match(target)
        problems.append(f"\\{name} with a {scheme.group(1).lower() + ':' if scheme else 'non-web'} "
                        "target")
        return body, i
    if name == "unicode":
        if options:
            problems.append("\\unicode with a font")
        return "\\unicode" + body, i
    if name in _STYLED_COMMANDS:
        settings = options + (arguments if name in _WITHOUT_BODY else arguments[:-1])
        if all(_PLAIN_ARGUMENT.match(setting) for setting in settings):
            return written if body == "{" + arguments[-1] + "}" or not body else (
                written[: len(written) - len(arguments[-1]) - 2] + body), i
        problems.append(f"\\{name} with a style")
        return body, i
    problems.append(f"\\{name}")
    return body, i


def _argument(tex: str, i: int, opening: str) -> tuple[str, int] | None:
    """The argument at `i` (after spaces and comments): ({…} or […] content, end), a single
    token for a mandatory one, or None."""
    while i < len(tex):
        if tex[i] in " \t\r\n":
            i += 1
        elif tex[i] == "%":  # a TeX comment runs to the end of the line
            end = tex.find("\n", i)
            i = len(tex) if end < 0 else end + 1
        else:
            break
    if i >= len(tex):
        return None
    closing = "}" if opening == "{" else "]"
    if tex[i] != opening:
        if opening == "[" or tex[i] in "}]":
            return None
        if tex[i] == "\\":  # a control sequence as the argument
            j = i + 1
            while j < len(tex) and tex[j].isascii() and tex[j].isalpha():
                j += 1
            j = max(j, i + 2)
            return tex[i:j], j
        return tex[i], i + 1
    depth = 0
    j = i
    while j < len(tex):
        char = tex[j]
        if char == "\\":
            j += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0 and opening == "{":
                return tex[i + 1:j], j + 1
        elif char == closing and depth == 0:
            return tex[i + 1:j], j + 1
        j += 1
    return None
