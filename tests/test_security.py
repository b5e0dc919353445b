"""Card security end to end (issue 7): an article full of attacks, built into a real .apkg.

The checks read the Answer and Question fields as the package stores them (what Anki shows),
the media the package carries, and the warnings the author is given; last, real Anki imports
the package and renders every card.
"""
from __future__ import annotations

import os
import re
import sys
import zipfile
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from deckgen.build import BuildReport, build
from deckgen.config import Settings

from .conftest import PNG, Anki, without_own_scripts
from .test_build import open_package

ROOT = "三年面试五年模拟"
OUTSIDE_PNG = PNG + b"outside"  # another image's bytes: found in the package only if packed
HIDDEN_PNG = PNG + b"hidden"

# (the attack as a source line, the warning the author gets for it at that line)
ATTACKS = [
    ("<script>alert(1)</script>", "HTML shown as text: <script>"),
    ('<iframe src="https://evil.example"></iframe>', "HTML shown as text: <iframe>"),
    ('<object data="x.swf">fallback</object>', "HTML shown as text: <object>"),
    ('<embed src="x.swf">', "HTML shown as text: <embed>"),
    ('<p onclick="alert(1)">点我</p>', "HTML removed: onclick attribute"),
    ('文字 <span onmouseover="alert(1)">悬停</span> 文字', "HTML removed: onmouseover attribute"),
    ('<img src="imgs/ok.png" onerror="alert(1)">', "HTML removed: onerror attribute"),
    ('<img src="imgs/ok.png" alt="二" onload="alert(2)">', "HTML removed: onload attribute"),
    ('<a href="javascript:alert(1)">一</a>', "HTML removed: javascript: URL"),
    ('<a href="JaVaScRiPt:alert(1)">二</a>', "HTML removed: javascript: URL"),
    ('<a href="&#106;avascript:alert(1)">三</a>', "HTML removed: javascript: URL"),
    ('<a href=" java\tscript:alert(1)">四</a>', "HTML removed: javascript: URL"),
    ('文字 <a href="java\nscript:alert(1)">五</a> 文字', "HTML removed: javascript: URL"),
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">六</a>', "HTML removed: data: URL"),
    ('<img src="data:text/html,alert(1)">', "image refused: data: URL"),
    ("<style>.card { display: none }</style>", "HTML shown as text: <style>"),
    ('<form action="https://evil.example"><input name="q"></form>', "HTML shown as text: <form>"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "HTML shown as text: <meta>"),
    ('<base href="https://evil.example/">', "HTML shown as text: <base>"),
    ("<svg><script>alert(1)</script></svg>", "HTML shown as text: <svg>"),
    ('<svg onload="alert(1)"><circle r="1"/></svg>', "HTML shown as text: <svg>"),
    ("![](imgs/../../outside.png)", "image refused: imgs/../../outside.png is outside the source folders"),
    ("![](/etc/hostname)", "image refused: absolute path /etc/hostname"),
]

# What a card must keep, in the same answer as the attacks.
KEPT = r"""公式 $x^2$ 与行内 \(a+b\)。

$$
E = mc^2
$$

```python
def f(x):
    return x
```

| 列 | 值 |
| --- | --- |
| a | 1 |

<font color="red">红色</font>

![图](imgs/ok.png)

![](imgs/sub/../.hidden.png)
"""

TITLE = "<img src=x onerror=alert(1)><b onclick=alert(1)>标题</b>"
ARTICLE = (
    "# 安全\n\n"
    f"## 【一】{TITLE}\n\n"
    + "\n\n".join(attack for attack, _ in ATTACKS)
    + "\n\n[点我](javascript:alert(1))\n\n"  # markdown-it never makes this a link
    + KEPT
)

_watched: set[str] = set()  # files no build may open
_opened: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watched and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path in _watched:
            _opened.append(path)


sys.addaudithook(_audit)  # cannot be removed again; does nothing while _watched is empty


def line_of(text: str) -> int:
    """The 1-based line of the article where `text` starts."""
    return ARTICLE[: ARTICLE.index(text)].count("\n") + 1


class Built:
    def __init__(self, root: Path, report: BuildReport, opened: list[str]) -> None:
        self.root = root
        self.report = report
        self.opened = opened
        self.package = root / "build" / f"{ROOT}.apkg"
        notes, _, self.media = open_package(self.package, root)
        (self.note,) = [n for n in notes if n["type"] == "deckgen Q&A"]
        self.answer = self.note["Answer"]
        self.soup = BeautifulSoup(self.answer, "html.parser")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("attacks")
    source = root / "source"
    (source / "imgs" / "sub").mkdir(parents=True)
    (source / "a.md").write_text(ARTICLE, encoding="utf-8")
    (source / "imgs" / "ok.png").write_bytes(PNG)
    (source / "imgs" / ".hidden.png").write_bytes(HIDDEN_PNG)
    (root / "outside.png").write_bytes(OUTSIDE_PNG)
    settings = Settings(sources=(source,), output=root / "build", lock=root / "deckgen.lock", run_code=False)
    _watched.update({os.path.realpath(root / "outside.png"), "/etc/hostname"})
    try:
        report = build(settings)
    finally:
        _watched.clear()
    opened, _opened[:] = list(_opened), []
    return Built(root, report, opened)


# --- what the Answer field no longer holds ------------------------------------------------------


@pytest.mark.parametrize("tag", ["script", "iframe", "object", "embed", "style", "form", "input",
                                 "meta", "base", "svg"])
def test_no_dangerous_element_survives(built: Built, tag: str) -> None:
    assert f"<{tag}" not in built.answer.lower()
    assert built.soup.find(tag) is None


def test_no_event_handler_attribute_survives(built: Built) -> None:
    handlers = [(t.name, a) for t in built.soup.find_all(True) for a in t.attrs if a.lower().startswith("on")]
    assert handlers == []
    # Attacks written with tags cards cannot use are shown as text: their `onload=` is words.
    for tag in built.soup.find_all(True):
        assert not re.search(r"\bon(error|click|load|mouseover)\s*=", str(tag).split(">", 1)[0], re.IGNORECASE)


def test_no_script_or_data_url_in_any_href_or_src(built: Built) -> None:
    urls = [t.get(a) for t in built.soup.find_all(True) for a in ("href", "src") if t.get(a) is not None]
    assert urls  # the packed images at least
    for url in urls:  # bs4 has decoded entities (&#106;): compare as a browser would read it
        scheme = re.sub(r"[\x00-\x20]", "", url).lower().partition(":")[0]
        assert scheme not in ("javascript", "data", "vbscript"), url
    # The links themselves stay, as text without a target.
    assert [a.get_text() for a in built.soup.find_all("a")] == ["一", "二", "三", "四", "五", "六"]
    assert all(a.get("href") is None for a in built.soup.find_all("a"))


def test_each_removal_is_a_warning_at_its_line(built: Built) -> None:
    source = built.root / "source" / "a.md"
    warnings = {(d.line, d.message) for d in built.report.diagnostics
                if d.path == source and d.level == "warning"}
    for attack, message in ATTACKS:
        assert (line_of(attack), message) in warnings, attack
    assert not built.report.errors


# --- what the same card keeps -------------------------------------------------------------------


def test_math_code_tables_font_and_local_images_survive(built: Built) -> None:
    answer = built.answer
    assert r'<span class="math">\(x^2\)</span>' in answer
    assert r"\(a+b\)" in answer
    assert '<div class="math display">\\[\nE = mc^2\n\\]</div>' in answer
    assert '<span class="k">def</span>' in answer and '<span class="nf">f</span>' in answer
    assert built.soup.find("table") is not None and built.soup.find("td").get_text() == "a"
    assert '<font color="red">红色</font>' in answer
    (ok,) = [name for name, data in built.media.items() if data == PNG]
    assert f'<img src="{ok}" alt="图">' in answer
    assert f'<img src="{ok}">' in answer  # the one that lost its onerror


# --- media cannot escape the package ------------------------------------------------------------


def test_images_outside_the_source_folder_are_refused_and_never_read(built: Built) -> None:
    assert OUTSIDE_PNG not in built.media.values()
    assert built.opened == []
    missing = [s.get_text() for s in built.soup.find_all("span", class_="image-missing")]
    assert "imgs/../../outside.png" in missing and "/etc/hostname" in missing


def test_media_names_are_plain_file_names(built: Built) -> None:
    assert HIDDEN_PNG in built.media.values()  # packed, under a name of its own
    for name in built.media:
        assert "/" not in name and "\\" not in name and not name.startswith("."), name
        assert name not in ("", ".", "..") and Path(name).name == name
    for package in (built.root / "build").glob("*.apkg"):
        for entry in zipfile.ZipFile(package).namelist():
            assert "/" not in entry and "\\" not in entry and ".." not in entry, entry


def test_the_title_is_sanitized_too(built: Built) -> None:
    question = built.note["Question"]
    assert "onerror" not in question and "onclick" not in question and "<img" not in question
    assert question.endswith("<b>标题</b>")
    heading = next(i for i, line in enumerate(ARTICLE.splitlines(), 1) if TITLE in line)
    at_heading = {d.message for d in built.report.diagnostics if d.line == heading}
    assert "HTML removed: onclick attribute" in at_heading  # (the <img> itself became its alt text)


# --- real Anki ----------------------------------------------------------------------------------


def test_no_card_renders_a_script_in_real_anki(built: Built, anki: Anki) -> None:
    anki.import_package(built.package)
    cards = anki.cards()
    assert len(cards) == 2  # the question and its code example
    for card in cards:
        for text in (card.question(), card.answer()):
            text = without_own_scripts(text)
            assert "<script" not in text.lower() and "onerror" not in text.lower()
            assert "标题" in text
    assert any("红色" in c.answer() and r"\(x^2\)" in c.answer() for c in cards)


def test_section_names_file_names_and_languages_cannot_carry_html(tmp_path: Path) -> None:
    """Every field is HTML a card shows: a heading, a file or a fence word is text there."""
    source = tmp_path / "source"
    source.mkdir()
    evil = "<img src=x onerror=alert(1)>"
    (source / "a<b onclick=alert(2)>.md").write_text(
        f"# 节 {evil}\n\n## 【一】问题\n\n打印一个数：\n\n```py<svg/onload=alert(3)>\nprint(1)\n```\n", encoding="utf-8")
    settings = Settings(sources=(source,), output=tmp_path / "build", lock=tmp_path / "deckgen.lock",
                        run_code=False)
    report = build(settings)
    assert not report.errors
    notes, _, _ = open_package(report.packages[-1], tmp_path)
    assert len(notes) == 2
    for note in notes:
        for name, value in note.items():
            if name in ("guid", "type", "mod", "tags", "deck"):
                continue
            assert not re.search(r"<(img|b|svg)\b", str(value)), (name, value)
    code = next(n for n in notes if n["type"] == "deckgen Code")
    assert code["Language"] == "py&lt;svg/onload=alert(3)&gt;"
