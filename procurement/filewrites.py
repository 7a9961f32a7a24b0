"""Whether a file has been written since last asked, from Linux's inotify: one ``ioctl`` when nothing happened.

The kernel queues an event inside every ``write`` to the watched file before that call returns, so a write that
has returned is always in the queue when ``FileWrites.count`` next looks (``FIONREAD``, well under a
microsecond). A watch is this process's own: made after a fork, a copy inherited from the parent would share the
parent's queue, and events read by one would be lost to the other.

Only what the kernel sees: writes through another machine's mount of a network file system are not reported.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import fcntl
import os
import sys
import termios
import weakref
from pathlib import Path

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
# Writes, truncation, attribute and link-count changes, and the file itself deleted or moved away.
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_EVENTS = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_DELETE_SELF | _IN_MOVE_SELF


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:  # pragma: no cover - every Linux has a C library
        return None


_LIBC = _libc()
_ALL: weakref.WeakSet[FileWrites] = weakref.WeakSet()


def _forget_watches() -> None:
    for writes in _ALL:
        writes.forked()


os.register_at_fork(after_in_child=_forget_watches)


class FileWrites:
    """Counts the batches of writes to one file seen so far; None when the file cannot be watched here (not
    Linux, no inotify instance left) or after it was deleted or moved (the watch then follows a file no one
    uses). A caller then asks the file itself instead."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._count = 0
        self._lost = _LIBC is None
        self._pending = array.array("i", [0])
        _ALL.add(self)

    def count(self) -> int | None:
        if self._lost:
            return None
        if self._fd is None and not self._watch():
            return None
        assert self._fd is not None
        fcntl.ioctl(self._fd, termios.FIONREAD, self._pending)
        if self._pending[0]:
            self._drain()
        return None if self._lost else self._count

    def _watch(self) -> bool:
        assert _LIBC is not None
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            self._lost = True
            return False
        if _LIBC.inotify_add_watch(fd, os.fsencode(self._path), _EVENTS) < 0:
            os.close(fd)
            self._lost = True
            return False
        self._fd = fd
        # Writes before the watch are not in its queue: a count from before it is not comparable with one after.
        self._count += 1
        return True

    def _drain(self) -> None:
        assert self._fd is not None
        events = b""
        try:
            while chunk := os.read(self._fd, 65536):
                events += chunk
        except BlockingIOError:
            pass
        self._count += 1
        # struct inotify_event: wd, mask, cookie, len, then len bytes of name (none for a watched file).
        offset = 0
        while offset + 16 <= len(events):
            mask = int.from_bytes(events[offset + 4 : offset + 8], sys.byteorder)
            if mask & (_IN_DELETE_SELF | _IN_MOVE_SELF):
                self.close()
                self._lost = True
            offset += 16 + int.from_bytes(events[offset + 12 : offset + 16], sys.byteorder)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        # Each watch is an inotify instance, of which a user may have only so many (128 by default).
        self.close()

    def forked(self) -> None:
        """In a new child process: the next count makes a watch of its own (the parent keeps the inherited one)."""
        if self._fd is not None:
            os.close(self._fd)  # the child's copy of the descriptor only
        self._fd = None
