"""How the Python blocks of one question relate, read from their code (never run here).

A question's blocks run like a notebook (deckgen.kernel): in order, in one folder. Whether a
block also continues the namespace of the blocks before it is what the article means when it
uses a name it never defines but an earlier block does (`model` made in one block, trained in
the next), as pytest-markdown-docs' continuation or mktestdocs' memory=True would have it.
A self-contained block starts afresh, so it prints what it would print alone.
"""
from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__builtins__", "__doc__"}
_NAME_ERROR = re.compile(r"^NameError: name '([^']+)' is not defined")
_NOT_FOUND = re.compile(r"^FileNotFoundError: .*?'([^']+)'\s*$")


@dataclass(frozen=True)
class Names:
    """What a block binds, uses without binding, and names as strings (file names, mostly)."""

    bound: frozenset[str]
    free: frozenset[str]
    strings: frozenset[str]


@lru_cache(maxsize=4096)
def names(code: str) -> Names:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return Names(frozenset(), frozenset(), frozenset())
    bound: set[str] = set()
    used: set[str] = set()
    strings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 200:
            strings.add(node.value)
    return Names(frozenset(bound), frozenset(used - bound - _BUILTINS), frozenset(strings))


def continuations(codes: Sequence[str]) -> list[bool]:
    """For each block, whether it uses a name only an earlier block of the question defines."""
    defined: set[str] = set()
    out = []
    for code in codes:
        found = names(code)
        out.append(bool(found.free & defined))
        defined |= found.bound
    return out


def caused_by(failure: str, earlier: Sequence[tuple[str, bool]]) -> int | None:
    """Which earlier block (index), if any, this block's failure follows from.

    `failure` is the block's exception line; `earlier` holds each earlier block's code and
    whether it failed. A failed block is the cause when this one misses a name it would have
    defined, or a file whose name it writes.
    """
    missing_name = _NAME_ERROR.match(failure)
    missing_file = _NOT_FOUND.match(failure)
    if not (missing_name or missing_file):
        return None
    for index in range(len(earlier) - 1, -1, -1):
        earlier_code, failed = earlier[index]
        if not failed:
            continue
        found = names(earlier_code)
        if missing_name and missing_name.group(1) in found.bound:
            return index
        if missing_file and missing_file.group(1) in found.strings:
            return index
    return None
