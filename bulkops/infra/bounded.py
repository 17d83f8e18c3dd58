"""The per-process caches' one eviction rule: at most `size` entries, the least recently used forgotten
first (`cachetools.LRUCache`)."""

from __future__ import annotations

from typing import TypeVar

from cachetools import LRUCache

K = TypeVar("K")
V = TypeVar("V")


class Bounded(LRUCache[K, V]):
    def __init__(self, size: int) -> None:
        super().__init__(maxsize=size)

    def put(self, key: K, value: V) -> None:
        self[key] = value
