"""Results as dataclasses that read and write one JSON object each, in one place.

loadgen's report travels as JSON (stdout, logs, the bench's result files) and is read again by
other programs, so each kind of result is a dataclass whose fields, in order, are its JSON keys:
``to_json`` writes them in that order and ``from_json`` reads them back, checked, so the same
object gives the same JSON both ways. A field declared ``field(default=None, metadata=OMITTED)``
is left out of the JSON while it is None (and None where absent), as keys only some runs have.
Where two shapes may stand in one place, the type says so (``A | B``) and the one whose keys and
literal values fit is read: a record takes no key it does not know, so at most one fits.

Standard library only: the loadgen image has no JSON-to-dataclass package.
"""

import dataclasses
import types
import typing
from typing import Any, ClassVar, Literal, Self, TypeVar, Union

OMITTED_WHEN_NONE = "omitted_when_none"
OMITTED = {OMITTED_WHEN_NONE: True}  # a field's metadata: no key while it is None
R = TypeVar("R", bound="Record")


class Record:
    """Base of a dataclass that is one JSON object; see the module's docstring."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # every subclass is one

    def to_json(self) -> dict[str, Any]:
        """The fields in order as a JSON object; an OMITTED field is left out while None."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.metadata.get(OMITTED_WHEN_NONE):
                continue
            out[field.name] = encode(value)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The record ``data`` describes; ValueError naming the first key that does not fit."""
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        hints = type_hints(cls)
        fields = dataclasses.fields(cls)
        values = {}
        for field in fields:
            if field.name in data:
                try:
                    values[field.name] = decode(hints[field.name], data[field.name])
                except ValueError as exc:
                    raise ValueError(f"{field.name}: {exc}") from None
            elif not field.metadata.get(OMITTED_WHEN_NONE):
                raise ValueError(f"no key {field.name!r}")
        unknown = [key for key in data if key not in {field.name for field in fields}]
        if unknown:
            raise ValueError(f"unexpected key {unknown[0]!r}")
        return cls(**values)


def extend(cls: type[R], base: Record, **more: Any) -> R:
    """A ``cls`` record holding every field of ``base`` (its base class's) and ``more``."""
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    return cls(**fields, **more)


HINTS: dict[type, dict[str, Any]] = {}  # each class's field types, resolved once


def type_hints(cls: type) -> dict[str, Any]:
    if cls not in HINTS:
        HINTS[cls] = typing.get_type_hints(cls)
    return HINTS[cls]


def encode(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


SCALARS: dict[Any, tuple[type, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int,),
    float: (int, float),  # JSON has one kind of number: 2 stays 2, 2.0 stays 2.0
}


def decode(hint: Any, data: Any) -> Any:
    """``data`` (parsed JSON) as the type ``hint``: records, unions, lists, tuples, dicts with
    string keys, literals and scalars; ValueError where it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return data
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_json(data)
    if origin in (Union, types.UnionType):
        return decode_union(args, data)
    if origin is Literal:
        if data not in args or isinstance(data, bool) != isinstance(args[0], bool):
            raise ValueError(f"expected one of {', '.join(map(repr, args))}, got {data!r}")
        return data
    if hint is type(None):
        if data is not None:
            raise ValueError(f"expected null, got {data!r}")
        return None
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        if origin is list:
            return [decode(args[0], item) for item in data]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in data)
        if len(data) != len(args):
            raise ValueError(f"expected {len(args)} items, got {len(data)}")
        return tuple(decode(arg, item) for arg, item in zip(args, data, strict=True))
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        return {key: decode(args[1], item) for key, item in data.items()}
    kinds = SCALARS.get(hint)
    if kinds is None:
        raise TypeError(f"no JSON form for {hint!r}")
    if not isinstance(data, kinds) or (isinstance(data, bool) and hint is not bool):
        raise ValueError(f"expected {hint.__name__}, got {data!r}")
    return data


def decode_union(options: tuple[Any, ...], data: Any) -> Any:
    """The first of ``options`` that ``data`` fits; else what each said, on one line."""
    if data is None and type(None) in options:
        return None
    complaints = []
    for option in options:
        if option is type(None):
            continue
        try:
            return decode(option, data)
        except ValueError as exc:
            complaints.append(f"as {getattr(option, '__name__', option)}: {exc}")
    raise ValueError(complaints[0] if len(complaints) == 1 else "; ".join(complaints))
