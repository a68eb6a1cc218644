"""Writing output files so that nothing the user has is lost: atomically, inside the folder named, never through links.

Every file gancli writes goes through atomic_write(): a temporary file in the same folder,
fsync, then a rename over the target. A reader (or a kill -9) sees the old file or the new one,
never half of one, and a rename replaces a symbolic link instead of writing through it. A run
killed mid-write leaves a `.NAME.*.tmp` that remove_orphans() clears on the next run there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from gancli.errors import GancliError, UsageError

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: Path, what: str = "--out") -> Iterator[Path]:
    """A temporary path to write in full; on success it replaces `path` (fsync, rename), on failure it goes.

    `what` names the option that chose `path`, for the error message.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise GancliError(f"Cannot write '{path}' ({exc.strerror or exc}); choose another {what}.") from exc
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GancliError(f"Cannot write '{path}' ({exc.strerror or exc}); nothing was replaced. Free some space or choose another {what}.") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, write: Callable[[Path], object], what: str = "--out") -> None:
    """Call write(tmp) to fill a temporary file, then move it over `path`."""
    with atomic_path(path, what) as tmp:
        write(tmp)


def write_text(path: Path, text: str, what: str = "--out") -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text), what)


def remove_orphans(folder: Path) -> int:
    """Delete temporary files that a killed gancli left in `folder` (and its sub-folders); returns how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for tmp in folder.rglob(f".*{TMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def child(folder: Path, *names: str) -> Path:
    """folder/names..., refusing any name that would leave `folder` (.., /, empty, NUL)."""
    for name in names:
        check_component(name)
    return Path(folder).joinpath(*names)


def check_component(name: str, origin: str = "") -> None:
    """Raise unless `name` is one plain file or folder name (class names become folders)."""
    bad = not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name or len(name.encode()) > 255
    if bad:
        where = f" in {origin}" if origin else ""
        raise GancliError(f"{name!r}{where} cannot be a file name (empty, '.', '..', a slash or too long); rename it.")


def refuse_links(paths) -> None:
    """Refuse to write a run whose files are symbolic links: writing would change the files they point to."""
    for path in paths:
        if Path(path).is_symlink():
            raise UsageError(f"'{path}' is a symbolic link; gancli does not write through links in a run directory. Replace it with a plain file or start a new run.")


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
