"""File names: natural ordering (``2.csv`` before ``10.csv``, SPEC §1), and names holding
bytes that are not UTF-8 (the file system hands them over as surrogate escapes)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str | Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key splitting ``name`` into text and integer parts (``acc_10`` -> ('acc_', 10)).

    Text parts compare case-insensitively; the full name breaks ties so the order is total.
    """
    text = name.name if isinstance(name, Path) else str(name)
    parts: list[tuple[int, int | str]] = []
    for i, piece in enumerate(_DIGITS.split(text)):
        if i % 2:
            parts.append((1, int(piece)))
        elif piece:
            parts.append((0, piece.lower()))
    parts.append((2, text))
    return tuple(parts)


def natural_sorted(items: Iterable[T], key: Callable[[T], str | Path] | None = None) -> list[T]:
    """``items`` in natural order of ``key(item)`` (the item itself by default)."""
    get = key if key is not None else (lambda item: item)  # type: ignore[assignment,return-value]
    return sorted(items, key=lambda item: natural_key(get(item)))  # type: ignore[arg-type]


def file_number(name: str | Path) -> int | None:
    """The last integer in a file's stem (``acc_00012.csv`` -> 12), or None."""
    stem = name.stem if isinstance(name, Path) else Path(str(name)).stem
    found = _DIGITS.findall(stem)
    return int(found[-1]) if found else None


def is_utf8_name(name: str) -> bool:
    """False for a name holding undecodable bytes (surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(name: str) -> str:
    """``name`` with undecodable bytes shown as ``\\xNN`` (safe to display and store)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")
