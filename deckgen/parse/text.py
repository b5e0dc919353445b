"""Small text helpers for heading text: plain text, section names, tags."""
from __future__ import annotations

import re

_HTML_TAG = re.compile(r"<[^<>]*>")
_INLINE_MARKS = re.compile(r"[*`]+")
# `问题3：` before a question's title: the knowledge base's other way of numbering questions
ASKED = re.compile(r"^问题\s*(\d{1,9})\s*[.．、:：)）]?\s*")


def plain_text(text: str) -> str:
    """Heading text without HTML tags or emphasis marks: for section names and tags."""
    return " ".join(_INLINE_MARKS.sub("", _HTML_TAG.sub("", text)).split())


def section_name(text: str) -> str:
    """A section heading as a deck name: plain text, without the decoration some articles put
    around it (`----【机器学习基础】----`), so it meets the folder of the same name."""
    plain = plain_text(text) or text.strip()
    bare = plain.strip("-=*~_#·• ")
    if bare.startswith("【") and bare.endswith("】") and bare.count("【") == 1:
        bare = bare[1:-1].strip()
    return bare or plain


def as_tag(name: str) -> str:
    """An Anki tag: no spaces (Anki splits tags at spaces)."""
    return "_".join(plain_text(name).split())


def without_asked(text: str) -> str:
    """A heading's text without a leading `问题3：`."""
    return ASKED.sub("", text.strip(), count=1)
