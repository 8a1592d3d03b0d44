"""Writing an export file safely.

An export holds decrypted patient data, so it is written to a private
temporary file (mode 0600, created with ``O_EXCL | O_NOFOLLOW`` in the
destination folder) and renamed over the destination only once complete: a
reader never sees half an export, a crash leaves no partial file under the
real name, and a symbolic link planted at the destination is neither
followed nor written through. The hub's data folder (keys, database) is
never a destination.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Iterable

from .common import ExportError


def check_destination(out: Path, data_dir: Path | None) -> None:
    """Raises :class:`ExportError` with one line when ``out`` cannot or
    must not be written."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"{out}: the folder {parent} does not exist")
    if out.is_symlink():
        raise ExportError(f"{out}: is a symbolic link; refusing to write through it")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; name a file")
    if data_dir is not None:
        real_data = Path(os.path.realpath(data_dir))
        real_out = Path(os.path.realpath(parent)) / out.name
        if real_out == real_data or real_data in real_out.parents:
            raise ExportError(f"{out}: is inside the hub's data folder {data_dir}; "
                              "exports must be written somewhere else")


def write_file(out: Path, chunks: Iterable[bytes], data_dir: Path | None = None) -> None:
    """Writes ``chunks`` to ``out`` through a private temporary file.

    If producing the chunks fails, the temporary file is removed and
    ``out`` is left as it was.
    """
    check_destination(out, data_dir)
    parent = out.parent if str(out.parent) else Path(".")
    tmp = parent / f".{out.name}.{secrets.token_hex(6)}.part"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ExportError(f"{out}: cannot create a file in {parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        # rename() replaces a link at ``out`` itself, never its target.
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{out}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
