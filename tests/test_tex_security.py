"""TeX that could act in a card, on every path math can take, typeset by real MathJax (issue 14).

Anki typesets `\\(…\\)` and `\\[…\\]` in every field with MathJax 3's full TeX input and no
`ui/safe`. An article with TeX attacks in `$`, `$$`, `\\(`, `\\[`, environments, raw HTML, a title,
a section name, an example's error message, and a poisoned lock's removed note is built; real
Anki imports it and renders every card; MathJax 3 under Node (configured as Anki configures it)
typesets them; and no typeset card may hold a `javascript:` link, an event handler, a fixed or
position, an id or class from TeX, or a font from `\\unicode`.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deckgen.build import build
from deckgen.config import Settings
from deckgen.sanitize import neutralize_tex, sanitize_tex

from .conftest import Anki, without_own_scripts
from .test_build import open_package

JS = Path(__file__).parent / "js"
ROOT = "三年面试五年模拟"

# (a source line, the warning `check` gives at its line)
ATTACKS = [
    (r"行内 $\href{javascript:alert(1)}{click}$ 文字", r"TeX removed: \href with a javascript: target"),
    (r"段内 $$\style{position:fixed;top:0;width:100%;height:100%}{x}$$ 字", r"TeX removed: \style"),
    (r"文字 \\(\href{javascript:alert(2)}{a}\\) 文字", r"TeX removed: \href with a javascript: target"),
    (r"文字 \\[\bbox[position:fixed;top:0]{b}\\] 文字", r"TeX removed: \bbox with a style"),
    (r"$\begin{aligned}\href{javascript:alert(3)}{c} \end{aligned}$",
     r"TeX removed: \href with a javascript: target"),
    ('<div>\\(\\mmlToken{mi}[href="javascript:alert(4)"]{d}\\)</div>', r"TeX removed: \mmlToken"),
    (r"<div>\(\unicode[x;position:fixed]{65}\)</div>", r"TeX removed: \unicode with a font"),
    (r"$\require{action}\fcolorbox{red;position:fixed}{blue}{e}$", r"TeX removed: \require"),
    (r"$\class{card}{f} \cssId{qa}{g} \data{x=1}{h}$", r"TeX removed: \cssId"),
    ("<div>\\(\\href{java&#115;cript:alert(8)}{i}\\)</div>", r"TeX removed: \href with a javascript: target"),
    ('<pre class="mathjax_process">\\(\\href{javascript:alert(10)}{p}\\)</pre>',
     r"TeX removed: \href with a javascript: target"),
]
BLOCK = "$$\n\\class{card}{\\style{position:fixed;z-index:9}{y}}\n$$"
KEPT = r"安全的 $\href{https://example.com}{链接}$ 与 $\color{red}{x^2} + \frac{1}{2}$"
TITLE = r"标题 $\href{javascript:alert(5)}{t}$"
SECTION = r"节 \\(\href{javascript:alert(9)}{s}\\)"
RAISES = 'raise ValueError(r"\\(\\href{javascript:alert(6)}{r}\\)")'
ARTICLE = (f"# {SECTION}\n\n## 【一】{TITLE}\n\n" + "\n\n".join(a for a, _ in ATTACKS)
           + f"\n\n{BLOCK}\n\n{KEPT}\n\n```python\n{RAISES}\n```\n")

POISON = ["<script>alert(1)</script>题", '<img src="x.png" onerror="alert(2)">',
          '<a href="javascript:alert(3)">链接</a>', r"\(\href{javascript:alert(7)}{z}\)"]
POISONED_LOCK = {"version": 1, "note_types": {}, "notes": {}, "removed": {"old": {
    "guid": "poisoned00", "title": "旧题", "section": "节", "mod": 1, "note_type": "qa",
    "deck": f"{ROOT}::节", "tags": ["deckgen::removed"], "fields": POISON}}}

DANGER = re.compile(r'href="\s*javascript:|\son[a-z]+=|position:\s*fixed'
                    r'|font-family: MJXZERO, x|\sid="qa"|class="card"', re.IGNORECASE)
STYLESHEET = re.compile(r"<style>.*?</style>", re.DOTALL)  # the note type's own CSS


def typeset(cards: list[str]) -> list[str]:
    """The cards as MathJax 3 under Node typesets them, as Anki would."""
    if shutil.which("node") is None or not (JS / "node_modules" / "mathjax").is_dir():
        pytest.skip("MathJax under Node is not installed (cd tests/js && npm ci)")
    done = subprocess.run(["node", str(JS / "typeset.js")], input=json.dumps(cards),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("tex")
    source = root / "source"
    source.mkdir()
    (source / "a.md").write_text(ARTICLE, encoding="utf-8")
    (root / "deckgen.lock").write_text(json.dumps(POISONED_LOCK), encoding="utf-8")
    settings = Settings(sources=(source,), output=root / "build", lock=root / "deckgen.lock")
    return root, build(settings)


def line_of(text: str) -> int:
    return ARTICLE[: ARTICLE.index(text)].count("\n") + 1


def test_the_attacks_do_something_without_the_sanitizer() -> None:
    """The check below can fail: typeset as written, these do reach the card."""
    raw = [f"<p>\\({a[a.index('$') + 1:a.rindex('$')]}\\)</p>" for a, _ in ATTACKS if "$" in a]
    found = [m.group(0) for html in typeset(raw) for m in DANGER.finditer(html)]
    assert any("javascript" in f for f in found) and any("position" in f for f in found)


def test_no_typeset_card_holds_a_link_handler_or_overlay(built, anki: Anki) -> None:  # noqa: ANN001
    root, _ = built
    anki.import_package(root / "build" / f"{ROOT}.apkg")
    cards = [STYLESHEET.sub("", without_own_scripts(text)) for card in anki.cards()
             for text in (card.question(), card.answer())]
    assert len(cards) == 6  # the question, its code example, the removed note: front and back
    typeset_cards = typeset(cards)
    for html in typeset_cards:
        assert DANGER.search(html) is None, DANGER.search(html)
        assert "<script" not in html
    both = "".join(typeset_cards)
    assert 'href="https://example.com"' in both  # a web link in math stays
    assert both.count("<mjx-container") >= 13  # the math was typeset, not dropped
    assert "ValueError" in both  # the example's error message, with its TeX, is on a card


def test_each_tex_removal_is_a_warning_at_its_line(built) -> None:  # noqa: ANN001
    _, report = built
    got = {(d.line, d.message) for d in report.diagnostics}
    for attack, warning in ATTACKS:
        assert (line_of(attack), warning) in got, (attack, sorted(got))
    assert (line_of(BLOCK), r"TeX removed: \class") in got  # the block's opening line
    assert (line_of(TITLE), r"TeX removed: \href with a javascript: target") in got
    assert (line_of(TITLE), r"TeX removed from the section name: \href with a javascript: target") in got


def test_the_poisoned_lock_ships_its_removed_note_sanitized(built) -> None:  # noqa: ANN001
    root, _ = built
    notes, _, _ = open_package(root / "build" / f"{ROOT}.apkg", root)
    (removed,) = [n for n in notes if n["guid"] == "poisoned00"]
    assert "deckgen::removed" in removed["tags"]
    text = removed["Question"] + removed["Answer"] + removed["Section"] + removed["Source"]
    assert "<script" not in text and "onerror" not in text and "javascript:" not in text
    assert r"\href" not in text and "题" in text
    lock = json.loads((root / "deckgen.lock").read_text(encoding="utf-8"))
    assert "<script" not in json.dumps(lock["removed"]["old"]["fields"])


@pytest.mark.parametrize("tex, safe", [
    (r"\href{https://a.org}{x}", r"\href{https://a.org}{x}"),
    (r"\href{javascript:alert(1)}{x}", "{x}"),
    ("\\href{ java\tscript:alert(1)}{x}", "{x}"),
    (r"\href%c" + "\n" + r"{javascript:1}{x}", "{x}"),
    (r"\href", "{}"),
    (r"\def\x{\href}\x{javascript:1}{y}", r"\def\x{{}}\x{javascript:1}{y}"),
    (r"\\href{javascript:1}{x}", r"\\href{javascript:1}{x}"),  # a line break, then text
    (r"\style{color:red}{y}", "{y}"),
    (r"\class{a}{\cssId{b}{c}}", "{{c}}"),
    (r"\unicode{65}", r"\unicode{65}"),
    (r"\unicode[x;position:fixed]{65}", r"\unicode{65}"),
    (r"\require{action}x", "x"),
    (r'\mmlToken{mi}[href="j:"]{w}', "{w}"),
    (r"\bbox[red,5px]{a}", r"\bbox[red,5px]{a}"),
    (r"\bbox[5px,border:2px solid red]{a}", "{a}"),
    (r"\color{red} x", r"\color{red} x"),
    (r"\color{red;position:fixed} x", " x"),
    (r"\fcolorbox{red}{blue}{\href{javascript:1}{w}}", r"\fcolorbox{red}{blue}{{w}}"),
    (r"x^2 + \frac{1}{2}", r"x^2 + \frac{1}{2}"),
])
def test_sanitize_tex(tex: str, safe: str) -> None:
    assert sanitize_tex(tex)[0] == safe


def test_neutralize_tex_leaves_code_alone() -> None:
    html = (r"<p>a \(\href{javascript:1}{x}\)</p><pre>\(\href{javascript:1}{x}\)</pre>"
            r"<code>\(\style{x}{y}\)</code> \(\style{a}{b}\)")
    assert neutralize_tex(html) == (r"<p>a \({x}\)</p><pre>\(\href{javascript:1}{x}\)</pre>"
                                    r"<code>\(\style{x}{y}\)</code> \({b}\)")
