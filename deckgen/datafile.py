"""Dataclasses as JSON and back, checked against their type hints: how caches keep the model.

A cache file is data anyone who can write the folder could have made, so reading one runs no
code (unlike pickle) and gives back only values of the declared types: `load` raises
`DataError` on anything else, and the caller treats the file as missing.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class DataError(ValueError):
    """The data does not have the shape of the type asked for: `where` in it (`.mod`, `[3]`,
    `["key"]`, from the value asked for) and what is wrong there (`is null, not a string`)."""

    def __init__(self, problem: str, where: str = "") -> None:
        super().__init__(f"{where} {problem}" if where else problem)
        self.problem = problem
        self.where = where

    def inside(self, part: str) -> DataError:
        """The same problem, one level further out: `part` is where it lies in its container."""
        return DataError(self.problem, part + self.where)


def dump(value: Any) -> Any:
    """`value` (dataclasses, lists, tuples, dicts, paths, plain values) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [dump(item) for item in value]
    if isinstance(value, dict):
        return {str(key): dump(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise DataError(f"cannot store a {type(value).__name__}")


def load(kind: type[T], data: Any) -> T:
    """`data` (as `dump` made it) back as a `kind`; DataError if it is anything else."""
    return _reader(kind)(data)


Reader = typing.Callable[[Any], Any]


_EXPECTED = {str: "a string", int: "a whole number", bool: "true or false", float: "a number"}


@cache
def _reader(kind: Any) -> Reader:
    """A function reading data as `kind`, made once per type (a cache holds thousands)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        nullable = type(None) in typing.get_args(kind)
        options = [_reader(option) for option in typing.get_args(kind) if option is not type(None)]

        def union(data: Any) -> Any:
            if data is None and nullable:
                return None
            problems = []
            for option in options:
                try:
                    return option(data)
                except DataError as error:
                    problems.append(error)
            raise problems[0]  # what is wrong for the first type it may have
        return union
    if kind is type(None):
        return lambda data: data if data is None else _fail("is not null")
    if origin in (list, tuple):
        arguments = typing.get_args(kind)
        if origin is tuple and not (len(arguments) == 2 and arguments[1] is Ellipsis):
            readers = [_reader(a) for a in arguments]

            def fixed(data: Any) -> Any:
                if not isinstance(data, list) or len(data) != len(readers):
                    raise DataError(f"is {shown(data)}, not a list of {len(readers)}")
                items = []
                for index, (read, item) in enumerate(zip(readers, data)):
                    try:
                        items.append(read(item))
                    except DataError as error:
                        raise error.inside(f"[{index}]") from None
                return tuple(items)
            return fixed
        item_reader = _reader(arguments[0])
        container = tuple if origin is tuple else list

        def sequence(data: Any) -> Any:
            if not isinstance(data, list):
                raise DataError(f"is {shown(data)}, not a list")
            items = []
            for index, item in enumerate(data):
                try:
                    items.append(item_reader(item))
                except DataError as error:
                    raise error.inside(f"[{index}]") from None
            return items if container is list else tuple(items)
        return sequence
    if origin is dict:
        key_kind, value_kind = typing.get_args(kind)
        if key_kind is not str:
            raise DataError(f"cannot read a {kind}")
        value_reader = _reader(value_kind)

        def mapping(data: Any) -> Any:
            if not isinstance(data, dict):
                raise DataError(f"is {shown(data)}, not an object")
            values = {}
            for key, item in data.items():
                try:
                    values[key] = value_reader(item)
                except DataError as error:
                    raise error.inside(f"[{shown(key)}]") from None
            return values
        return mapping
    if kind is Path:
        return lambda data: Path(data) if isinstance(data, str) else _fail(f"is {shown(data)}, not a path")
    if kind in (str, int, bool):
        # bool is an int to Python, never to us
        return lambda data: data if type(data) is kind else _fail(f"is {shown(data)}, not {_EXPECTED[kind]}")
    if kind is float:
        return lambda data: data if type(data) in (float, int) else _fail(f"is {shown(data)}, not a number")
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        declared = [f for f in dataclasses.fields(kind) if f.init]
        fields = {f.name: _reader(hints[f.name]) for f in declared}
        required = {f.name for f in declared
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}

        def record(data: Any) -> Any:
            if not isinstance(data, dict):
                raise DataError(f"is {json_type(data)}, not an object")
            unknown = data.keys() - fields.keys()
            if unknown:
                raise DataError(f"has an unknown field '{min(unknown)}'")
            values = {}
            for name, read in fields.items():  # the first problem in the order of the fields
                if name in data:
                    try:
                        values[name] = read(data[name])
                    except DataError as error:
                        raise error.inside(f".{name}") from None
                elif name in required:
                    raise DataError(f"lacks its '{name}'")
            return kind(**values)
        return record
    raise DataError(f"cannot read a {kind}")


def shown(value: object) -> str:
    """A value as JSON on one line, shortened: for a message."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def json_type(value: object) -> str:
    """What kind of JSON value `value` is, in words: `a number`, `null`."""
    if value is None:
        return "null"
    return {bool: "true or false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _fail(message: str) -> Any:
    raise DataError(message)
