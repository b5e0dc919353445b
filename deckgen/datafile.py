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
    return _load(kind, data)


def _load(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            try:
                return _load(option, data)
            except DataError:
                continue
        raise DataError(f"{data!r:.40} is none of {kind}")
    if kind is type(None):
        if data is None:
            return None
        raise DataError("expected null")
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise DataError(f"expected a list, not {type(data).__name__}")
        arguments = typing.get_args(kind)
        if origin is tuple and not (len(arguments) == 2 and arguments[1] is Ellipsis):
            if len(arguments) != len(data):
                raise DataError("a tuple of the wrong length")
            return tuple(_load(a, item) for a, item in zip(arguments, data))
        items = [_load(arguments[0], item) for item in data]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        key_kind, value_kind = typing.get_args(kind)
        if not isinstance(data, dict) or key_kind is not str:
            raise DataError("expected an object")
        return {key: _load(value_kind, item) for key, item in data.items()}
    if kind is Path:
        if not isinstance(data, str):
            raise DataError("expected a path")
        return Path(data)
    if kind in (str, int, float, bool):
        # bool is an int to Python, never to us
        if type(data) is kind or (kind is float and type(data) is int):
            return data
        raise DataError(f"expected {kind.__name__}, not {type(data).__name__}")
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise DataError(f"expected a {kind.__name__}")
        hints = _hints(kind)
        known = {f.name for f in dataclasses.fields(kind) if f.init}
        if set(data) - known:
            raise DataError(f"unknown fields in a {kind.__name__}: {sorted(set(data) - known)}")
        values = {name: _load(hints[name], item) for name, item in data.items()}
        try:
            return kind(**values)
        except TypeError as error:  # a field without a default is missing
            raise DataError(str(error)) from None
    raise DataError(f"cannot read a {kind}")


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)
