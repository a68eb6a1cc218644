"""Writing output files so that nothing the user has is lost: atomically, inside the folder named, never through links.

Every file gancli writes goes through atomic_path(): a temporary file in the same folder,
fsync, then a rename over the target. A reader (or a kill -9) sees the old file or the new one,
never half of one, and a rename replaces a symbolic link instead of writing through it. Only
regular files are replaced: a device, pipe or folder in the way is refused. The new file gets the
mode an ordinary open() would give it (the old file's, or 0666 less the umask). A temporary file is
named `.NAME.PID-XXXXXXXX.tmp`; remove_orphans() clears those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from gancli.config import check_component
from gancli.errors import GancliError, UsageError

TMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[a-z0-9_]{8}(\.tmp)?$")  # what temp_beside() makes (folders: no suffix)
_LEGACY_TEMP = re.compile(r"^\..+\.tmp$")  # gancli before the PID was in the name: only in a locked run folder


def umask() -> int:
    """This process's umask, read without changing it where /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def check_output(path: Path, what: str = "--out") -> None:
    """Refuse an output path that names something other than a regular file (a device, a pipe, a folder)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"Cannot write {what} '{path}' ({exc.strerror or exc}); choose another path.") from exc
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, pipe or socket)"
        example = {"--gif": "walk.gif", "--video": "walk.mp4"}.get(what, "out.png")
        raise UsageError(f"{what} '{path}' is {kind}; gancli writes only regular files. Give a file name, e.g. {what} {example}.")


def file_mode(path: Path) -> int:
    """The mode open(path, 'w') would leave: the existing regular file's, else 0666 less the umask."""
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode):
            return stat.S_IMODE(info.st_mode)
    except OSError:
        pass
    return 0o666 & ~umask()


def temp_beside(path: Path) -> tuple[int, Path]:
    """(an open descriptor, its path): a new temporary file next to `path`, with the mode `path` will get."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, file_mode(path))
    except OSError:
        pass  # a file system without modes (FAT): mkstemp's is all there is
    return fd, Path(name)


def temp_folder(path: Path) -> Path:
    """A new temporary folder next to `path` (to be renamed onto it), named so remove_orphans can tell its owner."""
    name = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", dir=path.parent))
    os.chmod(name, 0o777 & ~umask())
    return name


@contextlib.contextmanager
def replaced(path: Path, what: str = "--out", sync_folder: bool = False) -> Iterator[Path]:
    """gancli's one atomic write: a temporary path beside `path` to write in full; on success it replaces `path`
    (fsync, rename; with `sync_folder`, the folder's entry synced too), on failure it goes. OSErrors pass through."""
    path = Path(path)
    check_output(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check_output(path, what)  # nothing but a regular file (or a link) is ever replaced
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_folder:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish_folder(tmp: Path, where: Path) -> None:
    """The folder counterpart of replaced(): a folder written in full at `tmp` takes the place of `where`; what was
    there (stale or damaged) is moved aside first, so the rename always lands and a reader never sees half."""
    import shutil

    if os.path.lexists(where):
        aside = temp_folder(where)
        os.replace(where, aside / "old") if where.is_dir() and not where.is_symlink() else where.unlink()
        shutil.rmtree(aside, ignore_errors=True)
    os.replace(tmp, where)


@contextlib.contextmanager
def atomic_path(path: Path, what: str = "--out") -> Iterator[Path]:
    """replaced(), with a failure said in one line: `what` names the option that chose `path`."""
    opened = False
    try:
        with replaced(path, what) as tmp:
            opened = True
            yield tmp
    except OSError as exc:
        if not opened:
            raise GancliError(f"Cannot write '{path}' ({exc.strerror or exc}); choose another {what}.") from exc
        raise GancliError(f"Cannot write '{path}' ({exc.strerror or exc}); nothing was replaced. Free some space or choose another {what}.") from exc


def atomic_write(path: Path, write: Callable[[Path], object], what: str = "--out") -> None:
    """Call write(tmp) to fill a temporary file, then move it over `path`."""
    with atomic_path(path, what) as tmp:
        write(tmp)


def write_text(path: Path, text: str, what: str = "--out") -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text), what)


def remove_orphans(folder: Path, legacy: bool = False, depth: int | None = None) -> int:
    """Delete temporary files and folders that a killed gancli left in `folder` (and its sub-folders, `depth`
    levels down; None: all); how many.

    Only gancli's own names count, and only when the process named in them has ended (a running
    gancli's temporaries stay). `legacy`: also the PID-less names of older gancli versions (run folders).
    """
    import shutil

    removed = 0
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return 0
    top = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder):
        if depth is not None and len(Path(dirpath).parts) - top >= depth:
            dirnames_below = list(dirnames)
            dirnames[:] = []  # a user's folder: look no deeper than gancli writes
        else:
            dirnames_below = dirnames
        for name in [*filenames, *dirnames_below]:
            match = _TEMP_NAME.match(name)
            target = Path(dirpath) / name
            if not (match and not _alive(int(match.group(1)))) and not (legacy and _LEGACY_TEMP.match(name) and target.is_file()):
                continue
            with contextlib.suppress(OSError):
                if target.is_symlink():
                    continue
                if target.is_dir():
                    shutil.rmtree(target)
                    if name in dirnames:
                        dirnames.remove(name)
                else:
                    target.unlink()
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or a name we cannot judge: leave it
    return True


def printable(value) -> str:
    """A name from a file or the file system with control characters escaped (as Python writes them), so that
    printing it cannot move the cursor, retitle the terminal or start a new line; plain names are unchanged."""
    text = str(value)
    if not any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000 for c in text):
        return text
    return repr(text)[1:-1]


def child(folder: Path, *names: str) -> Path:
    """folder/names..., refusing any name that would leave `folder` (.., /, empty, NUL)."""
    for name in names:
        check_component(name)
    return Path(folder).joinpath(*names)




def refuse_links(paths) -> None:
    """Refuse to write a run whose files are symbolic links: writing would change the files they point to."""
    for path in paths:
        if Path(path).is_symlink():
            raise UsageError(f"'{path}' is a symbolic link; gancli does not write through links in a run directory. Replace it with a plain file or start a new run.")


EXISTING = ("refuse", "overwrite", "skip")  # what to do with files already in an --outdir: --overwrite, --skip-existing


def existing_names(folder: Path) -> set[str]:
    """The names in `folder` (one scandir; an absent folder holds none)."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def refuse_existing(folder: Path, found: list[str], existing: str) -> None:
    """Refuse to replace files the user already has in --outdir, unless --overwrite or --skip-existing says what to do."""
    if found and existing == "refuse":
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise UsageError(f"'{folder}' already holds {len(found):,} of the files this would write ({shown}); add --overwrite to replace them, "
                         "--skip-existing to keep them and write the rest, or choose another --outdir.")  # fmt: skip


def check_room(folder: Path, count: int, bytes_each: int, what: str = "--outdir") -> None:
    """Refuse in one line, before any work, when `folder`'s file system cannot hold `count` files of about `bytes_each`."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        fs = os.statvfs(existing)
    except (OSError, AttributeError):
        return  # no statvfs (Windows): nothing to check against
    block = fs.f_frsize or fs.f_bsize or 4096
    need = count * -(-bytes_each // block) * block  # every file takes whole blocks
    free = fs.f_bavail * (fs.f_frsize or fs.f_bsize)
    if need > free:
        raise GancliError(f"{count:,} files need about {_size(need)} in '{folder}', but only {_size(free)} is free; ask for fewer or choose another {what}.")
    if fs.f_files and count > fs.f_favail:
        raise GancliError(f"{count:,} files need as many inodes in '{folder}', but the file system has {fs.f_favail:,} left; ask for fewer or choose another {what}.")


def _size(n: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 10**3:.0f} kB"


def refuse_overwriting_inputs(outputs, inputs) -> None:
    """Refuse when an output would replace one of the inputs (e.g. --out naming an input file)."""
    sources = {Path(p).resolve(): p for p in inputs}
    for out in outputs:
        if Path(out).resolve() in sources:
            raise UsageError(f"'{out}' is one of the inputs; writing it would replace the original. Choose another output name.")


def refuse_shared_outputs(outputs, inputs) -> None:
    """Refuse when two inputs would be written to the same output file (same name from two folders)."""
    seen: dict[Path, object] = {}
    for out, source in zip(outputs, inputs):
        key = Path(out).resolve()
        if key in seen:
            raise UsageError(f"'{seen[key]}' and '{source}' would both be written to '{out}'; upscale them into separate --outdir folders.")
        seen[key] = source
