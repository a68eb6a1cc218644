"""Writing a trained generator's images to files: what `gancli sample` and `gancli interpolate` do, for the API.

Every check comes before the first image: names that would clash, room on the disk, a class that
does not exist. An export into a folder that is stopped leaves whole files and says how far it got.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from gancli.errors import Interrupted, UsageError
from gancli.store.files import existing_names


@dataclass
class Written:
    """What an export wrote: `what` says it in words; `notes` are lines worth telling (the labels used)."""

    count: int
    what: str
    seconds: float = 0.0
    seed: int | None = None
    notes: list[str] = field(default_factory=list)


class ExportStopped(Interrupted):
    """Ctrl-C during an --outdir export: every file written is whole; `seed` continues it."""

    def __init__(self, message: str, written: int, total: int, seed: int | None):
        super().__init__(message)
        self.written, self.total, self.seed = written, total, seed


def check_existing_policy(existing: str) -> None:
    if existing not in ("refuse", "overwrite", "skip"):
        raise UsageError(f"existing={existing!r}; use 'refuse', 'overwrite' or 'skip'.")


def write_latents(model, latents: list, out: Path | None, outdir: Path | None, nrow=None, existing="refuse", force=False) -> Written:
    """`gancli sample --latent`: each latent's image, as a grid at `out` or as outdir/NAME.png, NAME from its file."""
    from gancli.data.images import check_writable, save_each, save_grid
    from gancli.store.files import check_output, child
    from gancli.store.latents import Latent, latent_files, load_latent

    started = time.perf_counter()
    loaded = []
    for item in latents:
        loaded += [item] if isinstance(item, Latent) else [load_latent(f) for f in latent_files([item])]
    names = [latent.name + ".png" for latent in loaded]
    clash = next((n for n in names if names.count(n) > 1), None)
    if outdir is not None and clash is not None:
        raise UsageError(f"Two latents are named '{clash[:-4]}': their images would overwrite each other; write them to separate folders.")
    images = model.render(loaded, force=force)
    if outdir is None:
        check_output(out)
        check_writable(out.parent)
        save_grid(images, out, nrow=nrow)
        return Written(len(images), f"a grid of {len(images)} latent image(s) to {out}", time.perf_counter() - started)
    check_writable(outdir)
    found = sorted(existing_names(outdir) & set(names))
    from gancli.store.files import refuse_existing

    refuse_existing(outdir, found, existing)
    todo = [i for i, name in enumerate(names) if not (existing == "skip" and name in found)]
    save_each(images[todo], [child(outdir, names[i]) for i in todo])
    return Written(len(todo), f"{len(todo)} latent image(s) to {outdir}/ ({names[0]} ...)", time.perf_counter() - started)


def write_samples(model, generator, out: Path | None, outdir: Path | None, *, n=None, seed=None, seeds=None, label=None, per_class=None,
                  nrow=None, existing="refuse", progress=None) -> Written:  # fmt: skip
    """`gancli sample`: a grid at `out`, or one file per image in `outdir` (an ImageFolder tree with `per_class`)."""
    from gancli.data.folder_cache import silent_work
    from gancli.data.images import check_writable
    from gancli.store.files import check_output, check_room, remove_orphans
    from gancli.use import sampling
    from gancli.use.labels import ALL, parse_label

    progress = progress or silent_work
    config = model.config
    check_existing_policy(existing)
    if seeds is not None and (seed is not None or n is not None):
        raise UsageError("--seeds names every image itself; drop --n and --seed, or drop --seeds.")
    if per_class is not None and (outdir is None or label is not None or seeds is not None or n is not None):
        raise UsageError("--per-class writes an ImageFolder tree: give it with --outdir DIR and without --n, --label or --seeds.")
    if (label is not None or per_class is not None) and not model.arch.conditional:
        raise UsageError(f"'{model.path}' is unconditional; drop {'--label' if label is not None else '--per-class'} or train with --arch cdcgan or cgan.")
    if existing != "refuse" and outdir is None:
        raise UsageError(f"{'--overwrite' if existing == 'overwrite' else '--skip-existing'} is about files in --outdir; give --outdir DIR or drop it.")
    class_index = None if label is None else ALL if str(label).lower() == ALL else parse_label(str(label), config.class_names)
    seed = random.randrange(2**31) if seed is None and seeds is None else seed
    check_writable(outdir if outdir is not None else out.parent)
    total = sampling.image_count(config, n, class_index, seeds, per_class)
    if outdir is None:
        check_output(out)
    else:
        remove_orphans(outdir, depth=1)  # the temporary files of an export that was killed (class folders are one down)
        check_room(outdir, total, sampling.file_bytes(config, generator))
    started, tally = time.perf_counter(), sampling.Tally()
    try:
        if per_class is not None:
            with progress(total, "Sampling") as advance:
                count = sampling.export_image_folder(generator, config, per_class, seed, model.device, outdir, advance, existing, tally)
            what = f"{per_class} images for each of {config.num_classes} classes to {outdir}/<class>/ (seed {seed})"
        elif seeds is not None:
            count, what = sampling.write_seeds(generator, config, seeds, model.device, class_index, out, outdir, nrow, existing, tally)
        else:
            with progress(total, "Sampling") as advance:
                count, what = sampling.write_stream(generator, config, n, seed, model.device, class_index, out, outdir, nrow, advance, existing, tally)
    except KeyboardInterrupt:
        if outdir is None:
            raise
        raise ExportStopped(f"Stopped after writing {tally.written:,} of {total:,} images to {outdir}/ (each file is whole)", tally.written, total,
                            seed) from None  # fmt: skip
    if tally.skipped:
        what += f"; kept {tally.skipped:,} existing file(s)"
    notes = []
    if model.arch.conditional and label is None and per_class is None:
        notes.append(f"Labels: every class in turn ({', '.join(config.class_names)}); pick one with --label.")
    return Written(count, what, time.perf_counter() - started, seed, notes)


def walk_classes(model, label, labels, count: int, loop: bool, own: list | None = None) -> list[int] | None:
    """One class per keyframe for conditional generators (None for unconditional ones); `own`: a latent keyframe's
    own class, kept unless --label or --labels says otherwise."""
    from gancli.use.labels import parse_label, parse_label_list

    if label is not None and labels is not None:
        raise UsageError("Give --label (one class throughout) or --labels (one per seed), not both.")
    if not model.arch.conditional:
        if label is not None or labels is not None:
            raise UsageError(f"'{model.path}' is unconditional; drop --label/--labels or train with --arch cdcgan or cgan.")
        return None
    names = model.config.class_names
    if labels is not None:
        classes = parse_label_list(",".join(str(x) for x in labels) if not isinstance(labels, str) else labels, names)
        if len(classes) != count:
            raise UsageError(f"--labels gives {len(classes)} {'class' if len(classes) == 1 else 'classes'} for {count} seeds; give one class per seed "
                             "(--labels 3,8 or --labels 3 --labels 8).")  # fmt: skip
    else:
        held = parse_label(str(label), names) if label is not None else None
        classes = [held if held is not None else c if c is not None else 0 for c in (own or [None] * count)]
    return classes + [classes[0]] if loop else classes


def frame_file(index: int) -> str:
    """The name of a walk's image in `interpolate --outdir`: its place in the grid, row by row."""
    return f"frame{index:04d}.png"


def write_walk(model, seeds: list[int], out: Path | None, gif: Path | None = None, video: Path | None = None, outdir: Path | None = None, *,
               frames=8, gif_frames=24, fps=12.0, method="slerp", loop=False, label=None, labels=None, existing="refuse",
               own=None, shown_as=None) -> list[str]:  # fmt: skip
    """`gancli interpolate`: the walk's grid (a row per segment), its images one file each, GIF and MP4; a line per output."""
    from gancli.config import MAX_SEED
    from gancli.data.images import check_writable, save_gif, save_grid
    from gancli.store.files import check_output, child, refuse_existing, remove_orphans
    from gancli.use import sampling
    from gancli.use.video import check_video_support, save_video

    check_existing_policy(existing)
    if existing != "refuse" and outdir is None:
        raise UsageError(f"{'--overwrite' if existing == 'overwrite' else '--skip-existing'} is about files in --outdir; give --outdir DIR or drop it.")

    if len(seeds) < 2:
        raise UsageError("interpolate needs at least two seeds, e.g. gancli interpolate 1 2.")
    if video is not None:
        check_video_support()  # before any work: say what is missing at once
    if any(isinstance(s, int) and not 0 <= s <= MAX_SEED for s in seeds):
        raise UsageError(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
    for path, what in ((out, "--out"), (gif, "--gif"), (video, "--video")):
        if path is not None:
            check_output(path, what)
            check_writable(path.parent)
    keyframes = list(seeds) + [seeds[0]] if loop else list(seeds)
    classes = walk_classes(model, label, labels, len(seeds), loop, own)
    names = [frame_file(i) for i in range((len(keyframes) - 1) * frames)] if outdir is not None else []
    if outdir is not None:
        check_writable(outdir)
        remove_orphans(outdir)
        found = sorted(existing_names(outdir) & set(names))
        refuse_existing(outdir, found, existing)
        keep = set(found) if existing == "skip" else set()
    lines = []
    if out is not None or outdir is not None:
        images = sampling.walk(model.net, model.config, keyframes, frames, method, model.device, classes)
        named = shown_as or [str(k) if isinstance(k, int) else "a latent" for k in seeds]
        shown = ", ".join(named + named[:1] if loop else named)
        through = f"({method}) through {'seeds ' if all(isinstance(k, int) for k in keyframes) else ''}{shown}"
        if out is not None:
            save_grid(images, out, nrow=frames)
            lines.append(f"Wrote {out}: {len(keyframes) - 1} row(s) of {frames} images {through}")
        if outdir is not None:
            from gancli.data.images import save_each

            todo = [i for i, name in enumerate(names) if name not in keep]
            save_each(images[todo], [child(outdir, names[i]) for i in todo])
            kept = f"; kept {len(keep):,} existing file(s)" if keep else ""
            lines.append(f"Wrote {len(todo)} images to {outdir}/ ({names[0]} ... {names[-1]}, row by row) {through}{kept}")
    for path, save in ((gif, save_gif), (video, save_video)):
        if path is not None:  # frames made and encoded a batch at a time: a long walk never sits in memory
            save(sampling.walk_batches(model.net, model.config, keyframes, gif_frames, method, model.device, classes), path, fps)
            lines.append(f"Wrote {path}: {sampling.walk_length(len(keyframes), gif_frames)} frames at {fps:g} fps")
    if classes is not None and labels is None:
        lines.append(f"Label: {model.config.class_names[classes[0]]} throughout" + ("" if label else " (the first class; pick one with --label)"))
    return lines


def check_mixing(model, mix_layer: int | None) -> None:
    if not model.arch.mixing:
        raise UsageError(f"--mix needs a style-based generator; '{model.path}' is {model.config.arch} (train one with --arch stylegan).")
    if mix_layer is not None and not 1 <= mix_layer < model.net.num_styles:
        raise UsageError(f"--mix-layer {mix_layer} is out of range; use 1 to {model.net.num_styles - 1}.")


def write_mixing(model, seeds: list[int], mix: int, mix_layer: int | None, out: Path) -> str:
    """`gancli interpolate --mix`: per seed, its image, its coarse styles with `mix`'s fine ones, and mix's image."""
    from gancli.data.images import check_writable, save_grid
    from gancli.store.files import check_output
    from gancli.use import sampling

    check_mixing(model, mix_layer)
    check_output(out)
    check_writable(out.parent)
    save_grid(sampling.style_mixing_grid(model.net, model.config, list(seeds), mix, model.device, mix_layer), out, nrow=3)
    return f"Wrote {out}: a row per seed ({', '.join(map(str, seeds))}): its image, its coarse styles with seed {mix}'s fine ones, seed {mix}'s image"


def write_projections(model, inputs: list, outdir: Path, *, steps: int, seed: int = 0, label=None, feature_weight: float = 0.0,
                      batch: int = 64, existing: str = "refuse", progress=None, classifier=None) -> tuple[object, list[str]]:  # fmt: skip
    """`gancli project`: for each image file, NAME.latent.safetensors and NAME.png (the target and its reconstruction
    side by side) in `outdir`. Returns (the Projected, lines worth telling: converted images)."""
    from gancli.data.images import check_writable, expand_image_paths, load_image, save_grid
    from gancli.store.files import child, refuse_existing, remove_orphans
    from gancli.store.latents import SUFFIX, save_latent

    check_existing_policy(existing)
    paths = expand_image_paths([str(p) for p in inputs])
    if not paths:
        raise UsageError("Give image files, folders or globs to project.")
    names = [p.stem for p in paths]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash is not None:
        raise UsageError(f"Two inputs are named '{clash}': their latents would overwrite each other; project them into separate --outdir folders.")
    check_writable(outdir)
    remove_orphans(outdir)
    outputs = [name + ending for name in names for ending in (SUFFIX, ".png")]
    found = sorted(existing_names(outdir) & set(outputs))
    refuse_existing(outdir, found, existing)
    images = [load_image(p) for p in paths]
    projected = model.project(images, steps=steps, seed=seed, label=label, feature_weight=feature_weight, batch=batch, progress=progress,
                              classifier=classifier)  # fmt: skip
    keep = set(found) if existing == "skip" else set()
    for i, (name, path, latent) in enumerate(zip(names, paths, projected.latents)):
        latent.source = str(path)
        if name + SUFFIX not in keep:
            save_latent(child(outdir, name + SUFFIX), latent)
        if name + ".png" not in keep:
            import torch

            save_grid(torch.stack([projected.targets[i], projected.images[i]]), child(outdir, name + ".png"), nrow=2)
    notes = [f"Converted {len(projected.converted)} image(s) to the run's {model.config.image_size}x{model.config.image_size}, "
             f"{model.config.channels} channel(s): {', '.join(names[i] for i in projected.converted[:5])}{' ...' if len(projected.converted) > 5 else ''}"]  # fmt: skip
    return projected, notes if projected.converted else []
