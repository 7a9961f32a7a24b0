"""Releases -> what the import service stores: canonical JSON, content hash, and every ocid compiled and mapped.

All of this depends only on the releases themselves, so for a large file it runs in a child process, one
batch ahead of the process that writes to the database (the other half of an import's work), on the second
core. The service still decides what is new: it uses a compiled ocid only if it was compiled from exactly
the latest stored version of each of that ocid's releases (``CompiledOcid.basis``), and compiles it again
itself otherwise (an ocid whose releases arrived in different batches or runs).

Child protocol: ``python -m importers.prepare`` reads its parameters as JSON on stdin and writes msgpack
messages, each preceded by its length, to stdout: a batch, an error, or done.
"""

import contextlib
import datetime as dt
import gc
import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec

from importers.files import CONTRACTS_FINDER, SOURCE_LABEL, iter_releases_from_file, package_source, release_source
from importers.ocds import (
    ERROR,
    WARNING,
    Note,
    Procurement,
    canonical_json,
    compile_procurement,
    is_legacy_cf,
    map_compiled,
    parse_instant,
    release_identity,
    upgrade_legacy,
)

# Files smaller than this are prepared in-process: starting the child costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
# The child runs at a lower priority. The writing process and the database server behind it are an import's critical
# path (each batch waits on both in turn), and the child has slack: it catches up while they wait for each other.
# On two cores with PostgreSQL beside it, an even share for all three made imports about 4% slower.
READER_NICENESS = 10
_LENGTH = struct.Struct("<Q")
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


class PreparedRelease(msgspec.Struct, frozen=True, gc=False, array_like=True):
    ocid: str
    release_id: str
    content_hash: str  # sha256 hex of ``data``
    data: bytes  # canonical JSON (sorted keys, exact numbers): what the raw archive stores
    release_date: dt.datetime | None
    null_free: bool  # no JSON null anywhere, which lets a lone release skip ocdsmerge

    def release(self) -> dict[str, Any]:
        return decode_release(self.data)


def decode_release(data: bytes | str) -> dict[str, Any]:
    """A release from its canonical JSON (as prepared, or as the raw archive stores it), numbers exact."""
    value: dict[str, Any] = _DECODER.decode(data)
    return value


class CompiledOcid(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One ocid compiled from exactly the releases in ``basis`` ((release id, content hash) pairs)."""

    basis: frozenset[tuple[str, str]]
    procurement: Procurement | None  # None: it could not be compiled (a note says why)
    notes: tuple[Note, ...]
    last_date: dt.datetime | None  # the latest release date among them


class PreparedBatch(msgspec.Struct, array_like=True):
    """A batch of releases ready to store. ``skipped``: releases a reader or ``prepare_batch`` dropped (each
    with a note); ``failed``: pages or files that could not be read further; ``checkpoint``: where a resumed
    file import continues once this batch is stored."""

    releases: list[PreparedRelease] = msgspec.field(default_factory=list)
    compiled: dict[str, CompiledOcid] = msgspec.field(default_factory=dict)
    notes: list[Note] = msgspec.field(default_factory=list)
    skipped: int = 0
    failed: int = 0
    checkpoint: dict[str, int] | None = None
    file_index: int = 0
    source: str = ""  # the platform every release of the batch came from (a file batch is split per source)


def prepare_release(release: Any) -> PreparedRelease | Note:
    identity, note = release_identity(release)
    if identity is None:
        assert note is not None
        return note
    data = canonical_json(release)
    return PreparedRelease(
        ocid=identity[0],
        release_id=identity[1],
        content_hash=hashlib.sha256(data).hexdigest(),
        data=data,
        release_date=parse_instant(release.get("date")),
        null_free=b"null" not in data,
    )


def compile_ocid(
    source: str, ocid: str, releases: Sequence[tuple[Mapping[str, Any], bool]]
) -> tuple[Procurement | None, list[Note]]:
    """Compile and map one ocid from (release, null_free) pairs; a failure is a note, never an exception."""
    upgraded = [upgrade_legacy(r) if is_legacy_cf(r) else r for r, _ in releases]
    try:
        compiled, notes = compile_procurement(upgraded, null_free=all(n for _, n in releases))
        procurement = map_compiled(source, compiled)
    except Exception as exc:  # one broken procurement must not stop the batch
        return None, [Note(ERROR, f"could not compile this procurement: {type(exc).__name__}: {exc}", ocid)]
    return procurement, [*notes, *procurement.notes]


def prepare_batch(
    source: str, releases: Iterable[Any], notes: Iterable[Note] = (), *, skipped: int = 0, failed: int = 0
) -> PreparedBatch:
    """Hash every release and compile every ocid of the batch from the batch's own releases."""
    batch = PreparedBatch(notes=list(notes), skipped=skipped, failed=failed)
    latest: dict[str, dict[str, tuple[PreparedRelease, Mapping[str, Any]]]] = {}
    for release in releases:
        prepared = prepare_release(release)
        if isinstance(prepared, Note):
            batch.notes.append(prepared)
            batch.skipped += 1
            continue
        batch.releases.append(prepared)
        # A release id repeated in one batch: the later copy is the one the archive ends up with.
        latest.setdefault(prepared.ocid, {})[prepared.release_id] = (prepared, release)
    for ocid, by_id in latest.items():
        procurement, compile_notes = compile_ocid(source, ocid, [(r, p.null_free) for p, r in by_id.values()])
        batch.compiled[ocid] = CompiledOcid(
            basis=frozenset((p.release_id, p.content_hash) for p, _ in by_id.values()),
            procurement=procurement,
            notes=tuple(compile_notes),
            last_date=max((p.release_date for p, _ in by_id.values() if p.release_date is not None), default=None),
        )
    return batch


def file_note(note: Note, path: Path) -> tuple[Note, str | None]:
    """A reader's note with the file name; and whether it cost a release ("skipped") or the rest of the file."""
    located = Note(note.level, note.message, note.ocid, note.release_id, f"{path.name}: {note.path}", note.value)
    if note.message.startswith("unparseable JSON, reading stopped"):
        return located, "failed"
    return located, "skipped" if note.level == ERROR else None


def file_batches(
    source: str | None, paths: Sequence[Path], *, batch_size: int, start_file: int = 0, start_item: int = 0
) -> Iterator[PreparedBatch]:
    """Prepared batches of at most ``batch_size`` releases, and one at the end of every file (maybe empty), each
    with the checkpoint (file index, items read) a resumed import starts from.

    Each release's platform is detected (``release_source``: ocid prefix, else the package's publisher) and a
    batch is split per platform; ``source`` overrides the detection, and a release that looks otherwise gets a note.
    """
    for file_index, path in enumerate(paths):
        if file_index < start_file:
            continue
        package = package_source(path)
        releases: list[dict[str, Any]] = []
        notes: list[Note] = []
        skipped = failed = 0
        done = start_item if file_index == start_file else 0
        chunk_start = done
        for item in _items_from(path, done):
            done += 1
            if item.release is not None:
                releases.append(item.release)
            elif item.note is not None:
                located, outcome = file_note(item.note, path)
                notes.append(located)
                skipped += outcome == "skipped"
                failed += outcome == "failed"
            if len(releases) >= batch_size:
                yield from _split_by_source(
                    source, package, path, releases, notes, skipped, failed, file_index, chunk_start, done
                )
                releases, notes, skipped, failed = [], [], 0, 0
                chunk_start = done
        yield from _split_by_source(
            source, package, path, releases, notes, skipped, failed, file_index, chunk_start, None
        )


def _split_by_source(
    override: str | None,
    package: str | None,
    path: Path,
    releases: list[Any],
    notes: list[Note],
    skipped: int,
    failed: int,
    file_index: int,
    chunk_start: int,
    done: int | None,
) -> Iterator[PreparedBatch]:
    """One batch per platform; all but the last resume from the chunk's start (re-storing a release is a no-op)."""
    groups: dict[str, list[Any]] = {}
    conflicts: dict[str, int] = {}
    undetected = 0
    for release in releases:
        ocid = release.get("ocid") if isinstance(release, Mapping) else None
        detected = release_source(ocid if isinstance(ocid, str) else "", package)
        undetected += detected is None
        if override is not None and detected is not None and detected != override:
            conflicts[detected] = conflicts.get(detected, 0) + 1
        groups.setdefault(override or detected or CONTRACTS_FINDER, []).append(release)
    notes = list(notes)
    for detected, n in conflicts.items():
        notes.append(
            Note(
                WARNING,
                f"{n} release{'s' if n != 1 else ''} look{'s' if n == 1 else ''} like {SOURCE_LABEL[detected]} (ocid"
                f" prefix or package publisher) but --source {override} was given; stored as {override}",
                path=path.name,
            )
        )
    if undetected and override is None:
        notes.append(
            Note(
                WARNING,
                f"{undetected} release{'s' if undetected != 1 else ''}: neither the ocid prefix nor the package says"
                f" Contracts Finder or Find a Tender; stored as {CONTRACTS_FINDER} (give --source to say which)",
                path=path.name,
            )
        )
    if not groups:
        groups[override or package or CONTRACTS_FINDER] = []
    end = (file_index + 1, 0) if done is None else (file_index, done)
    items = list(groups.items())
    for i, (source, group) in enumerate(items):
        last = i == len(items) - 1
        first = i == 0
        batch = prepare_batch(
            source, group, notes if first else (), skipped=skipped if first else 0, failed=failed if first else 0
        )
        resume_at = end if last else (file_index, chunk_start)
        batch.checkpoint = {"file_index": resume_at[0], "item_index": resume_at[1]}
        batch.file_index = file_index
        batch.source = source
        yield batch


def _items_from(path: Path, done: int) -> Iterator[Any]:
    items = iter_releases_from_file(path)
    for _ in range(done):
        if next(items, None) is None:
            return
    yield from items


class FileBatches:
    """``file_batches``, in this process or (``parallel``) in a child process working one batch ahead.

    Close it (or use it as a context manager) to stop the child. If this process dies, the child's next
    write fails on the broken pipe and it exits.
    """

    def __init__(
        self,
        source: str | None,
        paths: Sequence[Path],
        *,
        batch_size: int,
        start_file: int = 0,
        start_item: int = 0,
        parallel: bool | None = None,
    ) -> None:
        if parallel is None:
            parallel = sum(p.stat().st_size for p in paths if p.is_file()) >= PARALLEL_MIN_BYTES
        self._child: subprocess.Popen[bytes] | None = None
        self._inline: Iterator[PreparedBatch] | None = None
        if not parallel:
            self._inline = file_batches(
                source, paths, batch_size=batch_size, start_file=start_file, start_item=start_item
            )
            return
        parameters = {
            "source": source,
            "paths": [str(p) for p in paths],
            "batch_size": batch_size,
            "start_file": start_file,
            "start_item": start_item,
        }
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "importers.prepare"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert self._child.stdin is not None
        self._child.stdin.write(json.dumps(parameters).encode())
        self._child.stdin.close()

    def __iter__(self) -> "FileBatches":
        return self

    def __next__(self) -> PreparedBatch:
        if self._inline is not None:
            return next(self._inline)
        assert self._child is not None
        assert self._child.stdout is not None
        message = _read_message(self._child.stdout)
        if message is not None and message.kind == "batch" and message.batch is not None:
            return message.batch
        if message is not None and message.kind == "error":
            if message.os_error:
                raise OSError(message.error)
            raise RuntimeError(f"the file reader process failed: {message.error}")
        if message is not None and message.kind == "done":
            raise StopIteration
        code = self._child.wait()
        raise RuntimeError(f"the file reader process stopped unexpectedly (exit code {code})")

    def close(self) -> None:
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()

    def __enter__(self) -> "FileBatches":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Message(msgspec.Struct, array_like=True):
    kind: str  # "batch", "error" or "done"
    batch: PreparedBatch | None = None
    error: str | None = None  # "ExceptionType: message"
    os_error: bool = False  # the service reports an OSError (a file it cannot read) as a failed run


_ENCODER = msgspec.msgpack.Encoder()
_MESSAGE = msgspec.msgpack.Decoder(_Message)


def _read_message(stream: IO[bytes]) -> _Message | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return _MESSAGE.decode(body)


def _write_message(stream: IO[bytes], message: _Message) -> None:
    body = _ENCODER.encode(message)
    stream.write(_LENGTH.pack(len(body)))
    stream.write(body)
    stream.flush()


def _child_main() -> None:
    # stdout carries the messages; anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    os.nice(READER_NICENESS)
    # Parsing builds millions of small objects that all live until their batch is sent; frequent cyclic
    # collections would scan them again and again.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    parameters = json.loads(sys.stdin.read())
    try:
        with contextlib.suppress(BrokenPipeError):
            try:
                for batch in file_batches(
                    parameters["source"],
                    [Path(p) for p in parameters["paths"]],
                    batch_size=int(parameters["batch_size"]),
                    start_file=int(parameters["start_file"]),
                    start_item=int(parameters["start_item"]),
                ):
                    _write_message(out, _Message("batch", batch=batch))
            except OSError as exc:
                _write_message(out, _Message("error", error=str(exc), os_error=True))
            except Exception as exc:
                _write_message(out, _Message("error", error=f"{type(exc).__name__}: {exc}"))
            _write_message(out, _Message("done"))
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            out.close()


if __name__ == "__main__":
    # Run the imported module's copy, so that there is one set of these classes (not __main__'s as well).
    from importers.prepare import _child_main as child_main

    child_main()
