"""JSON as the client receives it (`Json`) and accepts it (`JsonInput`): recursive aliases, no `Any`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["Json", "JsonInput", "JsonObject", "JsonObjectInput"]

# what a response decodes to: plain lists and dicts
Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None
JsonObject: TypeAlias = dict[str, Json]

# what a request may carry: any sequence or mapping of JSON values (covariant, so `dict[str, list[str]]` fits)
JsonInput: TypeAlias = bool | int | float | str | Sequence["JsonInput"] | Mapping[str, "JsonInput"] | None
JsonObjectInput: TypeAlias = Mapping[str, JsonInput]
