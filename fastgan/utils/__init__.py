"""fastgan.utils: crash-safe file writes and image grids / frames for training runs.

    atomic_write(path)                                context manager: temp file, fsync, os.replace
    to_uint8(images)                                  [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]
    make_grid(images, nrow=None, padding=0)           -> uint8 [H', W', C]
    save_image_grid(images, path, nrow=None, padding=0) -> path of the PNG
    save_frames(images, out_dir, prefix="frame")      -> paths of frame_00000.png, ...
"""
from __future__ import annotations

import contextlib
import os
from typing import BinaryIO, Iterator, Union

from .images import make_grid, save_frames, save_image_grid, to_uint8

__all__ = ["atomic_write", "to_uint8", "make_grid", "save_image_grid", "save_frames"]

PathLike = Union[str, "os.PathLike[str]"]


def check_path(fn: str, name: str, value: object) -> str:
    """``os.fspath(value)`` of a str / path-like argument ``name`` of ``fn``; TypeError if it is
    not one, ValueError if it is empty."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{fn}: {name} must be a str or os.PathLike path, "
                        f"got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{fn}: {name} must be a text path, got bytes {path!r}")
    if not path:
        raise ValueError(f"{fn}: {name} must be a non-empty path")
    return path


def _fsync_dir(directory: str) -> None:
    """fsync a directory so a rename inside it survives power loss; best-effort (no-op where
    directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """Write a file all-or-nothing: yields a binary file open on ``path + ".tmp-<pid>"`` in the same
    directory; on a clean exit the data is flushed, fsync-ed and renamed onto ``path`` (then the
    directory is fsync-ed).  On any exception (KeyboardInterrupt included) the temp file is removed
    and a previous file at ``path`` is left untouched.  Missing parent directories are created."""
    path = check_path("atomic_write", "path", path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
