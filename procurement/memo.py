"""Remembering the answers of pure, costly functions of polars frames, keyed by the frames' exact content.

The metrics engine and the tier rules cost mostly fixed polars overhead (tens of milliseconds even for a handful
of lines), and each workspace page asks for the same answer as the last one until the data changes. A key is the
digest of every value, type and row order, so a changed line is a different key, never a stale answer.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import polars as pl

T = TypeVar("T")


def content_digest(frame: pl.DataFrame) -> bytes:
    """A digest of the frame's Arrow IPC bytes: equal only for the same values, types, names and row order."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    return hashlib.blake2b(buffer.getvalue(), digest_size=20).digest()


class Memo(Generic[T]):
    """A small least-recently-used memo, safe across threads (a file import runs in a worker thread)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value
