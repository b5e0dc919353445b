"""The allow-list card HTML passes through: what a card keeps, what it loses, what the author is told."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from deckgen.sanitize import clean, removals, sanitize, url_problem


def test_script_is_removed_with_its_content_and_reported() -> None:
    assert sanitize("<p>a<script>alert(1)</script>b</p>") == ("<p>ab</p>", ["<script>"])


def test_style_element_is_removed_with_its_content() -> None:
    assert sanitize("<style>.card{display:none}</style>text") == ("text", ["<style>"])


@pytest.mark.parametrize(
    ("html", "removed"),
    [
        ('<iframe src="https://evil.example"></iframe>', "<iframe>"),
        ('<object data="x.swf">fallback</object>', "<object>"),
        ('<embed src="x.swf">', "<embed>"),
        ("<svg><script>alert(1)</script></svg>", "<svg>"),
    ],
)
def test_embedding_elements_are_removed_with_their_content(html: str, removed: str) -> None:
    assert sanitize(html) == ("", [removed])


def test_form_controls_are_removed_but_text_stays() -> None:
    assert sanitize('<form action="https://x"><input name="a">label</form>') == (
        "label",
        ["<form>", "<input>"],
    )


@pytest.mark.parametrize("handler", ["onerror", "onclick", "onload", "onmouseover"])
def test_event_handler_attributes_are_removed(handler: str) -> None:
    html = f'<img src="x.png" alt="a" {handler}="alert(1)">'
    assert sanitize(html) == ('<img src="x.png" alt="a">', [f"{handler} attribute"])


def test_event_handler_after_a_void_removed_element_is_still_reported() -> None:
    assert removals('<embed src="x"><b onclick="y()">b</b>') == ["<embed>", "onclick attribute"]


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "java&#x09;script:alert(1)",  # a tab the browser would ignore
    ],
)
def test_javascript_links_lose_their_href(href: str) -> None:
    assert sanitize(f'<a href="{href}">j</a>') == (
        '<a rel="noopener noreferrer">j</a>',
        ["javascript: URL"],
    )


def test_javascript_image_source_is_removed() -> None:
    assert sanitize('<img src="javascript:alert(1)">') == ("<img>", ["javascript: URL"])


def test_data_urls_are_refused_even_for_images() -> None:
    assert sanitize('<img src="data:image/png;base64,AAAA">') == ("<img>", ["data: URL"])


def test_http_https_mailto_and_relative_urls_are_kept() -> None:
    html = (
        '<a href="https://e.com/a">e</a><a href="http://e.com">h</a>'
        '<a href="mailto:a@b.c">m</a><img src="x-0123456789.png">'
    )
    cleaned, removed = sanitize(html)
    assert removed == []
    for url in ("https://e.com/a", "http://e.com", "mailto:a@b.c", "x-0123456789.png"):
        assert f'"{url}"' in cleaned


def test_style_keeps_only_colour_and_alignment() -> None:
    assert sanitize('<span style="color:red; position:fixed; top:0">s</span>') == (
        '<span style="color:red">s</span>',
        ["style property 'position'", "style property 'top'"],
    )


def test_mathjax_delimiters_and_escaped_tex_survive() -> None:
    html = (
        '<p><span class="math">\\(a &lt; b \\&amp; x_i\\)</span></p>'
        '<div class="math display">\\[\\begin{bmatrix} a &amp; b \\\\ c \\end{bmatrix}\\]</div>'
    )
    assert sanitize(html) == (html, [])


def test_pygments_markup_survives() -> None:
    html = (
        '<pre class="highlight" data-lang="python"><code><span class="k">def</span>'
        '<span class="w"> </span><span class="nf">f</span><span class="p">():</span>\n</code></pre>'
    )
    assert sanitize(html) == (html, [])


def test_tables_images_and_the_sources_raw_html_survive() -> None:
    html = (
        '<div class="table-wrap"><table><thead><tr><th style="text-align:center">a</th></tr>'
        '</thead><tbody><tr><td style="text-align:center">1</td></tr></tbody></table></div>'
        '<p><img src="https://e.com/a.png" alt="a" width="10" height="20">'
        '<font color="DeepSkyBlue" size="3" face="Arial">f</font>a<br>b<sup>2</sup><sub>i</sub>'
        "<kbd>K</kbd><del>d</del><s>s</s><u>u</u><em>e</em><strong>s</strong></p>"
        "<details><summary>s</summary>d</details><blockquote>q</blockquote><hr>"
        '<ol start="3"><li>x</li></ol><h3>h</h3>'
    )
    assert sanitize(html) == (html, [])


def test_unknown_attributes_are_removed_and_named() -> None:
    assert sanitize('<p onmouseover="x()" hidden>p</p>') == (
        "<p>p</p>",
        ["onmouseover attribute", "hidden attribute"],
    )


def test_inert_attributes_are_removed_silently() -> None:
    # id could clash with the ids of Anki's own page; none of these shows or runs anything.
    html = '<p id="qa" class="x" title="t" data-x="1"><a name="n" target="_blank">a</a></p>'
    assert sanitize(html) == ('<p><a rel="noopener noreferrer">a</a></p>', [])


def test_comments_go_silently() -> None:
    assert sanitize("<!-- deckgen-id: x -->text") == ("text", [])


def test_fragments_of_allowed_html_report_nothing() -> None:
    assert removals("<font color=DeepSkyBlue>") == []
    assert removals("</font>") == []
    assert removals("plain text with a < sign") == []


def test_each_removal_is_reported_once() -> None:
    assert removals("<script>a</script><script>b</script>") == ["<script>"]


def test_url_problem_names_the_scheme() -> None:
    assert url_problem("vbscript:x") == "vbscript: URL"
    assert url_problem("https://e.com") is None
    assert url_problem("imgs/a.png") is None
    assert url_problem("#anchor") is None


class _Balance(HTMLParser):
    VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def assert_balanced(html: str) -> None:
    checker = _Balance()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == [], html


@pytest.mark.parametrize(
    "html",
    ["<div><b>x", "<p>a<div>b</div>c</p>", "</span>x<i>", "<table><td>x</table>", "<ul><li>a<li>b"],
)
def test_output_is_balanced(html: str) -> None:
    assert_balanced(clean(html))
