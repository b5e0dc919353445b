"""`deckgen preview`: every card's front and back, as the note types render them, on one page.

The notes are planned exactly as `deckgen build` plans them (same parse, render, code runs and
fields); each note's fields then go through its note type's templates with Anki's template
syntax (`{{Field}}`, `{{FrontSide}}`, `{{#Field}}…{{/Field}}`, `{{^Field}}…{{/Field}}`) and the
page wraps them in the note types' CSS, in a phone-width frame with the classes Anki clients
put on a card (`card`, and `nightMode night_mode` at night). MathJax is configured as Anki
configures it. Nothing here needs more than deckgen's own dependencies.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deckgen.config import Settings
from deckgen.model import Diagnostic

MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-chtml-full.js"
# Anki's own MathJax settings (ts/mathjax/index.ts): \( \) inline, \[ \] display, no $ and no
# environments outside them, with noerrors (a bad formula shows its TeX), mathtools and mhchem.
# tex-chtml-full.js carries those packages, so nothing is loaded from elsewhere.
MATHJAX_CONFIG = {
    "tex": {
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processEscapes": False,
        "processEnvironments": False,
        "processRefs": False,
        "packages": {"[+]": ["noerrors", "mathtools", "mhchem"], "[-]": ["textmacros"]},
    },
    "options": {"renderActions": {"addMenu": []}},
    "startup": {"typeset": True},
}
PHONE_WIDTH = 390  # px: an iPhone's width, between the 360 and 430 of common phones
DESKTOP_WIDTH = 900

# Anki counts a field as empty when it holds only white space, <br> and <div> tags (rslib's
# template.rs), so `{{#Field}}` hides such a field too.
_EMPTY_FIELD = re.compile(r"^(?:\s|</?(?:br|div)\s?/?>)*$", re.IGNORECASE)
_TAG = re.compile(r"{{\s*([#^/]?)\s*([^{}]*?)\s*}}")


class PreviewError(Exception):
    """A template the preview cannot render; the message names the template."""


# --- Anki's template syntax -------------------------------------------------------------------


def render_template(template: str, fields: Mapping[str, str], front_side: str = "") -> str:
    """A card side as Anki renders it from its template and the note's fields.

    `{{FrontSide}}` is the rendered front (on the back). A field reference may carry filters
    (`{{text:Field}}`): `text` strips HTML; others (`hint:`, `furigana:`…), which deckgen's
    templates do not use, leave the field as it is.
    """
    out: list[str] = []
    stack: list[tuple[str, bool]] = []  # open sections: (field, whether their content shows)
    position = 0
    for match in _TAG.finditer(template):
        showing = all(shown for _, shown in stack)
        if showing:
            out.append(template[position:match.start()])
        position = match.end()
        kind, name = match.group(1), match.group(2)
        if kind in ("#", "^"):
            filled = not _EMPTY_FIELD.match(fields.get(name, ""))
            stack.append((name, filled if kind == "#" else not filled))
        elif kind == "/":
            if not stack or stack[-1][0] != name:
                raise PreviewError(f"template: {{{{/{name}}}}} closes no open section")
            stack.pop()
        elif showing:
            out.append(_field(name, fields, front_side))
    if stack:
        raise PreviewError(f"template: {{{{#{stack[-1][0]}}}}} is never closed")
    out.append(template[position:])
    return "".join(out)


def _field(reference: str, fields: Mapping[str, str], front_side: str) -> str:
    *filters, name = [part.strip() for part in reference.split(":")]
    if name == "FrontSide":
        return front_side
    if name not in fields:
        return f"{{unknown field {name}}}"  # what Anki itself shows
    value = fields[name]
    if "text" in filters:
        value = re.sub(r"<[^>]*>", "", value)
    return value


# --- The cards of a build ---------------------------------------------------------------------


@dataclass
class PreviewCard:
    note_type: str  # the note type's name, "deckgen Q&A"
    front: str  # HTML
    back: str
    source: Path  # the source file
    line: int  # its line the card comes from
    label: str  # "source/文章.md:42", as the card's Source field says


@dataclass
class Preview:
    cards: list[PreviewCard]
    css: str
    media: dict[str, Path]  # files the cards show, by the name they refer to them by
    diagnostics: list[Diagnostic] = field(default_factory=list)


def collect(settings: Settings) -> Preview:
    """Every card the build of `settings` would ship, rendered through its note type."""
    from deckgen.build import load_and_plan, note_types, sorted_unique, source_label
    from deckgen.ids import Lock

    corpus, plan, _ = load_and_plan(settings, Lock.load(settings.lock))
    models = note_types(settings)
    files = {source_label(q, settings.sources).rsplit(":", 1)[0]: q.path for q in corpus.questions}
    cards = []
    for note in plan.notes:
        model = models[note.note_type]
        names = [f["name"] for f in model.fields]
        values = dict(zip(names, note.fields))
        template = model.templates[0]
        front = render_template(template["qfmt"], values)
        back = render_template(template["afmt"], values, front_side=front)
        label = html.unescape(values.get("Source", ""))
        file, _, line = label.rpartition(":")
        cards.append(PreviewCard(model.name, front, back, files.get(file, Path(file)),
                                 int(line) if line.isdigit() else 0, label))
    css = next(iter(models.values())).css  # the note types share one stylesheet
    media = {m.name: m.source for section in plan.media.values() for m in section.values()}
    diagnostics = sorted_unique(corpus.diagnostics + plan.diagnostics)  # as a build lists them
    return Preview(cards, css, dict(sorted(media.items())), diagnostics)


# --- The page ---------------------------------------------------------------------------------


def write(preview: Preview, output: Path, mathjax: Path | None = None) -> Path:
    """index.html in `output`, the media beside it and a page per source file; returns index.html."""
    mathjax_src = _mathjax_src(mathjax)  # a wrong path stops before anything is written
    output.mkdir(parents=True, exist_ok=True)
    for name, source in preview.media.items():
        shutil.copyfile(source, output / name)
    pages = _write_sources(preview.cards, output / "sources")
    index = output / "index.html"
    index.write_text(page(preview, mathjax_src, pages), encoding="utf-8")
    return index


def _mathjax_src(mathjax: Path | None) -> str:
    if mathjax is None:
        return MATHJAX_CDN
    path = mathjax.resolve()
    if path.is_dir():  # the npm package's folder, or its es5/
        for candidate in (path / "es5" / "tex-chtml-full.js", path / "tex-chtml-full.js"):
            if candidate.is_file():
                path = candidate
                break
        else:
            raise PreviewError(f"{mathjax}: no MathJax 3 tex-chtml-full.js in this folder; "
                               "give the file, or the mathjax package's folder")
    elif not path.is_file():
        raise PreviewError(f"{mathjax}: no such file (give MathJax 3's tex-chtml-full.js)")
    # Referred to where it is, not copied: MathJax loads its fonts from beside its script.
    return path.as_uri()


def _write_sources(cards: Sequence[PreviewCard], folder: Path) -> dict[Path, str]:
    """A page per source file, each line with an anchor (#L42); returns file → page name."""
    pages: dict[Path, str] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for card in cards:
        if card.source in pages or not card.source.is_file():
            continue
        name = f"{len(pages) + 1:04d}.html"
        pages[card.source] = name
        text = card.source.read_text(encoding="utf-8", errors="replace")
        lines = "".join(
            f'<span id="L{n}"><a href="#L{n}">{n:>5}</a>  {html.escape(line)}</span>\n'
            for n, line in enumerate(text.splitlines(), start=1)
        )
        (folder / name).write_text(
            f"<!doctype html><meta charset='utf-8'><title>{html.escape(card.source.name)}</title>"
            f"<style>{_SOURCE_CSS}</style><pre>{lines}</pre>", encoding="utf-8")
    return pages


def page(preview: Preview, mathjax_src: str, source_pages: Mapping[Path, str] | None = None) -> str:
    """The preview page: every card's front and back, in phone-width frames."""
    source_pages = source_pages or {}
    counts: dict[str, int] = {}
    for card in preview.cards:
        counts[card.note_type] = counts.get(card.note_type, 0) + 1
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    notes = []
    for number, card in enumerate(preview.cards, start=1):
        where = html.escape(card.label)
        if card.source in source_pages:
            where = f'<a href="sources/{source_pages[card.source]}#L{card.line}">{where}</a>'
        notes.append(
            f'<section class="note" id="card-{number}" data-type="{html.escape(card.note_type)}">'
            f'<div class="meta">#{number} · {html.escape(card.note_type)} · {where}</div>'
            f'<div class="sides">'
            f'<div class="side"><div class="side-name">Front</div>'
            f'<div class="card card1 front">{card.front}</div></div>'
            f'<div class="side"><div class="side-name">Back</div>'
            f'<div class="card card1 back">{card.back}</div></div>'
            f"</div></section>"
        )
    config = json.dumps(MATHJAX_CONFIG)
    return f"""<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deckgen preview · {len(preview.cards)} cards</title>
<style>{_PAGE_CSS}</style>
<style>{preview.css}</style>
<script>window.MathJax = {config};</script>
<script id="MathJax-script" async src="{html.escape(mathjax_src)}"></script>
</head>
<body class="preview" style="--frame: {PHONE_WIDTH}px">
<header class="toolbar">
  <strong>deckgen preview</strong> · {len(preview.cards)} cards ({html.escape(summary)})
  <label><input type="checkbox" id="night"> night mode</label>
  <label><input type="checkbox" id="desktop"> desktop width ({DESKTOP_WIDTH} px)</label>
</header>
<main>
{chr(10).join(notes)}
</main>
<script>{_PAGE_SCRIPT}</script>
</body>
</html>
"""


_PAGE_CSS = """
body.preview { margin: 0; background: #8c959f; font: 14px/1.4 system-ui, sans-serif; }
.toolbar { position: sticky; top: 0; z-index: 10; background: #24292f; color: #fff;
  padding: 8px 12px; display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; }
.toolbar a { color: #9cd1ff; }
.note { margin: 16px 12px 28px; }
.note > .meta { color: #fff; margin-bottom: 4px; }
.note > .meta a { color: #fff; }
.sides { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.side-name { color: #eaeef2; font-size: 12px; }
/* The phone: a frame as wide as the screen the card is drawn on; nothing is clipped here, so
   what would overflow on a phone overflows here too. */
.side > .card { width: var(--frame); box-sizing: border-box; min-height: 120px;
  box-shadow: 0 1px 4px rgba(0, 0, 0, .3); }
"""

_SOURCE_CSS = """
pre { font: 13px/1.5 ui-monospace, monospace; white-space: pre-wrap; margin: 0; padding: 8px; }
pre span:target { background: #fff8c5; display: inline-block; width: 100%; }
pre a { color: #8c959f; text-decoration: none; }
"""

_PAGE_SCRIPT = f"""
(function () {{
  var night = document.getElementById('night'), desktop = document.getElementById('desktop');
  function apply() {{
    document.querySelectorAll('.side > .card').forEach(function (card) {{
      card.classList.toggle('nightMode', night.checked);
      card.classList.toggle('night_mode', night.checked);
    }});
    document.body.style.setProperty('--frame', (desktop.checked ? {DESKTOP_WIDTH} : {PHONE_WIDTH}) + 'px');
    try {{ localStorage.setItem('deckgen-preview', JSON.stringify([night.checked, desktop.checked])); }}
    catch (e) {{}}
  }}
  try {{
    var saved = JSON.parse(localStorage.getItem('deckgen-preview') || '[false, false]');
    night.checked = !!saved[0]; desktop.checked = !!saved[1];
  }} catch (e) {{}}
  night.onchange = desktop.onchange = apply;
  apply();
}})();
"""
