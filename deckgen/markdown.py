"""The one Markdown parser configuration, shared by `parse` (block structure) and `render` (HTML).

Settings measured on the whole knowledge base: ../shared/docs/markdown-facts.md.
"""
from __future__ import annotations

from collections.abc import Callable

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.texmath import texmath_plugin

Highlighter = Callable[[str, str, str], str]  # (code, language, attrs) -> HTML starting with <pre


def make_markdown(highlight: Highlighter | None = None) -> MarkdownIt:
    """A CommonMark parser with tables, raw HTML, front matter and $/$$/\\(\\)/\\[\\] math."""
    md = MarkdownIt("commonmark", {"html": True, "highlight": highlight})
    md.enable("table")
    md.use(front_matter_plugin)
    md.use(
        dollarmath_plugin,
        double_inline=True,
        allow_space=True,
        allow_digits=True,
        allow_blank_lines=False,
    )
    md.use(texmath_plugin, delimiters="brackets")
    return md
