"""The remote client's local spool: append-only JSONL segments on disk, bounded in size.

While the collector server is unreachable the client writes events here and replays
them, oldest first, once it is back. Layout::

    <root>/<slot>/lock                 flock()ed by the one process that owns the slot
    <root>/<slot>/000001000000.jsonl   segments, one event (JSON) per line, in order
    <root>/<slot>/cursor               "<segment seq> <byte offset>" of the next unsent line

A process owns the lowest slot whose lock it can take, so several processes (a
forked child, two workers of one component) never write one file. Slots left by
processes that died are adopted at open: their segments move into ours.

Writes use ``os.write`` on raw descriptors (no user-space buffer), so a forked child
never flushes half a parent's line, and each batch is one write. A crash can still
leave a torn last line; readers skip a line without its newline. Nothing is fsynced:
the spool survives a process crash, not necessarily a power loss. Lines delivered
again after a crash (the cursor is written after the server acknowledged) are
harmless, because the server deduplicates by event id.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process slot locking
    fcntl = None  # type: ignore[assignment]

__all__ = ["Spool"]

_SUFFIX = ".jsonl"
_FIRST_SEQ = 1_000_000
_MAX_SLOTS = 256


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int


class Spool:
    """One process's spool slot. Not thread-safe: the caller serialises access."""

    def __init__(self, root: Path, *, max_bytes: int, segment_bytes: int = 4 << 20) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dir: Path | None = None
        self.count = 0  # events in the spool not yet committed
        self.size = 0  # bytes of all segment files
        self.adopted = 0  # events found on disk at open (earlier runs, dead processes)
        self._segments: deque[_Segment] = deque()
        self._head_offset = 0
        self._tail_fd: int | None = None
        self._lock_fd: int | None = None
        self._reader: IO[bytes] | None = None
        self._reader_seq = -1
        self._peeked: list[bytes] | None = None
        self._peek_end = 0

    # -- open / close --------------------------------------------------------

    def open(self) -> None:
        """Take a slot, load what earlier runs left, adopt slots of dead processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        for slot in range(_MAX_SLOTS):
            directory = self.root / str(slot)
            fd = _try_lock(directory)
            if fd is not None:
                self.dir, self._lock_fd = directory, fd
                break
        else:
            raise OSError(f"spool: all {_MAX_SLOTS} slots under {self.root} are in use")
        self._load()
        self._adopt_orphans()
        self.adopted = self.count

    def close(self) -> None:
        """Release the files and the slot lock (events on disk stay for the next run)."""
        self._close_reader()
        if self._tail_fd is not None:
            os.close(self._tail_fd)
            self._tail_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors without touching its files."""
        for fd in (self._tail_fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._tail_fd = self._lock_fd = None
        self._close_reader()  # read-only: closing our copy cannot write to the parent's files

    def _load(self) -> None:
        assert self.dir is not None
        segments = _list_segments(self.dir)
        head_seq, offset = _read_cursor(self.dir)
        for seg in segments:
            if seg.seq < head_seq:  # fully sent before the cursor was last written
                seg.path.unlink(missing_ok=True)
                continue
            start = offset if seg.seq == head_seq else 0
            self._segments.append(seg)
            self.size += seg.size
            self.count += _count_lines(seg.path, start)
        if self._segments and self._segments[0].seq == head_seq:
            self._head_offset = min(offset, self._segments[0].size)
        if not self.count:
            self._clear()

    def _adopt_orphans(self) -> None:
        assert self.dir is not None
        for other in sorted(p for p in self.root.iterdir() if p.name.isdigit()):
            if other == self.dir or not (other / "lock").exists():
                continue
            fd = _try_lock(other)
            if fd is None:
                continue  # its owner is alive
            try:
                head_seq, offset = _read_cursor(other)
                for seg in _list_segments(other):
                    if seg.seq >= head_seq:
                        start = offset if seg.seq == head_seq else 0
                        with seg.path.open("rb") as f:
                            f.seek(start)
                            self._write_segment(_whole_lines(f.read()))
                    seg.path.unlink(missing_ok=True)
                (other / "cursor").unlink(missing_ok=True)
            finally:
                os.close(fd)

    def _write_segment(self, lines: list[bytes]) -> None:
        """Append ``lines`` as a new closed segment after the current ones."""
        if not lines:
            return
        self._close_tail()
        seq = self._segments[-1].seq + 1 if self._segments else _FIRST_SEQ
        data = b"".join(lines)
        path = self._path(seq)
        path.write_bytes(data)
        self._segments.append(_Segment(seq, path, len(data)))
        self.size += len(data)
        self.count += len(lines)

    # -- writing -------------------------------------------------------------

    def append(self, lines: list[bytes]) -> int:
        """Append JSON lines (without newline); returns how many fit (the rest are dropped)."""
        room = self.max_bytes - self.size
        data: list[bytes] = []
        for line in lines:
            room -= len(line) + 1
            if room < 0:
                break
            data.append(line)
        if not data:
            return 0
        fd = self._tail()
        blob = b"\n".join(data) + b"\n"
        try:
            _write_all(fd, blob)
        except OSError:
            # Disk full or an I/O error: cut the partial write off so the counts stay true.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._segments[-1].size)
            self._close_tail()
            raise
        self._segments[-1].size += len(blob)
        self.size += len(blob)
        self.count += len(data)
        return len(data)

    def prepend(self, lines: list[bytes]) -> int:
        """Put lines before everything spooled (a batch that failed goes back to the front).

        The head segment's unsent rest is rewritten into one new segment after them, so the
        single cursor still describes the spool. Returns how many fit.
        """
        room = self.max_bytes - self.size
        keep: list[bytes] = []
        for line in lines:
            room -= len(line) + 1
            if room < 0:
                break
            keep.append(line + b"\n")
        if not keep:
            return 0
        assert self.dir is not None
        self._close_reader()
        rest = b""
        old: _Segment | None = None
        if self._segments:
            old = self._segments[0]
            if old.seq == self._tail_seq():
                self._close_tail()
            with old.path.open("rb") as f:
                f.seek(self._head_offset)
                rest = f.read()
        seq = (old.seq if old else _FIRST_SEQ + 1) - 1
        data = b"".join(keep) + rest
        tmp = self.dir / f"{seq:012d}.tmp"
        tmp.write_bytes(data)
        path = self._path(seq)
        os.replace(tmp, path)
        if old is not None:
            self._segments.popleft()
            self.size -= old.size
            old.path.unlink(missing_ok=True)
        self._segments.appendleft(_Segment(seq, path, len(data)))
        self.size += len(data)
        self._head_offset = 0
        self._write_cursor()
        self.count += len(keep)
        return len(keep)

    # -- reading -------------------------------------------------------------

    def peek(self, max_events: int, max_bytes: int) -> list[bytes]:
        """The oldest unsent lines (without newlines); the same ones until ``commit``."""
        if self._peeked is not None:
            return self._peeked
        lines: list[bytes] = []
        size = 0
        while self._segments and len(lines) < max_events and size < max_bytes:
            head = self._segments[0]
            reader = self._open_reader(head)
            line = reader.readline()
            if not line:
                # One batch never spans segments, so an exhausted head is deleted only once
                # everything read from it was committed.
                if lines or head.seq == self._tail_seq() or len(self._segments) == 1:
                    break
                self._drop_head()
                continue
            if not line.endswith(b"\n"):  # torn by a crash mid-write: skip it
                self._skip_torn(line)
                continue
            lines.append(line[:-1])
            size += len(line)
        self._peek_end = self._reader.tell() if self._reader is not None else 0
        self._peeked = lines
        return lines

    def commit(self) -> None:
        """The peeked lines were delivered (or refused for good): move past them."""
        if self._peeked is None:
            return
        self.count -= len(self._peeked)
        self._peeked = None
        self._head_offset = self._peek_end
        if self.count <= 0:
            self._clear()
            return
        head = self._segments[0]
        if self._head_offset >= head.size and head.seq != self._tail_seq():
            self._drop_head()
        self._write_cursor()

    def reset(self) -> None:
        """Forget everything spooled (the files are deleted)."""
        self._clear()

    # -- internals -----------------------------------------------------------

    def _skip_torn(self, line: bytes) -> None:
        self._head_offset += len(line)

    def _drop_head(self) -> None:
        head = self._segments.popleft()
        self._close_reader()
        self.size -= head.size
        head.path.unlink(missing_ok=True)
        self._head_offset = 0

    def _clear(self) -> None:
        """Nothing left to send: delete every segment so the spool's size is 0 again."""
        self._close_reader()
        self._close_tail()
        for seg in self._segments:
            seg.path.unlink(missing_ok=True)
        self._segments.clear()
        self.size = self.count = 0
        self._head_offset = 0
        self._peeked = None
        if self.dir is not None:
            (self.dir / "cursor").unlink(missing_ok=True)

    def _open_reader(self, head: _Segment) -> IO[bytes]:
        if self._reader is None or self._reader_seq != head.seq:
            self._close_reader()
            self._reader = head.path.open("rb")
            self._reader.seek(self._head_offset)
            self._reader_seq = head.seq
        return self._reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._reader_seq = -1
        self._peeked = None

    def _tail_seq(self) -> int:
        return self._segments[-1].seq if self._tail_fd is not None and self._segments else -1

    def _tail(self) -> int:
        """The descriptor of the segment appends go to, rotating at ``segment_bytes``."""
        if self._tail_fd is not None and self._segments[-1].size < self.segment_bytes:
            return self._tail_fd
        self._close_tail()
        seq = self._segments[-1].seq + 1 if self._segments else _FIRST_SEQ
        path = self._path(seq)
        self._tail_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(_Segment(seq, path, 0))
        return self._tail_fd

    def _close_tail(self) -> None:
        if self._tail_fd is not None:
            os.close(self._tail_fd)
            self._tail_fd = None

    def _write_cursor(self) -> None:
        if self.dir is None or not self._segments:
            return
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(f"{self._segments[0].seq} {self._head_offset}\n")
        os.replace(tmp, self.dir / "cursor")

    def _path(self, seq: int) -> Path:
        assert self.dir is not None
        return self.dir / f"{seq:012d}{_SUFFIX}"


def _try_lock(directory: Path) -> int | None:
    """An flock()ed descriptor on ``directory/lock``, or None if another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _list_segments(directory: Path) -> list[_Segment]:
    found = []
    for path in directory.glob(f"*{_SUFFIX}"):
        stem = path.name.removesuffix(_SUFFIX)
        if stem.isdigit():
            found.append(_Segment(int(stem), path, path.stat().st_size))
    return sorted(found, key=lambda s: s.seq)


def _read_cursor(directory: Path) -> tuple[int, int]:
    try:
        seq, offset = (directory / "cursor").read_text().split()
        return int(seq), int(offset)
    except (OSError, ValueError):
        return 0, 0


def _count_lines(path: Path, start: int) -> int:
    with path.open("rb") as f:
        f.seek(start)
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _whole_lines(data: bytes) -> list[bytes]:
    """Complete lines (with their newline) of ``data``; a torn last line is dropped."""
    end = data.rfind(b"\n")
    return [] if end < 0 else data[: end + 1].splitlines(keepends=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
