"""The public package stays typed: every public module has `__all__`, and no public signature mentions Any."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from types import ModuleType
from typing import Any, ForwardRef, TypeVar

import gleaner
from gleaner import json_types, models

# the recursive JSON aliases name themselves ("Json" inside Json), and errors names Job only for type checkers
ALIASES = {**vars(json_types), **vars(models)}


# the services and their common code live in the package too, but are not its API
INTERNAL = {"shared", "services"}


def public_modules() -> list[ModuleType]:
    names = [
        m.name for m in pkgutil.iter_modules(gleaner.__path__) if not m.name.startswith("_") and m.name not in INTERNAL
    ]
    return [gleaner, *(importlib.import_module(f"gleaner.{name}") for name in names)]


def mentions_any(hint: object, seen: set[int] | None = None) -> bool:
    """Whether `hint` is Any or has Any among its arguments, at any depth (recursive aliases visited once)."""
    seen = set() if seen is None else seen
    if hint is Any:
        return True
    if id(hint) in seen or isinstance(hint, ForwardRef | TypeVar | str):
        return False
    seen.add(id(hint))
    return any(mentions_any(arg, seen) for arg in typing.get_args(hint))


def hints(obj: object) -> dict[str, object]:
    return typing.get_type_hints(obj, localns=ALIASES)


def hints_of(obj: object) -> dict[str, object]:
    """The annotations of a public function, or of a class's fields and public methods (`Class.method.arg`)."""
    if inspect.isfunction(obj):
        return dict(hints(obj))
    if not inspect.isclass(obj):
        return {"value": obj}  # a type alias or a constant
    found: dict[str, object] = {f"field {k}": v for k, v in hints(obj).items()}
    for name, member in vars(obj).items():
        if inspect.isfunction(member) and (not name.startswith("_") or name in ("__init__", "__enter__")):
            found |= {f"{name}.{k}": v for k, v in hints(member).items()}
        elif isinstance(member, property) and member.fget is not None:
            found[f"{name} (property)"] = hints(member.fget).get("return")
    return found


def test_every_public_module_declares_all() -> None:
    assert [m.__name__ for m in public_modules() if not hasattr(m, "__all__")] == []


def test_no_public_signature_field_or_alias_mentions_any() -> None:
    leaks = [
        f"{module.__name__}.{name}: {where}"
        for module in public_modules()
        for name in module.__all__
        for where, hint in hints_of(getattr(module, name)).items()
        if mentions_any(hint)
    ]
    assert leaks == []


def test_the_any_finder_finds_it_at_any_depth() -> None:
    def leaky(x: int) -> dict[str, list[Any]]:
        return {}

    def clean(x: int) -> dict[str, list[gleaner.Json]]:
        return {}

    assert any(mentions_any(h) for h in hints_of(leaky).values())
    assert not any(mentions_any(h) for h in hints_of(clean).values())
