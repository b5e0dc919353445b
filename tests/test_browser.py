"""Cards as a phone shows them: headless Chromium and MathJax 3, configured as Anki does.

Each test renders many cards into one `deckgen preview` page (each card in a frame as wide as
the phone) and measures them all with one script (tests/js/measure.js): no MathJax error,
nothing past the screen unless inside a scroll container that fits, a visible cue on each
container that scrolls, no inline code or table word broken inside a token, no language label
on the code. A failing card is saved as a screenshot, named in the failure.
"""
from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from deckgen import preview
from deckgen.config import Settings

from .conftest import REPO

MATHJAX = REPO / "tests" / "js" / "node_modules" / "mathjax" / "es5" / "tex-chtml-full.js"
MEASURE = (REPO / "tests" / "js" / "measure.js").read_text(encoding="utf-8")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# The knowledge base, beside the repository (CI) or beside the worktrees (development).
KB = next((p for p in (REPO.parent / "shared" / "kb", REPO.parent.parent / "shared" / "kb")
           if p.is_dir()), None)
PHONE = 390
SCREEN = 700  # px of card a phone shows at once, below the app's bars


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra's playwright is not installed")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    if not MATHJAX.is_file():
        pytest.skip("MathJax is not installed: run `npm ci` in tests/js")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any reason it cannot start is a reason to skip
            pytest.skip(f"Chromium cannot start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


def _preview_page(browser, cards: preview.Preview, folder: Path, scale: int = 1):  # noqa: ANN001, ANN202
    index = preview.write(cards, folder, MATHJAX)
    page = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=scale)
    page.goto(index.as_uri())
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000)
    page.evaluate("MathJax.startup.promise.then(() => true)")
    page.add_style_tag(content=".toolbar { position: static }")  # not over the screenshots
    return page


def _set(page, *, night: bool, width: int) -> None:  # noqa: ANN001
    """Flip the page's night switch and frame width, as a user would, and check they took."""
    backgrounds = page.evaluate(
        """([night, width]) => {
          const box = document.getElementById('night');
          if (box.checked !== night) box.click();
          document.body.style.setProperty('--frame', width + 'px');
          return [...new Set([...document.querySelectorAll('.side > .card')].map((card) =>
            `${getComputedStyle(card).backgroundColor} ${card.getBoundingClientRect().width}`))];
        }""",
        [night, width],
    )
    assert backgrounds == [f"{'rgb(30, 30, 30)' if night else 'rgb(255, 255, 255)'} {width}"]


def _problems(page, cards: preview.Preview, shots: Path, mode: str) -> list[str]:  # noqa: ANN001
    """Every problem the page's cards show, as 'card: problem', with a screenshot of each card."""
    found = []
    frames = page.locator(".side > .card")
    for result in page.evaluate(MEASURE):
        if not result["problems"]:
            continue
        card = cards.cards[result["index"] // 2]
        side = "back" if result["index"] % 2 else "front"
        shot = shots / f"{mode}-card{result['index'] // 2 + 1}-{side}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        frames.nth(result["index"]).screenshot(path=str(shot))
        for problem in result["problems"]:
            found.append(f"{card.label} ({card.note_type}, {side}, {mode}): {problem} [screenshot: {shot}]")
    return found


def _check_every_card(browser, cards: preview.Preview, tmp_path: Path, widths: tuple[int, ...]) -> None:  # noqa: ANN001
    page = _preview_page(browser, cards, tmp_path / "preview")
    problems = []
    for night in (False, True):
        for width in widths:
            _set(page, night=night, width=width)
            mode = f"{'night' if night else 'light'}-{width}px"
            problems += _problems(page, cards, tmp_path / "failed", mode)
    page.close()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


@pytest.fixture(scope="module")
def article_cards(tmp_path_factory) -> preview.Preview:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("article")
    settings = Settings(sources=(REPO / "source",), lock=folder / "deckgen.lock", run_code=True)
    return preview.collect(settings)


@pytest.fixture(scope="module")
def kb_sample(tmp_path_factory) -> preview.Preview:  # noqa: ANN001
    if KB is None:
        pytest.skip("../shared/kb is absent")
    folder = tmp_path_factory.mktemp("kb")
    every = preview.collect(Settings(sources=(KB,), lock=folder / "kb.lock", run_code=False))
    # Every eighth card, in source order: each folder of the knowledge base, both note types.
    every.cards = every.cards[::8]
    return every


def test_every_article_card_reads_well_on_a_phone(browser, article_cards, tmp_path: Path) -> None:  # noqa: ANN001
    assert len(article_cards.cards) == 44  # 16 questions, 28 code notes
    # 390 px (an iPhone), 360 px (the narrowest common Android phone) and the desktop's 900 px.
    _check_every_card(browser, article_cards, tmp_path, (PHONE, 360, 900))


def test_a_sample_of_the_knowledge_base_reads_well_on_a_phone(browser, kb_sample, tmp_path: Path) -> None:  # noqa: ANN001
    assert len(kb_sample.cards) >= 200
    assert {c.note_type for c in kb_sample.cards} == {"deckgen Q&A", "deckgen Code"}
    _check_every_card(browser, kb_sample, tmp_path, (PHONE,))


@pytest.mark.parametrize("cards", ["article_cards", "kb_sample"])
def test_long_answers_open_with_an_outline_and_short_ones_do_not(browser, cards: str, request, tmp_path: Path) -> None:  # noqa: ANN001
    """Measured at 390 px: every answer taller than one and a half screens that has parts
    (2 to 20 sub-headings of its highest level, or else first-level list items) opens with
    its outline; no answer shorter than a screen has one."""
    shown = request.getfixturevalue(cards)
    page = _preview_page(browser, shown, tmp_path / "preview")
    answers = page.evaluate(
        """[...document.querySelectorAll('.side > .card.back .deckgen.answer')].map((a) => {
             const levels = [1, 2, 3, 4, 5, 6].map((n) => a.querySelectorAll(`:scope > h${n}`).length);
             const headings = levels.find((n) => n > 0) || 0;
             const parts = headings >= 2 ? headings : a.querySelectorAll(':scope > ul > li, :scope > ol > li').length;
             return {height: a.getBoundingClientRect().height, outline: !!a.querySelector(':scope > .outline'),
                     parts, where: a.closest('.note').querySelector('.meta').textContent};
           })"""
    )
    page.close()
    long = [a for a in answers if a["height"] > 1.5 * SCREEN and 2 <= a["parts"] <= 20]
    short = [a for a in answers if a["height"] < SCREEN]
    assert len(long) >= 8 and len(short) >= 2  # both kinds are there
    assert [a for a in long if not a["outline"]] == []
    assert [a for a in short if a["outline"]] == []


def test_an_outline_link_brings_its_part_to_the_top_of_the_screen(browser, article_cards, tmp_path: Path) -> None:  # noqa: ANN001
    rope = next(i for i, c in enumerate(article_cards.cards) if "ROPE" in c.front and c.note_type == "deckgen Q&A")
    page = _preview_page(browser, article_cards, tmp_path / "preview")
    page.set_viewport_size({"width": PHONE, "height": 844})
    back = page.locator(".side > .card.back").nth(rope)
    links = back.locator(".outline a")
    assert links.count() >= 3
    label = links.nth(2).inner_text()
    links.nth(2).click()
    page.wait_for_function(
        "el => Math.abs(el.getBoundingClientRect().top) < 40",
        arg=back.locator("#dg-part-3").element_handle(), timeout=5_000,
    )
    heading = back.locator("#dg-part-3")
    assert heading.inner_text().strip().startswith(label.strip().rstrip("…"))
    # the script scrolled: the page's address did not change to another card's anchor
    assert "#" not in page.url
    page.close()


def test_a_formula_wider_than_the_phone_shows_a_shadow_where_more_is(browser, article_cards, tmp_path: Path) -> None:  # noqa: ANN001
    """Pixels, not styles, on a phone's screen of 3 pixels per CSS pixel: the right edge of the
    TV-loss formula is darker than the left until the learner scrolls to its end; then the left
    edge is. A formula that fits has no shadow at all."""
    tv = next(i for i, c in enumerate(article_cards.cards) if "总变分" in c.front and c.note_type == "deckgen Q&A")
    page = _preview_page(browser, article_cards, tmp_path / "preview", scale=3)
    formula = page.locator(".side > .card.back").nth(tv).locator("div.math.display").first
    assert formula.evaluate("el => el.scrollWidth > el.clientWidth + 20")

    def edges(element=formula) -> tuple[list[float], list[float]]:  # noqa: ANN001
        """The median brightness of the pixel columns nearest each edge, outermost first."""
        png = base64.b64encode(element.screenshot()).decode()
        return page.evaluate(
            """async (png) => {
                 const img = new Image();
                 img.src = 'data:image/png;base64,' + png;
                 await img.decode();
                 const c = document.createElement('canvas');
                 c.width = img.width; c.height = img.height;
                 const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                 const column = (x) => {  // median brightness of a pixel column: glyphs do not count
                   const d = g.getImageData(x, 0, 1, img.height).data, values = [];
                   for (let i = 0; i < d.length; i += 4) values.push((d[i] + d[i + 1] + d[i + 2]) / 3);
                   values.sort((a, b) => a - b);
                   return values[values.length >> 1];
                 };
                 const n = Math.min(12, img.width >> 1), left = [], right = [];
                 for (let x = 0; x < n; x++) { left.push(column(x)); right.push(column(img.width - 1 - x)); }
                 return [left, right];  // from each edge inwards
               }""",
            png,
        )

    left, right = (min(side[3:]) for side in edges())  # (a few pixels in from the very edge)
    assert right < left - 15, (left, right)  # a shadow at the right: there is more
    formula.evaluate("el => { el.scrollLeft = el.scrollWidth }")
    left, right = (min(side[3:]) for side in edges())
    assert left < right - 15, (left, right)  # now at the left, and none at the right
    # A formula that fits shows no shadow, not even a hairline at its edges, light or night.
    for night in (False, True):
        _set(page, night=night, width=PHONE)
        background = 30 if night else 255
        formulas = page.locator(".side > .card.back").nth(tv).locator("li span.math")
        for k in range(4):  # 𝐼ᵢ,ⱼ, 𝑖, 𝑗, β
            columns = [c for side in edges(formulas.nth(k)) for c in side[:4]]
            assert all(abs(c - background) < 4 for c in columns), (night, k, columns)
    page.close()


def test_the_measurements_see_each_kind_of_problem(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """Cards made to fail each check, drawn with the shipped CSS plus a few rules of how the
    cards used to be styled: each is caught, with a screenshot."""
    from deckgen.build import note_types

    css = next(iter(note_types(Settings()).values())).css + """
      .old code { white-space: normal; overflow-wrap: anywhere; }
      .old pre[data-lang]::before { position: absolute; right: 0.6em; top: 0.2em; margin: 0; }
      .old pre { position: relative; background: none; }
      .old .math mjx-assistive-mml { width: auto !important; height: auto !important; }"""
    long_code = "x = " + "1" * 20 + "  # " + "y" * 20
    bad = {
        "TeX left untypeset": r"<p>\(\frac{a\)</p>",
        "MathJax error: Missing open brace": r"<p>\(a^^b\)</p>",
        "undefined macro": r"<p>\(\foo x\)</p>",
        "past the screen": '<div style="width: 600px">wide</div>',
        "scrolls without a cue": '<div class="old"><pre>' + "z" * 120 + "</pre></div>",
        "inline code broken inside a token": '<p class="old">文字文字<code>' + "k" * 60 + "</code></p>",
        "though everything fits": r'<p class="old">文字 <span class="math">\(I_{i,j}\)</span> 表示像素</p>',
        "language label": f'<div class="old"><pre class="highlight" data-lang="python"><code>{long_code}</code></pre></div>',
    }
    cards = preview.Preview(
        [preview.PreviewCard("test", html, html, REPO / "x.md", 1, f"x.md:{n}") for n, html in enumerate(bad.values())],
        css, {},
    )
    page = _preview_page(browser, cards, tmp_path / "preview")
    problems = _problems(page, cards, tmp_path / "failed", "light")
    page.close()
    for n, kind in enumerate(bad):
        mine = [p for p in problems if p.startswith(f"x.md:{n} ")]
        assert any(kind in p for p in mine), (kind, mine)
        assert all("[screenshot: " in p and Path(p.split("[screenshot: ")[1].rstrip("]")).is_file() for p in mine)
