"""The event loop our long-running processes use: uvloop where it exists (not on Windows).

The worker's per-order path is a few socket round trips per order; uvloop's cheaper reader
registration and thread wake-ups are worth about a tenth of its CPU. Workflow code is unaffected:
the SDK runs workflows on its own deterministic loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - platforms without uvloop
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    if uvloop is None:  # pragma: no cover
        return asyncio.run(main)
    return uvloop.run(main)
