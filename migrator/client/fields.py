"""Reading the fields of a msgpack map that came over the wire, with one clear error for
whatever is missing or of the wrong type."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")


class Fields:
    """The fields of ``data``, which must be a map; ``error(message)`` builds the exception
    raised for a field that is missing or malformed (or for ``data`` not being a map)."""

    def __init__(self, data: object, *, what: str, error: Callable[[str], Exception]) -> None:
        self._error = error
        self._what = what
        if not isinstance(data, dict):
            raise error(f"{what} must be a map, not {type(data).__name__}")
        self.data: Mapping[str, Any] = data

    def text(self, key: str) -> str:
        return self._typed(key, str, "text")

    def binary(self, key: str) -> bytes:
        return self._typed(key, bytes, "binary")

    def flag(self, key: str, default: bool | None = None) -> bool:
        if default is not None and self.data.get(key) is None:
            return default
        return self._typed(key, bool, "boolean")

    def integer(self, key: str, *, minimum: int | None = None) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        if minimum is not None and value < minimum:
            raise self._error(f"{self._what}: field '{key}' must be at least {minimum}")
        return value

    def mapping(self, key: str, default: Mapping[str, Any] | None = None) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None and default is not None:
            return dict(default)
        return dict(self._typed(key, dict, "a map"))

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def optional_binary(self, key: str) -> bytes | None:
        return None if self.data.get(key) is None else self.binary(key)

    def choice(self, key: str, kind: type[E]) -> E:
        value = self._get(key)
        try:
            return kind(value)
        except ValueError:
            raise self._error(
                f"{self._what}: field '{key}' has unknown value {value!r:.40}"
            ) from None

    def _get(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise self._error(f"{self._what}: field '{key}' is missing") from None

    def _typed(self, key: str, kind: type[T], label: str) -> T:
        value = self._get(key)
        if not isinstance(value, kind):
            raise self._wrong(key, label, value)
        return value

    def _wrong(self, key: str, label: str, value: object) -> Exception:
        return self._error(f"{self._what}: field '{key}' must be {label}, not {value!r:.40}")
