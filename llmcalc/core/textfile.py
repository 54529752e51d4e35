"""Reading a user's spec file safely: a regular file, at most MAX_SPEC_BYTES, UTF-8 — or one SpecError.

Every YAML and config.json the engine reads comes through :func:`read_spec_text`, so a device
(``/dev/zero``), a FIFO, a directory, a 2 GB file or a Latin-1 byte is a one-line message naming the
file, never a hang, a MemoryError or a UnicodeDecodeError.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import SpecError

# The largest catalogue entry is ~4 kB and the largest Hugging Face config.json we know (~30 kB with
# per-layer lists); 1 MiB leaves room for comments and still bounds the parse.
MAX_SPEC_BYTES = 1 << 20


def read_spec_text(path: str | Path, limit: int = MAX_SPEC_BYTES) -> str:
    """The text of ``path``: a regular file of at most ``limit`` bytes, decoded as UTF-8."""
    p = str(path)
    try:
        # O_NONBLOCK: opening a FIFO without a writer must not block; the fstat below then rejects it.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise SpecError(f"{p}: cannot read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
            raise SpecError(f"{p}: is {kind}; give a YAML or config.json file")
        if st.st_size > limit:
            raise SpecError(f"{p}: {st.st_size:,} bytes is larger than the {limit:,}-byte limit for a spec file")
        chunks, total = [], 0
        while True:  # read at most limit + 1 bytes, whatever the size said (a file may grow)
            b = os.read(fd, limit + 1 - total)
            if not b:
                break
            chunks.append(b)
            total += len(b)
            if total > limit:
                raise SpecError(f"{p}: larger than the {limit:,}-byte limit for a spec file")
    except OSError as e:
        raise SpecError(f"{p}: cannot read ({e.strerror})") from None
    finally:
        os.close(fd)
    return spec_text(b"".join(chunks), p, limit)


def spec_text(data: bytes, origin: str, limit: int = MAX_SPEC_BYTES) -> str:
    """Bytes of a spec (a file's, or a dashboard upload's) as UTF-8 text, or one SpecError naming the place."""
    if len(data) > limit:
        raise SpecError(f"{origin}: {len(data):,} bytes is larger than the {limit:,}-byte limit for a spec file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(f"{origin}:{line}:{col}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as "
                        "UTF-8") from None
