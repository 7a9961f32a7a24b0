"""Metrics answers kept in this process by data version: a repeat of a question about unchanged data is served
from memory, and clients revalidate with the ETag (If-None-Match -> 304 Not Modified).

The data version is read on every request, never remembered; concurrent requests share one read that started
after each of them asked (``procurement.coalesce``), so a warm answer costs at most that one shared query. On
SQLite it is not read again while the file's change counter has not moved since the last read started."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from procurement.coalesce import Coalesced
from procurement.db import ALCHEMY_STATE_KEY, changes_of
from procurement.suppliers.tiers import data_version

DataVersion = tuple[str, int, bool] | None
_VERSIONS_KEY = "localvalue_data_versions"  # app state: this process's shared data-version read

R = TypeVar("R")
MAX_ENTRIES = 128  # answers for all anchors can be megabytes; this bounds the memory held


class AnswerCache:
    """A bounded LRU of encoded answers (responses ready to send) keyed by (data version, question). Answers of
    different kinds share it: the question in each tag decides the kind, so ``answer`` gives back what it stored."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, etag: str) -> object | None:
        with self._lock:
            body = self._entries.get(etag)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(etag)
            self.hits += 1
            return body

    def put(self, etag: str, body: object) -> None:
        with self._lock:
            self._entries[etag] = body
            self._entries.move_to_end(etag)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


ANSWERS = AnswerCache()


async def _read_version(engine: AsyncEngine) -> DataVersion:
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN/ROLLBACK round trips
        async with AsyncSession(bind=connection) as session:
            return await data_version(session)


def shared_versions(state: Any) -> Coalesced[DataVersion]:
    """The app's shared reader of the current data version (``state``: the Litestar app's state)."""
    versions: Coalesced[DataVersion] | None = state.get(_VERSIONS_KEY)
    if versions is None:
        engine: AsyncEngine = state[ALCHEMY_STATE_KEY].get_engine()
        versions = state.setdefault(_VERSIONS_KEY, Coalesced(lambda: _read_version(engine), changes=changes_of(engine)))
    return versions


async def etag_for(versions: Coalesced[DataVersion], question: tuple[object, ...]) -> str | None:
    """A strong validator for this question about the data as it is now; None when there is no data version."""
    version = await versions.get()
    if version is None:
        return None
    epoch, number, _usable = version
    return _etag(epoch, number, question)


@lru_cache(maxsize=1024)  # the same question about the same data asked again: the same tag, without hashing again
def _etag(epoch: str, number: int, question: tuple[object, ...]) -> str:
    digest = hashlib.sha256(repr((epoch, number, question)).encode()).hexdigest()[:32]
    return f'"{digest}"'


def not_modified(if_none_match: str | None, etag: str | None) -> bool:
    if etag is None or not if_none_match:
        return False
    wanted = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in wanted or "*" in wanted


async def answer(etag: str | None, compute: Callable[[], Awaitable[R]]) -> R:
    if etag is not None and (body := ANSWERS.get(etag)) is not None:
        return cast("R", body)
    body = await compute()
    if etag is not None:
        ANSWERS.put(etag, body)
    return body
