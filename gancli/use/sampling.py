"""Generating images from a trained generator: seeded streams in batches, or exact per-seed renders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from gancli.config import TrainConfig
from gancli.store.files import existing_names
from gancli.data.images import to_uint8
from gancli.use.latent import latent_batches
from gancli.models import get_architecture

# Fixed so that --n N --seed S gives the same images whatever the device or memory: the z
# stream is drawn, and run through the generator, in batches of this size.
SAMPLE_BATCH = 256


@torch.no_grad()
def generate(
    generator: torch.nn.Module,
    config: TrainConfig,
    n: int,
    seed: int,
    device: torch.device,
    labels=None,
    advance=None,
) -> Iterator[torch.Tensor]:
    """`n` images as uint8 (B, C, H, W) batches; the same seed (and labels) always give the same images.

    Args:
        labels: class indices (a tensor (n,) or Labels) for conditional generators; None for unconditional ones.
        advance: called with each batch's size once the caller has used it (a progress bar).
    """
    start = 0
    for z in latent_batches(seed, n, config.latent_dim, SAMPLE_BATCH):
        condition = () if labels is None else (labels[start : start + len(z)].to(device),)
        start += len(z)
        yield to_uint8(generator(z.to(device), *condition))
        if advance is not None:
            advance(len(z))


@torch.no_grad()
def render(
    generator: torch.nn.Module,
    z: torch.Tensor,
    device: torch.device,
    labels: torch.Tensor | None = None,
    embeddings: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images for the latents z (N, latent_dim) as uint8 (N, C, H, W), one latent at a time.

    Batched maths can differ from single-image maths in the last bits, which rounding to
    uint8 occasionally shows; rendering one at a time makes an image depend on its own z
    (and label or label embedding) alone, so `sample --seeds 3` and an interpolation ending at
    seed 3 give identical pixels.
    """
    images = []
    for i in range(len(z)):
        zi = z[i : i + 1].to(device)
        if embeddings is not None:
            out = generator.from_embedding(zi, embeddings[i : i + 1].to(device))
        elif labels is not None:
            out = generator(zi, labels[i : i + 1].to(device))
        else:
            out = generator(zi)
        images.append(to_uint8(out))
    return torch.cat(images)


# --- what the sample and interpolate commands ask for -----------------------------------------


class Labels:
    """The labels of a stream of images, made a batch at a time (labels[a:b]) so that memory does not grow with n.

    per_class 0: every class in turn (0, 1, ..., k-1, 0, ...); per_class p: p of class 0, then p of class 1, ...;
    fixed c: class c throughout.
    """

    def __init__(self, num_classes: int, per_class: int = 0, fixed: int | None = None):
        self.num_classes, self.per_class, self.fixed = num_classes, per_class, fixed

    def __getitem__(self, part: slice) -> torch.Tensor:
        index = torch.arange(part.start or 0, part.stop)
        if self.fixed is not None:
            return torch.full_like(index, self.fixed)
        return index // self.per_class if self.per_class else index % self.num_classes


def cycle_labels(num_classes: int, n: int) -> torch.Tensor:
    """Every class in turn: 0, 1, ..., k-1, 0, 1, ..."""
    return Labels(num_classes)[0:n]


def class_rows(num_classes: int, per_class: int) -> torch.Tensor:
    """Labels for a class grid: per_class of class 0, then of class 1, ..."""
    return Labels(num_classes, per_class)[0 : num_classes * per_class]


def stream_labels(config: TrainConfig, count: int, class_index: int | str | None) -> Labels:
    """Labels for `count` streamed images: one class, a row per class ("all"), or every class in turn."""
    from gancli.use.labels import ALL

    if class_index == ALL:
        return Labels(config.num_classes, per_class=count // config.num_classes)
    if class_index is None:
        return Labels(config.num_classes)
    return Labels(config.num_classes, fixed=int(class_index))


@dataclass
class Tally:
    """Files an --outdir export has written and kept so far: what a Ctrl-C reports."""

    written: int = 0
    skipped: int = 0


def image_count(config: TrainConfig, n: int | None, class_index, seeds: list[int] | None, per_class: int | None) -> int:
    """How many images `gancli sample` makes: --per-class for each class, each seed (for each class with --label all),
    or --n (default 64; with --label all, 8 per class)."""
    from gancli.use.labels import ALL

    if per_class is not None:
        return per_class * config.num_classes
    if seeds is not None:
        return len(seeds) * (config.num_classes if class_index == ALL else 1)
    return (n or 8) * config.num_classes if class_index == ALL else n or 64


def file_bytes(config: TrainConfig, generator) -> int:
    """About the most one image file of this generator takes: its raw pixels (PNG rarely does better on samples) and headers."""
    side = config.image_size * getattr(generator, "scale", 1)
    return 3 * side * side + 1024


def stream_file(index: int) -> str:
    return f"{index:05d}.png"


def _stream_clashes(folder: Path, count: int) -> list[str]:
    """Names in `folder` that an export of `count` stream images would write (00000.png ...)."""
    found = [name for name in existing_names(folder) if name.endswith(".png") and name[:-4].isdigit() and len(name) >= 9]
    return sorted(name for name in found if int(name[:-4]) < count and stream_file(int(name[:-4])) == name)


def _save_new(batch: torch.Tensor, paths: list[Path], skip: set[Path], tally: Tally) -> None:
    """Save each image, except those whose file is kept (--skip-existing)."""
    from gancli.data.images import save_each

    for image, path in zip(batch, paths):
        if path in skip:
            tally.skipped += 1
            continue
        save_each(image.unsqueeze(0), [path])
        tally.written += 1


def export_image_folder(generator, config: TrainConfig, per_class: int, seed: int, device, out_dir: Path, advance=None,
                        existing: str = "refuse", tally: Tally | None = None) -> int:  # fmt: skip
    """`per_class` images of every class into out_dir/<class name>/00000.png, the layout
    torchvision.datasets.ImageFolder reads. Returns how many were written."""
    from gancli.store.files import child, refuse_existing

    tally = tally if tally is not None else Tally()
    labels = Labels(config.num_classes, per_class)
    count = config.num_classes * per_class
    folders = [child(out_dir, name) for name in config.class_names]  # a class name is a folder name, never a path
    found = [folder / name for folder in folders for name in _stream_clashes(folder, count)]
    refuse_existing(out_dir, [str(p.relative_to(out_dir)) for p in found], existing)
    skip = set(found) if existing == "skip" else set()
    written = 0
    for batch in generate(generator, config, count, seed, device, labels, advance):
        classes = labels[written : written + len(batch)].tolist()
        _save_new(batch, [folders[c] / stream_file(written + i) for i, c in enumerate(classes)], skip, tally)
        written += len(batch)
    return written


def seed_images(generator, config: TrainConfig, seeds: list[int], device, label: int | str | None) -> torch.Tensor:
    """The exact image of each seed. With label "all", every seed under every class: a row per class."""
    from gancli.use.labels import ALL
    from gancli.use.latent import seed_latents

    z = seed_latents(seeds, config.latent_dim)
    if not get_architecture(config.arch).conditional:
        return render(generator, z, device)
    if label == ALL:
        return render(generator, z.repeat(config.num_classes, 1), device, labels=class_rows(config.num_classes, len(seeds)))
    labels = torch.full((len(seeds),), label) if label is not None else cycle_labels(config.num_classes, len(seeds))
    return render(generator, z, device, labels=labels)


@torch.no_grad()
def walk(
    generator,
    config: TrainConfig,
    seeds: list[int],
    steps: int,
    method: str,
    device,
    labels: list[int] | None = None,
    pick: list[int] | None = None,
) -> torch.Tensor:
    """Images along the path through the seeds' latents: `steps` per segment, endpoints included (`pick`: only those).

    Returns uint8 (segments * steps, C, H, W), segment by segment. Each endpoint is exactly its
    seed's image. For conditional generators `labels` holds one class per seed and the class
    embedding moves linearly between them alongside z.
    """
    return torch.cat(list(walk_batches(generator, config, seeds, steps, method, device, labels, repeat_ends=True, pick=pick)))


def walk_batches(generator, config: TrainConfig, seeds: list[int], steps: int, method: str, device, labels: list[int] | None = None,
                 repeat_ends: bool = False, batch: int = 32, pick: list[int] | None = None) -> Iterator[torch.Tensor]:  # fmt: skip
    """walk()'s images a batch at a time, so a long video never holds its frames. Without `repeat_ends`, a segment's
    first frame (the last one's end) is not repeated: the frames of an animation. `pick` keeps only those images
    of the walk (indices), each with the pixels it has in the whole walk."""
    from gancli.use.latent import INTERPOLATORS, lerp, path_fractions

    keys, space = keyframe_latents(generator, config, seeds, device)
    interpolate = INTERPOLATORS[method] if space == "z" else lerp  # w+ is not Gaussian: a straight line
    fractions = path_fractions(steps)
    # label embeddings are not Gaussian: they move on a straight line, not slerp
    embeddings = None if labels is None else generator.embed(torch.tensor(labels, device=device)).cpu()
    points = [(i, t) for i in range(len(seeds) - 1) for j, t in enumerate(fractions) if repeat_ends or i == 0 or j > 0]
    points = points if pick is None else [points[k] for k in pick]
    for start in range(0, len(points), batch):
        part = points[start : start + batch]
        z = torch.stack([interpolate(keys[i], keys[i + 1], t) for i, t in part])
        if space == "w+":
            yield torch.cat([to_uint8(generator.forward_w(z[k : k + 1].to(device))) for k in range(len(z))])
            continue
        e = None if embeddings is None else torch.stack([lerp(embeddings[i], embeddings[i + 1], t) for i, t in part])
        yield render(generator, z, device, embeddings=e)


@torch.no_grad()
def keyframe_latents(generator, config: TrainConfig, keyframes: list, device) -> tuple[torch.Tensor, str]:
    """The latents of a walk's keyframes, each a seed or a latent's value, and their space: "z", or "w+" when
    any keyframe is a w+ latent (a seed then enters as its styles, truncated as the generator is)."""
    from gancli.use.latent import seed_latent

    values = [seed_latent(k, config.latent_dim) if isinstance(k, int) else k.float().cpu() for k in keyframes]
    if all(v.dim() == 1 for v in values):
        return torch.stack(values), "z"
    styles = [v if v.dim() == 2 else generator.styles(v[None].to(device))[0].cpu() for v in values]
    return torch.stack(styles), "w+"


def walk_length(seeds: int, steps: int) -> int:
    """Frames in an animation of a walk through `seeds` keyframes (segment starts not repeated)."""
    return 1 + (seeds - 1) * (steps - 1)


@torch.no_grad()
def style_mixing_grid(generator, config: TrainConfig, seeds: list[int], fine_seed: int, device, crossover: int | None = None) -> torch.Tensor:
    """Style-based generators: per seed, a row of three images as uint8 (3 * len(seeds), C, H, W):
    the seed's own image, its coarse styles with `fine_seed`'s fine ones, and fine_seed's own image."""
    from gancli.use.latent import seed_latent

    fine = seed_latent(fine_seed, config.latent_dim).unsqueeze(0).to(device)
    rows = []
    for seed in seeds:
        coarse = seed_latent(seed, config.latent_dim).unsqueeze(0).to(device)
        rows += [generator(coarse), generator.mixed(coarse, fine, crossover), generator(fine)]
    return to_uint8(torch.cat(rows))


# --- writing what `gancli sample` asks for ------------------------------------------------------


def write_seeds(generator, config: TrainConfig, seeds: list[int], device, class_index, out: Path, out_dir: Path | None, nrow: int | None,
                existing: str = "refuse", tally: Tally | None = None) -> tuple[int, str]:  # fmt: skip
    """Each seed's exact image, as one grid (`out`) or one file per seed in `out_dir`; returns (count, what was written)."""
    from gancli.store.files import child
    from gancli.data.images import grid_layout, grid_of, save_grid
    from gancli.use.labels import ALL

    if out_dir is not None:
        from gancli.store.files import refuse_existing

        names = [f"seed{s:04d}.png" for s in seeds]
        if class_index == ALL:
            names = [f"{name}-seed{s:04d}.png" for name in config.class_names for s in seeds]
        paths = [child(out_dir, name) for name in names]
        found = sorted(existing_names(out_dir) & set(names))
        refuse_existing(out_dir, found, existing)
        skip = {out_dir / name for name in found} if existing == "skip" else set()
        _save_new(seed_images(generator, config, seeds, device, class_index), paths, skip, tally if tally is not None else Tally())
        return len(names), f"{out_dir / names[0]}" if len(names) == 1 else f"{len(names)} images to {out_dir}/ ({names[0]} ... {names[-1]})"
    columns = nrow or (len(seeds) if class_index == ALL else None)
    images = seed_images(generator, config, seeds, device, class_index)
    save_grid(images, out, nrow=columns)
    return len(images), f"{grid_of(len(images))} ({grid_layout(len(images), columns)}) to {out}"


def write_stream(generator, config: TrainConfig, n: int | None, seed: int, device, class_index, out: Path, out_dir: Path | None,
                 nrow: int | None, advance=None, existing: str = "refuse", tally: Tally | None = None) -> tuple[int, str]:  # fmt: skip
    """`n` images of one seeded stream (with --label all: n per class), as a grid or files 00000.png ...; returns (count, what)."""
    from gancli.data.images import Grid, grid_layout, grid_of
    from gancli.use.labels import ALL

    per_row = n or 8
    count = per_row * config.num_classes if class_index == ALL else n or 64
    columns = nrow or per_row if class_index == ALL else nrow
    labels = stream_labels(config, count, class_index) if get_architecture(config.arch).conditional else None
    batches = generate(generator, config, count, seed, device, labels, advance)
    if out_dir is not None:
        from gancli.store.files import refuse_existing

        found = _stream_clashes(out_dir, count)
        refuse_existing(out_dir, found, existing)
        skip = {out_dir / name for name in found} if existing == "skip" else set()
        written = 0
        for batch in batches:
            _save_new(batch, [out_dir / stream_file(written + i) for i in range(len(batch))], skip, tally if tally is not None else Tally())
            written += len(batch)
        return count, f"{count} images to {out_dir}/ (seed {seed})"
    grid = None
    for batch in batches:  # pasted as they come: memory holds the uint8 canvas and one batch
        grid = grid or Grid(count, tuple(batch.shape[1:]), columns)
        grid.add(batch)
    grid.save(out)
    return count, f"{grid_of(count)} ({grid_layout(count, columns)}) to {out} (seed {seed})"

