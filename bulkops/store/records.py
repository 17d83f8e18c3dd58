"""Rows as typed records: what each repository (`operations`, `items`, `orders`) reads back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


@functools.cache
def _names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def from_row(cls: type[R], row: Row[Any], **convert: Callable[[Any], Any]) -> R:
    """The `cls` record of `row` (which has at least its columns): `convert` turns a stored value into
    its field's type (a status into its enum)."""
    values = {name: getattr(row, name) for name in _names(cls)}
    for name, to_type in convert.items():
        values[name] = to_type(values[name])
    return cls(**values)
