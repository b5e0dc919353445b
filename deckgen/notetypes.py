"""The two note types deckgen ships: their fixed ids, their fields, and their templates.

The fields are designed once and kept: Anki matches a note type by id and then by its field
names, and a field added, removed or renamed later makes it split the notes into a second note
type on re-import (../shared/docs/anki-facts.md). Templates and CSS may change freely.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import genanki

QA_MODEL_ID = 1_730_412_023
CODE_MODEL_ID = 1_730_412_024

QA_FIELDS = ("Question", "Answer", "Section", "Source")
# What each field holds changed with the code notes that answer (#10); their names cannot.
CODE_FIELDS = (
    "Question",  # the question's title and a line of the code that tells the example apart
    "Code",  # the code as the front shows it: highlighted, its comments left out
    "RawCode",  # the code as written with its comments, highlighted; "" when it has none
    "Language",
    "Output",  # HTML: what it really printed; an exception's line, its traceback folded
    "Status",  # ran | failed | timed out | skipped
    "Reason",  # why it failed or was skipped
    "ExitCode",  # the article's explanation of the block (HTML); the exit status is in Reason
    "ClaimedOutput",  # the article's output, when shown: not run, or not what it really prints
    "OutputCheck",  # how the article's output compares with the real one
    "Section",
    "Source",
)


class TemplateError(Exception):
    """A template file is missing or unreadable; the message names it."""


@dataclass(frozen=True)
class NoteTypeSpec:
    key: str  # its name in the lock file
    model_id: int
    name: str
    fields: tuple[str, ...]
    folder: str  # its templates' folder under templates/


QA = NoteTypeSpec("qa", QA_MODEL_ID, "deckgen Q&A", QA_FIELDS, "qa")
CODE = NoteTypeSpec("code", CODE_MODEL_ID, "deckgen Code", CODE_FIELDS, "code")
NOTE_TYPES = (QA, CODE)
KEY_OF_MODEL_ID = {spec.model_id: spec.key for spec in NOTE_TYPES}  # Anki's id → the lock's name


def default_templates_dir() -> Path:
    """The templates shipped in the wheel, or the project's templates/ in a source checkout."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read template: {exc}") from None


def load_model(spec: NoteTypeSpec, templates_dir: Path, extra_css: str = "") -> genanki.Model:
    folder = templates_dir / spec.folder
    css = _read(templates_dir / "card.css") + "\n" + extra_css
    return genanki.Model(
        spec.model_id,
        spec.name,
        fields=[{"name": name} for name in spec.fields],
        templates=[
            {
                "name": "Card 1",
                "qfmt": _read(folder / "front.html"),
                "afmt": _read(folder / "back.html"),
            }
        ],
        css=css,
        sort_field_index=0,
    )
