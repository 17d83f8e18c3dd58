"""Opaque keyset cursors: base64url JSON of the last row's sort key."""

from __future__ import annotations

import base64
import json
from typing import Any


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
