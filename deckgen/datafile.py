"""Dataclasses as JSON and back, checked against their type hints: how caches keep the model.

A cache file is data anyone who can write the folder could have made, so reading one runs no
code (unlike pickle) and gives back only values of the declared types: `load` raises
`DataError` on anything else, and the caller treats the file as missing.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class DataError(ValueError):
    """The data does not have the shape of the type asked for."""


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


@cache
def _reader(kind: Any) -> Reader:
    """A function reading data as `kind`, made once per type (a cache holds thousands)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [_reader(option) for option in typing.get_args(kind)]

        def union(data: Any) -> Any:
            for option in options:
                try:
                    return option(data)
                except DataError:
                    continue
            raise DataError(f"{data!r:.40} is none of {kind}")
        return union
    if kind is type(None):
        return lambda data: data if data is None else _fail("expected null")
    if origin in (list, tuple):
        arguments = typing.get_args(kind)
        if origin is tuple and not (len(arguments) == 2 and arguments[1] is Ellipsis):
            readers = [_reader(a) for a in arguments]

            def fixed(data: Any) -> Any:
                if not isinstance(data, list) or len(data) != len(readers):
                    raise DataError("expected a list of the tuple's length")
                return tuple(read(item) for read, item in zip(readers, data))
            return fixed
        item_reader = _reader(arguments[0])
        container = tuple if origin is tuple else list

        def sequence(data: Any) -> Any:
            if not isinstance(data, list):
                raise DataError(f"expected a list, not {type(data).__name__}")
            return container(item_reader(item) for item in data)
        return sequence
    if origin is dict:
        key_kind, value_kind = typing.get_args(kind)
        if key_kind is not str:
            raise DataError(f"cannot read a {kind}")
        value_reader = _reader(value_kind)

        def mapping(data: Any) -> Any:
            if not isinstance(data, dict):
                raise DataError("expected an object")
            return {key: value_reader(item) for key, item in data.items()}
        return mapping
    if kind is Path:
        return lambda data: Path(data) if isinstance(data, str) else _fail("expected a path")
    if kind in (str, int, bool):
        # bool is an int to Python, never to us
        return lambda data: data if type(data) is kind else _fail(
            f"expected {kind.__name__}, not {type(data).__name__}")
    if kind is float:
        return lambda data: data if type(data) in (float, int) else _fail("expected a number")
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name: _reader(hints[f.name]) for f in dataclasses.fields(kind) if f.init}

        def record(data: Any) -> Any:
            if not isinstance(data, dict):
                raise DataError(f"expected a {kind.__name__}")
            try:
                values = {name: fields[name](item) for name, item in data.items()}
            except KeyError as error:
                raise DataError(f"unknown field in a {kind.__name__}: {error}") from None
            try:
                return kind(**values)
            except TypeError as error:  # a field without a default is missing
                raise DataError(str(error)) from None
        return record
    raise DataError(f"cannot read a {kind}")


def _fail(message: str) -> Any:
    raise DataError(message)
