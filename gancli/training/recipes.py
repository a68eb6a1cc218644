"""Named recipes: measured sets of `gancli train` options, applied wherever the user gave no flag of their own.

Each one's values come from a sweep recorded in docs/recipes.md; change them only with a new measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from gancli.errors import UsageError


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str  # one line, shown in `gancli train --help`
    values: tuple[tuple[str, object], ...]  # `gancli train` option names (parameter spelling) and values
    archs: tuple[str, ...]  # architectures it was measured on
    instead: dict | None = None  # arch -> the recipe to use there (measured worse with this one)
    skip: dict | None = None  # arch -> options of the recipe it does not take (measured worse there)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        # Swept on the bundled digits, 2 CPU cores: width 16 runs 1,500 steps in about 50 s; learning rate
        # 3e-3 with EMA gave FID 33-39 over three seeds (2e-3: 34-43, 1e-3: 69, 2e-4: 251), where the
        # default widths at 2e-4 reach FID 647 in the same time. Lazy R1 with gamma 1 then took benchmarks/quality.py's
        # FID from 26.3 to 15.3 (seeds 0 and 1; gamma 0.1: 18.0, 3: 25.3, 10: 43.9). 2,000 steps instead of 1,500 then
        # took the quick start's FID from 28.1 to 20.6 (seeds 0-2, one classifier; batch 64 at 1,500 steps, the same
        # time: 25.2), and StyleGAN2's Adam betas with R1, 0 / 0.99, to 14.5. See docs/recipes.md.
        Recipe("quick", "a first look in about a minute on a CPU: small G and D, high learning rates, EMA, R1, Adam betas 0 / 0.99, 2,000 steps",
               (("generator_width", 16), ("discriminator_width", 16), ("lr_g", 3e-3), ("lr_d", 3e-3), ("ema", True), ("r1", 1.0),
                ("beta1", 0.0), ("beta2", 0.99), ("steps", 2000)),
               archs=("dcgan",), instead={"cdcgan": "small-fast"}),
        # benchmarks/quality.py, Fashion-MNIST, 10 CPU-minutes, seeds 0 and 1: FID 10.2 / 10.1 against the
        # default's 33.0 / 36.0 (about 3x the steps: 11,530 / 12,721 vs 4,426 / 4,007); lazy R1 at gamma 1 then 8.3 ± 1.1
        # against 10.6 ± 0.5 in one call; on a faster (AVX-512) machine 3.58 ± 0.14 against 6.23 ± 0.43, where hinge + spectral
        # norm gave 4.03 and hinge + SN + R1 3.68 ± 0.42. StyleGAN2's Adam betas with R1, 0 / 0.99, then 2.75 ± 0.15
        # (seeds 0, 1: 2.83, 2.68). The length is yours: --epochs, --steps or --time-limit.
        Recipe("small-fast", "the best measured in 10 CPU-minutes: G and D of width 32, learning rates 2e-3, EMA, R1, Adam betas 0 / 0.99",
               (("generator_width", 32), ("discriminator_width", 32), ("lr_g", 2e-3), ("lr_d", 2e-3), ("ema", True), ("r1", 1.0),
                ("beta1", 0.0), ("beta2", 0.99)),
               # cdcgan on the bundled digits, --epochs 10, seed 0: FID 6.77 without R1, 10.78 with (asked digit 98.9% / 99.0%);
               # the betas were measured with R1 on dcgan only
               archs=("dcgan", "cdcgan"), skip={"cdcgan": ("r1", "beta1", "beta2")}),
    )  # fmt: skip
}


def apply_recipe(name: str | None, options: dict, given: set[str]) -> tuple[dict, set[str], list[str]]:
    """`options` with the recipe's values where the user gave none; the names now set; a notice saying what it did."""
    if name is None:
        return options, given, []
    recipe = RECIPES[name]
    if options["resume"] is not None:
        raise UsageError(f"--recipe {name} is for new runs; a resumed run keeps its own settings. Drop --recipe.")
    if options["arch"] not in recipe.archs:
        other = (recipe.instead or {}).get(options["arch"])
        hint = f"use --recipe {other} with {options['arch']}" if other else "drop it or change --arch"
        raise UsageError(f"--recipe {name} is for --arch {' or '.join(recipe.archs)}, not {options['arch']}; {hint}.")
    length = {"epochs", "steps"} & given  # the user's own length replaces the recipe's
    skipped = (recipe.skip or {}).get(options["arch"], ())
    values = {k: v for k, v in recipe.values if k not in given and k not in skipped and not (k in ("epochs", "steps") and length)}
    shown = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v:g}" if isinstance(v, float) else f" {v}") for k, v in values.items())
    return options | values, given | set(values), [f"Recipe {name}: {shown}." if shown else f"Recipe {name}: every value given by flags."]
