"""Validating TOML tables against a small schema, with errors that name the key path."""

from __future__ import annotations

from typing import Any, Callable

REQUIRED = object()
Spec = tuple[Callable[[Any], bool], Any]  # (type check, default or REQUIRED)


class ConfigError(Exception):
    """services.toml (or an override) is wrong; the message names the key."""


def str_(v: Any) -> bool:
    return isinstance(v, str)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def num(v: Any) -> bool:
    return is_int(v) or isinstance(v, float)


def strlist(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def table(v: Any) -> bool:
    return isinstance(v, dict)


KIND = {str_: "a string", is_int: "an integer", num: "a number", strlist: "a list of strings", table: "a table"}


def fields(data: Any, spec: dict[str, Spec], where: str) -> dict[str, Any]:
    """The table's values by key, defaults filled in; unknown, missing or mistyped keys raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in data:
        if key not in spec:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(spec)})")
    out = {}
    for key, (check, default) in spec.items():
        if key not in data:
            if default is REQUIRED:
                raise ConfigError(f"{where}.{key}: required")
            out[key] = default
        elif not check(data[key]):
            raise ConfigError(f"{where}.{key}: expected {KIND[check]}")
        else:
            out[key] = data[key]
    return out


def positive(value: float, where: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}")
