"""Input bytes from a file or a zip member, read in chunks of whole lines with progress."""

import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from recsys.ingest.errors import InputError

Progress = Callable[[int], None]
CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class Source:
    """A readable input; ``name`` (a path, or ``archive.zip!member``) is what messages show."""

    name: str
    size: int
    opener: Callable[[], AbstractContextManager[BinaryIO]]


def file_source(path: Path) -> Source:
    """A file on disk."""
    return Source(str(path), path.stat().st_size, lambda: path.open("rb"))


def zip_source(archive: Path, info: zipfile.ZipInfo) -> Source:
    """A member of a zip archive; its size is the uncompressed size that progress reports.

    A damaged archive fails only when a member is opened or read (zipfile raises BadZipFile,
    zlib.error or EOFError then), so that is where it becomes bad input naming the member.
    """
    name = f"{archive}!{info.filename}"

    @contextmanager
    def opener() -> Iterator[BinaryIO]:
        try:
            with zipfile.ZipFile(archive) as zf, zf.open(info) as member:
                yield member
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InputError(f"damaged zip archive ({exc})", name) from None

    return Source(name, info.file_size, opener)


def read_chunks(source: Source, progress: Progress | None = None) -> Iterator[tuple[bytes, int]]:
    """Yield ``(lines, number of the first line)`` with each chunk ending in a newline.

    CRLF becomes LF and a missing final newline is added, so parsers see only ``\\n``.
    ``progress`` gets each chunk's size in the file once the consumer has handled it.
    """
    line = 1
    rest = b""
    with source.opener() as fh:
        while True:
            block = fh.read(CHUNK_BYTES)
            data = rest + block
            if not data:
                return
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if cut == 0:
                rest = data
                continue
            chunk, rest = data[:cut], data[cut:]
            lines = chunk if chunk.endswith(b"\n") else chunk + b"\n"
            if b"\r" in lines:
                lines = lines.replace(b"\r\n", b"\n")
            yield lines, line
            line += lines.count(b"\n")
            if progress is not None:
                progress(len(chunk))
