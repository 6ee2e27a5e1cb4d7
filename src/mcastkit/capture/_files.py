"""Capture files on disk: created safely, written in whole blocks, rotated, never left torn.

- Created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing name (a symlink planted
  there included) is refused, never followed or truncated. Only ``overwrite=True`` replaces
  an existing *regular* file, re-checked on the opened descriptor.
- Written from a buffer holding whole blocks; a failed write (``ENOSPC``, ``EDQUOT``,
  ``EIO``) cuts the file back to the end of its last complete block, so every file a run
  leaves can be read to the end. The error says how much was kept and what to do.
- Rotation by size and/or age: ``NAME-00000.pcapng``, ``NAME-00001.pcapng``...; with
  ``keep`` only the newest ``keep`` files stay (the ones this run created, nothing else).

Owns: :class:`BlockFile`, :class:`RotatingFiles`, :class:`CaptureFileError`.
Must not: know the pcapng layout (callers hand finished blocks), open sockets.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable

from .._errors import ErrorCode, McastOSError

__all__ = ["BlockBuilder", "BlockFile", "CaptureFileError", "RotatingFiles", "open_new"]

FLUSH_BYTES = 1 << 20  # write when this much is buffered (and on flush())


class CaptureFileError(McastOSError):
    """A capture file could not be created or written; ``.errno`` says why, ``.path``
    which file, ``.kept_bytes`` how much of it is complete on disk.

    Args:
        err: the OS error number (ENOSPC, EACCES...).
        message: what went wrong and what to do.
        path: the file.
        kept_bytes: how many bytes of it are complete on disk.

    Attributes:
        path: the file.
        kept_bytes: how many bytes of it are complete on disk.
    """

    code = ErrorCode.OS_ERROR

    def __init__(self, err: int, message: str, path: str, kept_bytes: int = 0) -> None:
        super().__init__(err, message, op="capture")
        self.path = path
        self.kept_bytes = kept_bytes


def open_new(path: str, *, overwrite: bool = False) -> int:
    """A write-only descriptor for a new file at ``path`` (mode 0644 less the umask).

    Raises:
        CaptureFileError: the name exists (and ``overwrite`` is off, or it is not a regular
            file), its directory is missing, or the system refused.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        if not overwrite:
            raise CaptureFileError(
                errno.EEXIST, f"{path} already exists; choose another name, or pass "
                "--overwrite (overwrite=True) to replace a regular file", path) from None
    except OSError as exc:
        raise _open_error(exc, path) from None
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise CaptureFileError(
                errno.EEXIST, f"{path} exists and is not a regular file (a symlink, device "
                "or directory); refusing to write through it; choose another name", path)
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except CaptureFileError:
        raise
    except OSError as exc:
        raise _open_error(exc, path) from None
    st2 = os.fstat(fd)
    if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(st2.st_mode):
        os.close(fd)
        raise CaptureFileError(errno.EEXIST, f"{path} was replaced while it was being "
                               "opened; refusing to write to it", path)
    os.ftruncate(fd, 0)
    return fd


def _open_error(exc: OSError, path: str) -> CaptureFileError:
    err = exc.errno or errno.EIO
    if err == errno.ELOOP:
        why = "is a symbolic link; refusing to follow it"
    elif err == errno.ENOENT:
        why = "cannot be created: its directory does not exist"
    elif err in (errno.EACCES, errno.EPERM):
        why = "cannot be created: permission denied (choose a directory you can write)"
    elif err == errno.EROFS:
        why = "is on a read-only file system"
    else:
        why = f"cannot be created: {os.strerror(err)}"
    return CaptureFileError(err, f"{path} {why}", path)


#: a builder of whole blocks: ``build(buffer, position) -> end`` writes them into
#: ``buffer`` from ``position`` on (growing it when needed) and returns where they end
BlockBuilder = Callable[[bytearray, int], int]


class BlockFile:
    """One output file written in whole blocks (see the module docstring).

    The buffer is kept between writes (only its used part is written), so a recording
    does not allocate, fault in and copy a fresh megabyte for every flush.
    """

    def __init__(self, path: str, *, overwrite: bool = False) -> None:
        self.path = path
        self._fd = open_new(path, overwrite=overwrite)
        self._buf = bytearray(FLUSH_BYTES)
        self._used = 0  # bytes of _buf that hold blocks
        self._ends: list[int] = []  # end offsets of the blocks (or runs of them) in _buf
        self.committed = 0  # bytes on disk, always a block boundary
        self.closed = False

    @property
    def size(self) -> int:
        """Bytes written so far, buffered included."""
        return self.committed + self._used

    def append(self, block: bytes | bytearray) -> None:
        """Queue one complete block; written when enough is buffered."""
        end = self._used + len(block)
        self._buf[self._used:end] = block
        self._commit(end)

    def build(self, builder: BlockBuilder) -> None:
        """Let ``builder`` write whole blocks straight into the buffer (no copy).

        Args:
            builder: called with the buffer and where the buffered blocks end; writes
                complete blocks from there and returns their end. A cut-off write keeps
                the blocks before the run.
        """
        self._commit(builder(self._buf, self._used))

    def _commit(self, end: int) -> None:
        if end != self._used:
            self._used = end
            self._ends.append(end)
            if end >= FLUSH_BYTES:
                self.flush()

    def flush(self) -> None:
        """Write every buffered block.

        Raises:
            CaptureFileError: the write failed; the file now ends at its last complete
                block and is closed.
        """
        view = memoryview(self._buf)[:self._used]
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            view.release()
            whole = max((e for e in self._ends if e <= done), default=0)
            self.committed += whole
            self._fail(exc)
        view.release()
        self.committed += done
        self._used = 0
        self._ends.clear()
        if len(self._buf) > 8 * FLUSH_BYTES:  # a burst of huge datagrams: give it back
            self._buf = bytearray(FLUSH_BYTES)

    def _fail(self, exc: OSError) -> None:
        err = exc.errno or errno.EIO
        with contextlib.suppress(OSError):  # works on a full disk: it frees space
            os.ftruncate(self._fd, self.committed)
        self._buf = bytearray()
        self._used = 0
        self._ends.clear()
        self._close_fd()
        if err in (errno.ENOSPC, errno.EDQUOT):
            why = ("the disk is full" if err == errno.ENOSPC else "the disk quota is used up")
            hint = "free space, or use --rotate-mb with --keep to bound the files"
        else:
            why, hint = f"writing failed ({os.strerror(err)})", "check the disk"
        raise CaptureFileError(
            err, f"{why}: {self.path} keeps {self.committed} bytes, ending with its last "
            f"complete block; {hint}", self.path, self.committed) from None

    def _close_fd(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        if self.closed:
            return
        try:
            self.flush()
            os.fsync(self._fd)
        except OSError as exc:
            if not isinstance(exc, CaptureFileError):
                self._fail(exc)
            raise
        finally:
            self._close_fd()


class RotatingFiles:
    """The current output file, replaced by a new one when it grows past ``max_bytes``
    or gets older than ``max_age_s``.

    Args:
        path: the file name; with rotation, numbers are put before the extension.
        header: called with each new file's index; returns the blocks that start a file.
        max_bytes: rotate past this size (None: never).
        max_age_s: rotate past this age in seconds (None: never).
        keep: with rotation, delete the oldest files this run made beyond ``keep``.
        overwrite: replace existing regular files of the same names.
        clock: seconds (for the age limit).
    """

    def __init__(self, path: str, header: Callable[[int], bytes], *,
                 max_bytes: int | None = None, max_age_s: float | None = None,
                 keep: int | None = None, overwrite: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base = path
        self.rotating = max_bytes is not None or max_age_s is not None
        self._header = header
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.keep = keep
        self.overwrite = overwrite
        self._clock = clock
        self.index = 0
        self.paths: list[str] = []  # every file this run created, oldest first
        self.removed: list[str] = []
        self.file = self._open(0)

    def name(self, index: int) -> str:
        """The file name of rotation ``index``."""
        if not self.rotating:
            return self.base
        head, sep, ext = self.base.rpartition(".")
        if not sep or "/" in ext:
            return f"{self.base}-{index:05d}"
        return f"{head}-{index:05d}.{ext}"

    def _open(self, index: int) -> BlockFile:
        f = BlockFile(self.name(index), overwrite=self.overwrite)
        self.paths.append(f.path)
        self._opened = self._clock()
        f.append(self._header(index))
        return f

    def due(self) -> bool:
        """Whether the current file has reached a rotation limit."""
        if self.max_bytes is not None and self.file.size >= self.max_bytes:
            return True
        return self.max_age_s is not None and self._clock() - self._opened >= self.max_age_s

    def rotate(self) -> None:
        """Close the current file and start the next one."""
        self.file.close()
        self.index += 1
        self.file = self._open(self.index)
        if self.keep is not None:
            while len(self.paths) - len(self.removed) > self.keep:
                old = self.paths[len(self.removed)]
                try:
                    if stat.S_ISREG(os.lstat(old).st_mode):
                        os.unlink(old)
                except OSError:
                    pass  # already gone: nothing to keep tidy
                self.removed.append(old)

    def close(self) -> None:
        """Close the current file (idempotent)."""
        self.file.close()
