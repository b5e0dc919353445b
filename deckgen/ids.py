"""Identity: the stable key of a question and the note GUID that follows from it.

A key never depends on a question's position, number or answer, so renumbering, reordering or
editing an answer keeps the note Anki already has (and its review history).
"""
from __future__ import annotations

import re
import unicodedata

import genanki

# 【一】, 【十二】: the article's question markers.
QUESTION_MARKER = re.compile(r"^\s*【[一二三四五六七八九十百零〇两]+】\s*")
# "33." "33、" "33 " "33)" before a title; an id may glue the number to the text ("16Transformer").
_TITLE_NUMBER = re.compile(r"^\s*\d+\s*(?:[.．、)）:：]\s*|\s+)")
_ID_NUMBER = re.compile(r"^(?:user-content-)?\d+[.．、]?")
_FORMATTING = re.compile(r"<[^>]*>|[*_`~\s]+")


def strip_number(title: str) -> str:
    """A title without its leading 【一】 marker or `33.` number."""
    title = QUESTION_MARKER.sub("", title, count=1)
    return _TITLE_NUMBER.sub("", title, count=1).strip()


def normalize_key(text: str, *, is_id: bool = False) -> str:
    """The identity key of a question title or heading id.

    Width, case, white space, Markdown emphasis and a leading number do not count, so that
    `33.Transformer Encoder？` and the id `34.TransformerEncoder?` name the same question.
    """
    text = unicodedata.normalize("NFKC", text)
    text = QUESTION_MARKER.sub("", text, count=1)
    text = (_ID_NUMBER if is_id else _TITLE_NUMBER).sub("", text.strip(), count=1)
    return _FORMATTING.sub("", text).casefold()


def guid_for_key(key: str) -> str:
    """The note GUID a key gets when nothing (lock file, rename) says otherwise."""
    return genanki.guid_for("deckgen", key)
