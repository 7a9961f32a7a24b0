"""Shared reads (procurement.coalesce): concurrent callers share one run, and none is served by a run that began
before it asked. Driven step by step with events, never by time."""

from __future__ import annotations

import asyncio

import pytest

from procurement.coalesce import Coalesced, CoalescedByKey


class Reads:
    """A read that waits until released, numbering its runs."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> int:
        self.started += 1
        run = self.started
        await self.release.wait()
        if self.fail:
            raise RuntimeError(f"run {run} failed")
        return run


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_share_one_run_and_latecomers_wait_for_a_fresh_one() -> None:
    reads = Reads()
    shared = Coalesced(reads)
    first = asyncio.ensure_future(shared.get())
    await _settle()
    # Both ask while run 1 is under way: it may have begun before a write they saw, so they get run 2.
    late = [asyncio.ensure_future(shared.get()) for _ in range(2)]
    await _settle()
    assert reads.started == 1
    reads.release.set()
    assert await first == 1
    assert await asyncio.gather(*late) == [2, 2]
    assert reads.started == 2
    assert await shared.get() == 3  # nothing under way: a run of its own


async def test_a_failed_run_fails_its_callers_and_the_next_caller_runs_again() -> None:
    reads = Reads()
    reads.fail = True
    reads.release.set()
    shared = Coalesced(reads)
    with pytest.raises(RuntimeError, match="run 1"):
        await shared.get()
    reads.fail = False
    assert await shared.get() == 2


async def test_a_cancelled_caller_leaves_the_run_to_the_others() -> None:
    reads = Reads()
    shared = Coalesced(reads)
    leaving = asyncio.ensure_future(shared.get())
    staying = asyncio.ensure_future(shared.get())
    await _settle()
    leaving.cancel()
    reads.release.set()
    assert await staying == 2
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_keys_do_not_share() -> None:
    seen: list[str] = []

    async def read(key: str) -> str:
        seen.append(key)
        return key.upper()

    shared = CoalescedByKey(read, max_keys=2)
    assert await asyncio.gather(shared.get("a"), shared.get("b"), shared.get("c")) == ["A", "B", "C"]
    assert sorted(seen) == ["a", "b", "c"]
