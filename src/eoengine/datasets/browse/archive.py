"""A dataset folder as a reproducible tar stream: to a binary stream, or as pieces for a streaming response."""

from __future__ import annotations

import gzip
import queue
import tarfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from eoengine.datasets.browse.folder import open_dataset


def _tree(folder: Path) -> Iterator[Path]:
    """Every folder and regular file under ``folder``, sorted by name, each folder before its content; no symlinks."""
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.is_symlink():
            continue
        if entry.is_dir():
            yield entry
            yield from _tree(entry)
        elif entry.is_file():
            yield entry


def write_archive(root: Path, out: BinaryIO, gz: bool = False) -> None:
    """Write the whole dataset folder to ``out`` as a tar stream, file by file, never a whole file in memory.

    Members are named ``<folder name>/<path>``, in sorted order, with the manifest's creation
    time, owner 0 and modes 644/755, so the same dataset gives the same bytes. Symlinks are left out.

    Args:
        root: The dataset folder.
        out: A binary stream to write to (left open).
        gz: Compress with gzip (its header's time set to 0).

    Raises:
        NotFound: ``root`` is not a dataset folder.

    """
    ds = open_dataset(root)
    try:
        when = int(datetime.fromisoformat(ds.manifest.created).timestamp())
    except ValueError:
        when = 0
    stream = cast(BinaryIO, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0)) if gz else out
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in _tree(ds.root):
            info = tarfile.TarInfo(f"{ds.root.name}/{path.relative_to(ds.root).as_posix()}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = when, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)
    if gz:
        stream.close()  # writes the gzip trailer; ``out`` stays open


class _Stopped(Exception):
    """The reader of an archive stream went away."""


class _QueueWriter:
    """A binary stream that hands what is written to a bounded queue in pieces of about ``piece`` bytes."""

    def __init__(self, chunks: queue.Queue[Any], stop: threading.Event, piece: int = 1 << 18) -> None:
        self.chunks, self.stop, self.piece, self.buffer = chunks, stop, piece, bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= self.piece:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self.put(bytes(self.buffer))
            self.buffer.clear()

    def put(self, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                self.chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def archive_chunks(root: Path, gz: bool = False) -> Iterator[bytes]:
    """The archive :func:`write_archive` writes, as an iterator of byte pieces (for a streaming response).

    A thread writes the archive into a bounded queue as the iterator is consumed; closing the
    iterator early stops the thread. The folder is checked before the iterator is returned.

    Args:
        root: The dataset folder.
        gz: Compress with gzip.

    Returns:
        An iterator of pieces of about 256 KiB.

    Raises:
        NotFound: ``root`` is not a dataset folder (at the call, not at the first piece).

    """
    open_dataset(root)
    chunks: queue.Queue[Any] = queue.Queue(maxsize=16)
    stop = threading.Event()
    writer = _QueueWriter(chunks, stop)

    def produce() -> None:
        try:
            write_archive(root, cast(BinaryIO, writer), gz)
            writer.flush()
            writer.put(None)
        except _Stopped:
            return
        except Exception as exc:  # noqa: BLE001  # handed to the reader, which raises it
            try:
                writer.put(exc)
            except _Stopped:
                return

    def consume() -> Iterator[bytes]:
        thread = threading.Thread(target=produce, name="eoengine-archive", daemon=True)
        thread.start()
        try:
            while (item := chunks.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    return consume()
