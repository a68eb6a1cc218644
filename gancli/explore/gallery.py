"""What the explorer shows: the runs it was given and the PNG images of their seeds, walks, mixes and variations,
each with the `gancli` command that writes the same file, byte for byte.

Requests name a run by its number in the list made at start-up, never by a path, so no request can reach a file
outside the runs the explorer was given. Models stay loaded, one generation at a time per model (truncation is a
setting on the network), and the PNGs made are kept in a cache bounded in bytes.
"""

from __future__ import annotations

import shlex
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from gancli.config import MAX_SEED
from gancli.errors import GancliError, UsageError

MAX_IMAGES = 256  # images in one request: a page of 16x16, or a row per class of 25 seeds for 10 classes
MAX_FRAMES = 240  # images in one walk
MAX_KEYFRAMES = 16
VARIATION_FRAMES = 10  # a variation is image k of the walk from the seed to a neighbour in this many images
CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Picture:
    """One image the page shows: its PNG bytes, the command that writes that file and the file's name."""

    png: bytes
    command: str
    filename: str
    note: str = ""


@dataclass
class Entry:
    """A run the explorer offers: a generator, an upscaler, or one that could not be read (`error`)."""

    path: Path
    name: str
    kind: str = ""
    error: str = ""
    info: dict = field(default_factory=dict)
    model: object = None
    config: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def find_runs(root: Path) -> list[Path]:
    """The run folders under `root` that hold a last checkpoint, oldest first (a run folder, not a link out of root)."""
    from gancli.store.runs import CHECKPOINTS, LAST

    if not root.is_dir():
        return []
    found = [p.parent.parent for p in root.glob(f"*/{CHECKPOINTS}/{LAST}")]
    return sorted((p for p in found if not p.is_symlink()), key=lambda p: (p.stat().st_mtime, p.name))


class Gallery:
    """The runs and their images. Every method takes plain values and raises UsageError for a request that
    cannot work (the page shows its message) and GancliError for a run that cannot be opened."""

    def __init__(self, load, runs: list[Path], root: Path | None = None, upscaler: Path | None = None, device: str = "cpu",
                 ema: bool = True, cache_bytes: int = CACHE_BYTES, latents: list[Path] | None = None):  # fmt: skip
        """`load` opens a model as gancli.load does (the API passes itself in: the gallery sits under it); `latents`:
        folders of projected latents (gancli project) to show beside the seeds of the runs they belong to."""
        self.load, self.root, self.device, self.ema = load, root, device, ema
        self.latent_dirs = [Path(d) for d in latents or []]
        self.entries: list[Entry] = []
        self._given = [Path(p) for p in runs]
        self._cache: OrderedDict[tuple, Picture] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, cache_bytes
        self._lock = threading.Lock()
        self.refresh()
        if upscaler is not None:
            entry = self._add(Path(upscaler))
            if entry.kind != "upscaler":
                raise UsageError(f"--upscaler '{upscaler}' is not an upscaler run ({entry.error or entry.kind}); give a srcnn or upgan run.")
            self.default_upscaler = self.entries.index(entry)
        else:
            self.default_upscaler = None

    # --- the runs ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Add runs that appeared under the runs folder since the last look (runs given by name are fixed)."""
        with self._lock:
            paths = self._given if self._given else find_runs(self.root) if self.root is not None else []
            for path in paths:
                self._add(path)

    def _add(self, path: Path) -> Entry:
        for entry in self.entries:
            if entry.path == path:
                return entry
        entry = Entry(path, path.name if path.name != "last.safetensors" else path.parent.parent.name)
        try:
            from gancli.models import get_architecture
            from gancli.store.checkpoints import read_header
            from gancli.store.runs import resolve_checkpoint

            header = read_header(resolve_checkpoint(path))
            arch, config = get_architecture(header.config.arch), header.config
            entry.kind = header.kind
            entry.config = config
            entry.info = {"arch": config.arch, "kind": header.kind, "step": header.step, "image_size": config.image_size,
                          "channels": config.channels, "dataset": config.dataset, "classes": list(config.class_names) if arch.conditional else [],
                          "truncation": bool(arch.truncation), "mixing": bool(arch.mixing), "scale": getattr(config, "scale", 1)}  # fmt: skip
        except GancliError as error:
            entry.error = str(error)
        self.entries.append(entry)
        return entry

    def describe(self) -> list[dict]:
        """Every run, as the page lists it."""
        self.refresh()
        return [{"id": i, "name": e.name, "path": str(e.path), "kind": e.kind, "error": e.error, **e.info} for i, e in enumerate(self.entries)]

    def model(self, run: int, kind: str = "generator"):
        """The loaded model of run number `run` (loaded once), refused when it is not a `kind`."""
        if not isinstance(run, int) or not 0 <= run < len(self.entries):
            raise UsageError(f"There is no run {run!r}; the explorer has {len(self.entries)} run(s).")
        entry = self.entries[run]
        if entry.error:
            raise GancliError(entry.error)
        if entry.kind != kind:
            raise UsageError(f"'{entry.name}' is {'an' if entry.kind[0] in 'aeiou' else 'a'} {entry.kind} ({entry.info['arch']}), not a {kind}.")
        with entry.lock:
            if entry.model is None:
                try:  # upscalers have no moving average: `sample --upscale` loads them as they are
                    entry.model = self.load(entry.path, ema=self.ema or kind != "generator", device=self.device, kind=kind)
                except GancliError as error:  # the run, not the request, is wrong: a runtime error
                    entry.error = str(error)
                    raise GancliError(entry.error) from None
        return entry

    # --- images ------------------------------------------------------------------------------------

    def images(self, run: int, seeds: list[int], label: int | None = None, truncation: float | None = None,
               upscaler: int | None = None) -> list[Picture]:  # fmt: skip
        """Each seed's image: the file `gancli sample --seeds S --outdir DIR` writes (seedSSSS.png)."""
        if not 1 <= len(seeds) <= MAX_IMAGES:
            raise UsageError(f"Ask for 1 to {MAX_IMAGES} images at a time, not {len(seeds)}.")
        _check_seeds(seeds)
        entry = self.model(run)
        up = self.model(upscaler, "upscaler") if upscaler is not None else None
        label = self._label(entry, label)
        truncation = self._truncation(entry, truncation)
        found = {s: self._get(("seed", run, s, label, truncation, upscaler)) for s in seeds}
        missing = [s for s, picture in found.items() if picture is None]
        if missing:
            with entry.lock:
                images = entry.model.sample(seeds=missing, label=label, truncation=truncation, upscaler=up.model if up else None)
            flags = self._flags(entry, label, truncation) + ([f"--upscale {shlex.quote(str(up.path))}"] if up else [])
            for s, image in zip(missing, images):
                command = f"gancli sample -c {shlex.quote(str(entry.path))} --seeds {s} {' '.join(flags + ['--outdir explore/'])}"
                found[s] = self._keep(("seed", run, s, label, truncation, upscaler), Picture(_png(image), command, f"seed{s:04d}.png"))
        return [found[s] for s in seeds]

    def walk(self, run: int, seeds: list[int], frames: int = 24, method: str = "slerp", label: int | None = None,
             labels: list[int] | None = None, truncation: float | None = None, pick: list[int] | None = None,
             outdir: str = "walk") -> list[Picture]:  # fmt: skip
        """The walk through the seeds, `frames` images per segment with both ends (`pick`: only those): the files of
        `gancli interpolate SEEDS --frames F --outdir DIR` (frame0000.png ..., row by row)."""
        if not 2 <= len(seeds) <= MAX_KEYFRAMES:
            raise UsageError(f"A walk goes through 2 to {MAX_KEYFRAMES} seeds, not {len(seeds)}.")
        if not 2 <= frames or (len(seeds) - 1) * frames > MAX_FRAMES:
            raise UsageError(f"A walk holds at most {MAX_FRAMES} images, 2 or more per segment; ask for fewer frames.")
        _check_seeds(seeds)
        entry = self.model(run)
        label = None if labels else self._label(entry, label)
        labels = [self._label(entry, x) for x in labels] if labels else None
        if labels is not None and len(labels) != len(seeds):
            raise UsageError(f"Give one class per seed: {len(labels)} classes for {len(seeds)} seeds.")
        truncation = self._truncation(entry, truncation)
        key = ("walk", run, tuple(seeds), frames, method, label, tuple(labels or ()), truncation, tuple(pick or ()), outdir)
        pictures = self._get(key)
        if pictures is None:
            with entry.lock:
                images = entry.model.interpolate(seeds, frames=frames, method=method, label=label, labels=labels, truncation=truncation, pick=pick)
            flags = self._flags(entry, label, truncation) + ([f"--labels {','.join(map(str, labels))}"] if labels else [])
            command = (f"gancli interpolate {' '.join(map(str, seeds))} -c {shlex.quote(str(entry.path))} --frames {frames} --method {method} "
                       f"{' '.join(flags + [f'--outdir {outdir}/'])}")  # fmt: skip
            indices = pick if pick is not None else range(len(images))
            pictures = self._keep(key, [Picture(_png(image), command, f"frame{i:04d}.png") for i, image in zip(indices, images)])
        return pictures

    def mix(self, run: int, seed: int, mix: int, layer: int | None = None, truncation: float | None = None) -> Picture:
        """Style mixing: `seed`'s coarse styles with `mix`'s fine ones, the middle image of each row of
        `gancli interpolate SEED --mix MIX --out mixing.png`."""
        _check_seeds([seed, mix])
        entry = self.model(run)
        truncation = self._truncation(entry, truncation)
        key = ("mix", run, seed, mix, layer, truncation)
        picture = self._get(key)
        if picture is None:
            with entry.lock:
                images = entry.model.mix([seed], mix, mix_layer=layer, truncation=truncation)
            flags = self._flags(entry, None, truncation) + ([f"--mix-layer {layer}"] if layer is not None else [])
            command = f"gancli interpolate {seed} --mix {mix} -c {shlex.quote(str(entry.path))} {' '.join(flags + ['--out mixing.png'])}"
            picture = self._keep(key, Picture(_png(images[1]), command, f"mix-{seed}-{mix}.png", "the middle image of mixing.png"))
        return picture

    def variations(self, run: int, seed: int, count: int = 8, distance: int = 2, label: int | None = None,
                   truncation: float | None = None) -> list[Picture]:  # fmt: skip
        """Images near `seed`: image `distance` (1 to 5) of the walk from seed towards each of `count` neighbour seeds,
        VARIATION_FRAMES images long, so each is a file `gancli interpolate SEED NEIGHBOUR --outdir` writes."""
        if not 1 <= count <= 32 or not 1 <= distance <= 5:
            raise UsageError("Variations: 1 to 32 of them, at a distance of 1 to 5.")
        _check_seeds([seed])
        pictures = []
        for neighbour in neighbours(seed, count):
            (picture,) = self.walk(run, [seed, neighbour], VARIATION_FRAMES, "slerp", label, None, truncation, [distance], "variations")
            pictures.append(Picture(picture.png, picture.command, picture.filename,
                                    f"{distance} of {VARIATION_FRAMES - 1} steps from seed {seed} towards seed {neighbour}"))  # fmt: skip
        return pictures

    def projected(self, run: int) -> list[Picture]:
        """The run's projected latents found in the latent folders, each drawn as `gancli sample --latent` draws it."""
        from gancli.store.latents import SUFFIX, fingerprint, load_latent

        entry = self.model(run)
        mark = fingerprint(entry.config)
        pictures = []
        for folder in self.latent_dirs:
            for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
                key = ("latent", run, str(path), path.stat().st_mtime_ns)
                picture = self._get(key)
                if picture is None:
                    try:
                        latent = load_latent(path)
                    except GancliError:
                        continue  # unreadable or crafted: not shown
                    if latent.fingerprint != mark:
                        continue  # another run's
                    with entry.lock:
                        image = entry.model.render([latent])[0]
                    flags = " --no-ema" if not self.ema else ""
                    command = f"gancli sample -c {shlex.quote(str(entry.path))} --latent {shlex.quote(str(path))}{flags} --outdir explore/"
                    picture = self._keep(key, Picture(_png(image), command, f"{latent.name}.png", f"projected from {latent.source or path}"))
                pictures.append(picture)
                if len(pictures) >= MAX_IMAGES:
                    return pictures
        return pictures

    # --- helpers -----------------------------------------------------------------------------------

    def _label(self, entry: Entry, label) -> int | None:
        classes = entry.info["classes"]
        if not classes:
            if label is not None:
                raise UsageError(f"'{entry.name}' is unconditional: it has no classes to pick.")
            return None
        label = 0 if label is None else label
        if not isinstance(label, int) or not 0 <= label < len(classes):
            raise UsageError(f"Class {label!r} is not one of the {len(classes)} classes (0 to {len(classes) - 1}).")
        return label

    def _truncation(self, entry: Entry, truncation: float | None) -> float | None:
        if truncation is None or truncation == 1.0:
            return None
        if not entry.info["truncation"]:
            raise UsageError(f"Truncation needs a style-based generator; '{entry.name}' is {entry.info['arch']}.")
        if not 0.0 <= truncation <= 2.0:
            raise UsageError(f"Truncation {truncation} is out of range; use 0 to 2.")
        return truncation

    def _flags(self, entry: Entry, label: int | None, truncation: float | None) -> list[str]:
        flags = [f"--label {label}"] if label is not None else []
        return flags + ([f"--truncation {truncation!r}"] if truncation is not None else []) + ([] if self.ema else ["--no-ema"])

    def _get(self, key: tuple):
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _keep(self, key: tuple, value):
        size = sum(len(p.png) for p in value) if isinstance(value, list) else len(value.png)
        with self._lock:
            self._cache[key] = value
            self._cache_bytes += size
            while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= sum(len(p.png) for p in old) if isinstance(old, list) else len(old.png)
        return value


def neighbours(seed: int, count: int) -> list[int]:
    """The seeds a variation walks towards: fixed for each seed, never the seed itself."""
    return [(seed * 1_000_003 + 7_919 * (i + 1)) % (MAX_SEED + 1) for i in range(count)]


def _check_seeds(seeds: list[int]) -> None:
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise UsageError(f"Seed {s!r} is not a whole number from 0 to {MAX_SEED}.")


def _png(image) -> bytes:
    from gancli.data.images import png_bytes

    return png_bytes(image)
