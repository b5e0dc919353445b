"""Content evidence: how alike two answers (or two code examples) are, from small fingerprints.

A note's lock entry keeps a sketch of its answer, so a later build can tell a retitled question
(most sentences the same) from a different question with a look-alike title, the way git tells
a renamed file by its content — without keeping the text itself.
"""
from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
import zlib

SKETCH_SIZE = 16  # sentence hashes kept per sketch: answers of up to 16 sentences compare exactly
RENAME_SIMILARITY = 0.5  # share of sentences (or code lines) two versions must have in common
TITLE_SIMILARITY = 0.75  # with a very short answer, the titles must be this alike as well
FEW_UNITS = 3  # fewer sentences than this is too little content to go on alone
# A sentence shared by more notes than this ("代码如下：") says nothing about which one is which.
COMMON_UNIT = 64
_UNIT_BREAK = re.compile(r"[。！？!?；;\n]+|\.(?:\s+|$)")


def content_units(text: str) -> list[str]:
    """A text cut into sentences (prose) or lines (code), white space and case ignored."""
    return [unit for unit in ("".join(u.split()) for u in _UNIT_BREAK.split(text.casefold())) if unit]


def fingerprint(text: str) -> tuple[str, str]:
    """(body, sketch) of an answer or a code example.

    The body is equal for two texts with the same sentences in the same order (white space aside).
    The sketch keeps the smallest hashes of the sentences, as hex: two sketches estimate how much
    two texts have in common without keeping either text.
    """
    units = content_units(text)
    if not units:
        return "", ""
    body = hashlib.sha256("\n".join(units).encode("utf-8")).hexdigest()[:16]
    hashes = sorted({zlib.crc32(unit.encode("utf-8")) for unit in units})
    return body, "".join(f"{h:08x}" for h in hashes[:SKETCH_SIZE])


def sketch_values(sketch: str) -> frozenset[int]:
    return frozenset(int(sketch[i:i + 8], 16) for i in range(0, len(sketch), 8))


def similarity(a: str, b: str) -> float:
    """The share of sentences two texts have in common (Jaccard), estimated from their sketches:
    among the smallest hashes of both, the share that is in both."""
    va, vb = sketch_values(a), sketch_values(b)
    if not va or not vb:
        return 0.0
    smallest = sorted(va | vb)[:SKETCH_SIZE]
    return sum(1 for v in smallest if v in va and v in vb) / len(smallest)


def title_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, _plain(a), _plain(b)).ratio()


def _plain(title: str) -> str:
    return "".join(unicodedata.normalize("NFKC", title).casefold().split())


def evidence(new_sketch: str, old_sketch: str, new_title: str | None = None,
             old_title: str | None = None) -> tuple[float, str] | None:
    """(score, why) when the content says two versions are one note; None otherwise. Questions
    pass their titles: a very short answer is evidence only with titles alike too."""
    share = similarity(new_sketch, old_sketch)
    if share < RENAME_SIMILARITY:
        return None
    if min(len(new_sketch), len(old_sketch)) // 8 < FEW_UNITS and new_title is not None:
        if title_similarity(new_title, old_title or "") < TITLE_SIMILARITY:
            return None  # "略。" is the same answer to many questions: not evidence on its own
    why = "same answer" if share == 1.0 else f"answer {round(share * 100)}% the same"
    return share, why
