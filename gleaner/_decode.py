"""The tolerant reader: JSON objects into the client's frozen dataclasses, derived from their field types.

Unknown fields are ignored and missing ones take the field's default, so a newer or older server does not
break the client; a field that is required (no default) or of the wrong type is an `UnexpectedResponse`.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar, cast, get_args, get_origin

from gleaner.errors import UnexpectedResponse
from gleaner.json_types import Json, JsonObject

T = TypeVar("T")
Convert = Callable[[Json, str], Any]


def decode(cls: type[T], data: Json, where: str = "response") -> T:
    """`cls` built from the JSON object `data`; `where` names it in errors."""
    result: T = _decoder(cast(Hashable, cls))(data, where)  # mypy does not see type[T] as hashable
    return result


def decode_all(cls: type[T], data: Json, where: str) -> tuple[T, ...]:
    """A JSON list of objects as a tuple of `cls`."""
    return tuple(decode(cls, item, f"{where}[{i}]") for i, item in enumerate(_list(data, where)))


def member(data: Json, name: str) -> Json:
    """`data[name]` of a JSON object, or an UnexpectedResponse."""
    return _object(data, "response").get(name)


@functools.cache
def _decoder(cls: type[Any]) -> Convert:
    namespace = vars(sys.modules[cls.__module__])
    fields = [_Field.of(f, namespace) for f in dataclasses.fields(cls) if f.name != "raw"]

    def build(data: Json, where: str) -> Any:
        obj = _object(data, where)
        return cls(**{f.name: f.read(obj, where) for f in fields}, raw=obj)

    return build


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    convert: Convert
    default: Callable[[], Any] | None  # None: the field is required

    @classmethod
    def of(cls, field: dataclasses.Field[Any], namespace: dict[str, Any]) -> _Field:
        # the models use `from __future__ import annotations`: their field types are strings of their module
        hint = eval(field.type, namespace) if isinstance(field.type, str) else field.type
        factory = field.default_factory
        default = factory if callable(factory) else None
        if field.default is not dataclasses.MISSING:
            default = _constant(field.default)
        return cls(field.name, _converter(hint), default)

    def read(self, obj: JsonObject, where: str) -> Any:
        value = obj.get(self.name)
        if value is None and self.default is not None:
            return self.default()  # absent (another server version) or null
        return self.convert(value, f"{where}.{self.name}")


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _converter(hint: Any) -> Convert:
    if hint is Json:
        return lambda value, _where: value
    if hint is JsonObject:
        return _object
    if hint in SCALARS:
        return SCALARS[hint]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda value, where: _decoder(hint)(value, where)
    return _composite(hint)


def _composite(hint: Any) -> Convert:
    origin, args = get_origin(hint), get_args(hint)
    if origin is types.UnionType and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        convert = _converter(inner)
        return lambda value, where: None if value is None else convert(value, where)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _converter(args[0])
        return lambda value, where: tuple(item(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))
    if origin is dict and args[0] is str:
        item = _converter(args[1])
        return lambda value, where: {k: item(v, f"{where}.{k}") for k, v in _object(value, where).items()}
    raise TypeError(f"no JSON reader for {hint!r}")


def _wrong(where: str, expected: str, value: Json) -> UnexpectedResponse:
    return UnexpectedResponse(f"{where}: expected {expected}, got {type(value).__name__} {str(value)[:80]!r}")


def _object(value: Json, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _wrong(where, "an object", value)
    return value


def _list(value: Json, where: str) -> list[Json]:
    if not isinstance(value, list):
        raise _wrong(where, "a list", value)
    return value


def _int(value: Json, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(where, "an integer", value)
    return value


def _float(value: Json, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(where, "a number", value)
    return float(value)


def _str(value: Json, where: str) -> str:
    if not isinstance(value, str):
        raise _wrong(where, "a string", value)
    return value


def _bool(value: Json, where: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(where, "true or false", value)
    return value


def _datetime(value: Json, where: str) -> datetime:
    try:
        return datetime.fromisoformat(_str(value, where))
    except ValueError:
        raise _wrong(where, "an RFC 3339 timestamp", value) from None


SCALARS: dict[Any, Convert] = {int: _int, float: _float, str: _str, bool: _bool, datetime: _datetime}
