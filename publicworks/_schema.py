"""Validating TOML tables against a small schema, with errors that name the key path."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable
from typing import Any

REQUIRED = object()
Spec = tuple[Callable[[Any], bool], Any]  # (type check, default or REQUIRED)


class ConfigError(Exception):
    """services.toml (or an override) is wrong; the message names the key."""


def str_(v: Any) -> bool:
    return isinstance(v, str)


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def num(v: Any) -> bool:
    return is_int(v) or isinstance(v, float)


def strlist(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def table(v: Any) -> bool:
    return isinstance(v, dict)


KIND: dict[Callable[[Any], bool], str] = {
    str_: "a string",
    boolean: "true or false",
    is_int: "an integer",
    num: "a number",
    strlist: "a list of strings",
    table: "a table",
}


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


def bounded(value: float, where: str, low: float, high: float, allow_low: bool = False) -> float:
    """A finite number in (low, high] — or [low, high] with `allow_low` — as a float."""
    if not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    if value < low or (value == low and not allow_low) or value > high:
        lower = f">= {low:g}" if allow_low else f"> {low:g}"
        raise ConfigError(f"{where}: must be {lower} and <= {high:g}, got {value:g}")
    return float(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def abs_path(value: str, where: str) -> str:
    """An absolute, normalised path: no '..', no '//', no control characters."""
    if not value.startswith("/"):
        raise ConfigError(f"{where}: must be an absolute path")
    if _CONTROL.search(value):
        raise ConfigError(f"{where}: must not contain control characters")
    clean = posixpath.normpath(value)
    if clean != value.rstrip("/") and value != "/" or ".." in value.split("/"):
        raise ConfigError(f"{where}: must be a normalised path (no '..', '.', or '//'), e.g. {clean}")
    return clean
