"""The reader process of a large file import: the same batches as reading in-process, at a lower priority."""

import os

from importers.prepare import READER_NICENESS, FileBatches
from tests.support.paths import FEEDS_DIR

CF_2025 = FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json"


def _niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_reader_process_works_at_lower_priority_and_gives_the_same_batches() -> None:
    inline = list(FileBatches("contracts_finder", [CF_2025], batch_size=50, parallel=False))
    with FileBatches("contracts_finder", [CF_2025], batch_size=50, parallel=True) as batches:
        first = next(batches)
        child = batches._child
        assert child is not None
        # The child sets its niceness before it reads anything, so it is set once a batch has arrived.
        assert _niceness(child.pid) == min(_niceness(os.getpid()) + READER_NICENESS, 19)
        parallel = [first, *batches]
    assert len(inline) > 1
    assert [b.releases for b in parallel] == [b.releases for b in inline]
    assert [b.checkpoint for b in parallel] == [b.checkpoint for b in inline]
    assert [sorted(b.compiled) for b in parallel] == [sorted(b.compiled) for b in inline]
