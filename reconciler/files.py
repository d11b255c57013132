"""Reading the files a user names: regular files only, and never more than a cap.

A FIFO would hang a pull-request job forever, `/dev/zero` would fill its
memory, and a gigabyte file would become a key: every file the tool reads goes
through `read_regular`, which opens without blocking, checks the file type
with fstat, and reads exactly its size (one byte more tells a file that grew).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

SECRET_FILE_BYTES = 64 * 1024  # a key, a token, a password
DATA_FILE_BYTES = 64 * 1024 * 1024  # a price list, an env file


def read_regular(path: str, cap: int) -> bytes:
    """The bytes of the regular file `path`; OSError (with a strerror that says why) otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"is {_kind(info.st_mode)}, not a regular file", path)
        if info.st_size > cap:
            raise OSError(errno.EFBIG, f"is larger than {_size(cap)}", path)
        chunks, left = [], info.st_size + 1
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > cap:
            raise OSError(errno.EFBIG, f"is larger than {_size(cap)}", path)
        return data
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _size(cap: int) -> str:
    return f"{cap // (1024 * 1024)} MiB" if cap >= 1024 * 1024 else f"{cap // 1024} KiB"


def text_lookup(known: dict[str, str] | None = None, cap: int = DATA_FILE_BYTES) -> Callable[[str], str | None]:
    """A file's text by name, for showing source lines: from `known` (texts already loaded), else
    read once (a regular file, UTF-8, under `cap`); None when it cannot be had."""
    texts: dict[str, str | None] = dict(known or {})

    def lookup(path: str) -> str | None:
        if path not in texts:
            try:
                texts[path] = read_regular(path, cap).decode("utf-8")
            except (OSError, UnicodeDecodeError):
                texts[path] = None
        return texts[path]

    return lookup
