"""The article layout: `# 章节` section headings, `## 【一】问题` question headings below them; the
answer runs to the next heading of the question's level or shallower. The prose between a
section's heading and the heading after it is the section's introduction (its deck's description)."""
from __future__ import annotations

from deckgen.ids import QUESTION_MARKER, strip_number
from deckgen.model import ERROR, WARNING, Description, Question
from deckgen.parse.answers import cut_answer, make_question
from deckgen.parse.structure import Doc, Heading
from deckgen.parse.text import section_name, as_tag


def article_questions(doc: Doc) -> tuple[list[Question], list[Description]]:
    """The article's questions, and the introductions of the sections that have questions."""
    questions: list[Question] = []
    descriptions: dict[int, Description | None] = {}  # by the section heading's line
    headings = doc.headings
    position = {h.line: k for k, h in enumerate(headings)}
    is_question = [bool(QUESTION_MARKER.match(h.text)) for h in headings]
    # the nearest preceding non-question heading of each level, kept as a stack
    open_sections: list[Heading] = []
    for k, heading in enumerate(headings):
        if not is_question[k]:
            while open_sections and open_sections[-1].level >= heading.level:
                open_sections.pop()
            open_sections.append(heading)
            continue
        later = k + 1
        while later < len(headings) and not (
            is_question[later] or headings[later].level <= heading.level
        ):
            later += 1
        end = headings[later].line if later < len(headings) else len(doc.lines)
        section = next((s for s in reversed(open_sections) if s.level < heading.level), None)
        title = strip_number(heading.text)
        if not title:
            doc.diag(heading.line, ERROR, "question heading has no title: no card")
            continue
        if section is None:
            doc.diag(heading.line, ERROR, "question outside any section: no card")
            continue
        name = section_name(section.text)
        answer = cut_answer(doc, heading.body_start, end, inner=headings[k + 1 : later])
        if answer is None:
            doc.diag(heading.line, WARNING, "empty answer: no card")
            continue
        questions.append(
            make_question(doc, heading, title, answer, section=name, deck=(name,), tags=(as_tag(name),))
        )
        if section.line not in descriptions:
            following = headings[position[section.line] + 1]  # exists: this question's heading
            intro = cut_answer(doc, section.body_start, following.line, inner=())
            descriptions[section.line] = (
                None if intro is None else Description(name, intro.text, doc.path, intro.line + 1)
            )
    return questions, [d for d in descriptions.values() if d is not None]

