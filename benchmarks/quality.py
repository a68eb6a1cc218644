"""Sample quality per training recipe at a fixed CPU budget: classifier-FID next to the real-data floor.

For each recipe, DCGAN (or the recipe's architecture) trains on the dataset for the same CPU time, then `gancli eval`'s
metrics are computed with a classifier gancli trained on the same data (offline, no Inception).
The real-data floor is the score of held-out real images against the same reference.

    python benchmarks/quality.py --dataset fashion-mnist --minutes 10 --seeds 0,1 [--recipes default,ema,...] [--n 10000]

A recipe may change fields of a named one: `quick+r1=1+discriminator_norm=none`, `small-fast+residual` (a bare
field name is True), any TrainConfig field by its name.

`--recipes reference` trains the PyTorch DCGAN example's loop on the same model for the same time, as a row.

Each recipe trains once per seed; the table shows the mean over seeds and, after it, the spread (max - min).

The budget is CPU time (process time divided by torch's thread count), so other work on the
machine slows the wall clock but not the comparison. Results: a table, and OUT/quality.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gancli.training import loop as training
from gancli.config import TrainConfig
from gancli.evaluation.evaluate import evaluate
from gancli.evaluation.features import ClassifierExtractor
from gancli.store.runs import last_checkpoint_path
from gancli.use.loading import open_model
from gancli.cli.progress import TrainingDisplay

RECIPES: dict[str, dict] = {
    "default": {},
    "ema": {"ema": 0.999},
    # `quick` and `small-fast` as they were before R1 joined them (issue 26's baseline rows; +r1=1 is what they are now).
    # The quick start's recipe, its steps replaced by the budget:
    "quick": {"generator_width": 16, "discriminator_width": 16, "lr_g": 3e-3, "lr_d": 3e-3, "ema": 0.999},
    # the quick start's idea at a size for 10 minutes: small nets, high learning rates, EMA
    "small-fast": {"generator_width": 32, "discriminator_width": 32, "lr_g": 2e-3, "lr_d": 2e-3, "ema": 0.999},
    "ttur": {"lr_g": 1e-4, "lr_d": 4e-4},
    # SN-GAN's (Miyato et al.) and SAGAN's Adam betas 0 / 0.9; with TTUR's 1e-4 / 4e-4 the bundled digits kept fewer classes
    "hinge-sn": {"loss": "hinge", "spectral_norm": True, "beta1": 0.0, "beta2": 0.9},
    "wgan-gp": {"loss": "wgan-gp", "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9},
    "augment": {"augment": "diff"},
    "bf16": {"precision": "bf16"},  # the default recipe in bfloat16: does the speed cost quality?
    # the later generations, with their own defaults (gancli train applies them; TrainConfig needs them spelled out)
    "sagan": {"arch": "sagan", "loss": "hinge", "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9},
    "progan": {"arch": "progan", "image_size": 32, "loss": "wgan-gp", "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99,
               "phase_steps": 80},  # growth done after 560 steps, well inside a 4-minute budget
    "stylegan": {"arch": "stylegan", "image_size": 32, "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99},
}
EXTRA = ("quick", "bf16", "sagan", "progan", "stylegan", "reference")  # run only when asked for
REFERENCE = "reference"  # not a gancli recipe: the PyTorch DCGAN example's loop on the same model (train_reference)


class ExampleImages(torch.utils.data.Dataset):
    """What torchvision's MNIST-style datasets do per sample with the example's transforms: PIL image, ToTensor, Normalize."""

    def __init__(self, images: torch.Tensor):
        from torchvision import transforms

        self.images = images
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i, 0].numpy(), mode="L")), 0


def train_reference(dataset: str, seed: int, minutes: float):
    """The pytorch/examples dcgan loop on gancli's DCGAN 28x28: DataLoader (2 workers, shuffle) over per-sample
    transforms, plain Adam (lr 2e-4, betas 0.5/0.999), BCE on logits, batch 32. Its budget is wall time on a quiet
    machine: the DataLoader workers' CPU time is not this process's. Returns (generator, config, steps)."""
    from gancli.training.plan import fit_to_data
    from gancli.data.datasets import load_dataset
    from gancli.models import build_discriminator, build_generator

    data = load_dataset(dataset, 28)
    config, _ = fit_to_data(TrainConfig(dataset=dataset, arch="dcgan", image_size=28, batch_size=32, seed=seed), data, resumed=False)
    torch.manual_seed(seed)
    net_g, net_d = build_generator(config), build_discriminator(config)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(ExampleImages(data.images), batch_size=32, shuffle=True, num_workers=2, drop_last=True)
    criterion, steps, started = torch.nn.BCEWithLogitsLoss(), 0, time.perf_counter()
    while time.perf_counter() - started < minutes * 60:
        for real, _ in loader:
            b = real.size(0)
            net_d.zero_grad()
            criterion(net_d(real), torch.ones(b)).backward()
            fake = net_g(torch.randn(b, config.latent_dim))
            criterion(net_d(fake.detach()), torch.zeros(b)).backward()
            opt_d.step()
            net_g.zero_grad()
            criterion(net_d(fake), torch.ones(b)).backward()
            opt_g.step()
            steps += 1
            if steps % 500 == 0:
                print(f"reference seed {seed}: step {steps}, {time.perf_counter() - started:.0f} s", flush=True)
            if time.perf_counter() - started >= minutes * 60:
                break
    return net_g.eval(), config, steps


def recipe_values(spec: str) -> dict:
    """A named recipe's TrainConfig values, with the changes `+field=value` (or `+field` for True) after its name."""
    from gancli.config import field_type

    name, *changes = spec.split("+")
    values = dict(RECIPES[name])
    for change in changes:
        key, _, text = change.partition("=")
        kind = field_type(key)
        values[key] = text.lower() in ("", "1", "true") if kind == "bool" else int(text) if kind == "int" else float(text) if kind == "float" else text
    return values


def cpu_clock() -> float:
    """CPU seconds of this process per thread: wall seconds on an otherwise idle machine."""
    return time.process_time() / torch.get_num_threads()


def train_classifier(dataset: str, out: Path, epochs: int) -> Path:
    path = last_checkpoint_path(out)
    if not path.is_file():
        config = TrainConfig(arch="classifier", dataset=dataset, image_size=28, channels=1, epochs=epochs, batch_size=64)
        with TrainingDisplay() as display:
            training.train(config, out, "cpu", reporter=display)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--minutes", type=float, default=4.0, help="CPU budget per recipe")
    parser.add_argument("--recipes", default=",".join(r for r in RECIPES if r not in EXTRA), help=f"some of {', '.join(RECIPES)}")
    parser.add_argument("--n", type=int, default=10_000, help="generated images per evaluation")
    parser.add_argument("--classifier-epochs", type=int, default=1)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: every recipe trains once per seed")
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="the budget's clock for gancli's runs: CPU time (robust to other work) or wall time (as the reference's, on a quiet machine)")
    args = parser.parse_args()
    out = args.out / args.dataset
    device = torch.device("cpu")
    classifier = train_classifier(args.dataset, out / "classifier", args.classifier_epochs)
    extractor = ClassifierExtractor(classifier, device)
    print(f"Extractor: {extractor.identity}", flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict]] = {}
    for name in args.recipes.split(","):
        for seed in seeds:
            run_dir = out / ((f"{name}-wall" if args.clock == "wall" else name) + (f"-seed{seed}" if len(seeds) > 1 or seed else ""))
            if name == REFERENCE:
                net, config, steps = train_reference(args.dataset, seed, args.minutes)
                result = evaluate(net, config, extractor, args.n, seed=0, device=device)
                runs.setdefault(name, []).append({"seed": seed, "steps": steps, **result.scores})
                print(f"{name} seed {seed}: {json.dumps(runs[name][-1])}", flush=True)
                continue
            if not last_checkpoint_path(run_dir).is_file():
                recipe = {"arch": "dcgan", "image_size": 28} | recipe_values(name)
                config = TrainConfig(dataset=args.dataset, steps=10**7, sample_every=500, seed=seed, **recipe)
                with TrainingDisplay() as display:  # live on a terminal, a line now and then in a log
                    clock = cpu_clock if args.clock == "cpu" else time.perf_counter
                    training.train(config, run_dir, "cpu", reporter=display, time_limit=args.minutes * 60, clock=clock)
            model = open_model(run_dir, "generator", "cpu")
            result = evaluate(model.net, model.config, extractor, args.n, seed=0, device=device)
            runs.setdefault(name, []).append({"seed": seed, "steps": model.step, **result.scores})
            print(f"{name} seed {seed}: {json.dumps(runs[name][-1])}", flush=True)
    runs["real floor"] = [{"steps": 0, **result.floor}]
    columns = ("steps", "FID", "KID", "precision", "recall", "classes_covered", "class_KL", "class_variety")
    print(f"\n{args.dataset}, DCGAN 28x28 unless named, {args.minutes:g} CPU-minutes per recipe, seeds {args.seeds}, {args.n:,} samples; {result.reference}")
    print("recipe | " + " | ".join(columns) + "  (mean, then max - min over seeds)")
    for name, rows in runs.items():
        cells = []
        for column in columns:
            values = [r[column] for r in rows if r.get(column) is not None]
            if not values:
                cells.append("-")
                continue
            mean = sum(values) / len(values)
            cells.append(f"{mean:.4g}" + (f" ± {max(values) - min(values):.2g}" if len(values) > 1 else ""))
        print(f"{name} | " + " | ".join(cells))
    (out / "quality.json").write_text(json.dumps({"extractor": extractor.identity, "minutes": args.minutes, "seeds": seeds, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
