"""Keyset paging, once for every list: opaque cursors (base64url JSON of the last row's sort key)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession


class BadCursor(ValueError):
    pass


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([str(v) if not isinstance(v, int) else v for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except ValueError as exc:
        raise BadCursor("cursor is not valid") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise BadCursor("cursor is not valid")
    return values


def int32(value: Any) -> int:
    """A cursor value for a 32-bit column: a forged huge number must be a 400, not a database error."""
    if not isinstance(value, int) or not 0 <= value < 2**31:
        raise BadCursor("cursor is not valid")
    return value


async def keyset_page(
    session: AsyncSession,
    stmt: Select[Any],
    keys: Sequence[ColumnElement[Any]],
    parsers: Sequence[Callable[[Any], Any]],
    *,
    cursor: str | None,
    limit: int,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of `stmt` ordered by `keys` (unique together), after `cursor`; and the next cursor."""
    if cursor:
        try:
            after = [parse(v) for parse, v in zip(parsers, decode_cursor(cursor, len(keys)), strict=True)]
        # BadCursor is a ValueError; a value of the wrong JSON type may raise any of the others.
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise BadCursor("cursor is not valid") from exc
        row_key, last = tuple_(*keys), tuple_(*map(literal, after))
        stmt = stmt.where(row_key < last if descending else row_key > last)
    stmt = stmt.order_by(*(k.desc() if descending else k for k in keys)).limit(limit + 1)
    rows = list((await session.execute(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    last_row = rows[-1]._mapping if rows else None
    next_cursor = encode_cursor(*(last_row[k] for k in keys)) if more and last_row is not None else None
    return rows, next_cursor
