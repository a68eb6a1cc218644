"""Small datasets: starting from another run (--init, --freeze-d), adaptive augmentation (--augment ada), and whether a
conditional run's images help a classifier (gancli eval --usefulness)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gancli.models import ARCHITECTURES, get_architecture
from gancli.store import checkpoints
from gancli.training.augment import ADA_INTERVAL, ADA_SPEED_IMAGES, AdaptiveAugment

FIXTURES = Path(__file__).parent / "fixtures" / "main-9660f2f"
FAST = ["--batch-size", "8", "--device", "cpu", "--sample-every", "2", "--seed", "5"]
TINY = ["--latent-dim", "8", "--generator-width", "8", "--discriminator-width", "8"]
GANS = [a for a in ARCHITECTURES if get_architecture(a).kind == "generator" and not get_architecture(a).growth]
SMALL = {"stylegan": ["--image-size", "32"], "gan": ["--image-size", "16"], "cgan": ["--image-size", "16"]}


def _task_started_from(init: Path, dataset: str, **options):
    """The task `gancli train DATASET --init INIT` builds, after --init and before its first step."""
    import gancli.training.start as start
    from gancli.data.datasets import load_dataset
    from gancli.training.plan import fit_to_data, plan_training
    from gancli.training.tasks import make_task

    given = {"dataset", "init", *options}
    values = start.train_options() | {"dataset": dataset, "init": init, "device": "cpu", "outdir": Path("new")} | options
    config, _, _, _ = plan_training(values, given)
    config, _ = fit_to_data(config, load_dataset(config.dataset, config.image_size), resumed=False)
    task = make_task(config, load_dataset(config.dataset, config.image_size), torch.device("cpu"))
    notices = task.start_from(checkpoints.load_checkpoint(Path(config.init)))
    return config, task, notices


@pytest.mark.parametrize("fixture", ["cdcgan", "dcgan-ema", "sagan", "stylegan"])
def test_init_starts_g_and_d_from_the_runs_weights(isolated, fixture):
    source = checkpoints.load_checkpoint(FIXTURES / f"{fixture}.safetensors")
    config, task, notices = _task_started_from(FIXTURES / f"{fixture}.safetensors", "mnist")
    assert config.arch == source.config.arch and config.generator_width == source.config.generator_width  # the shape follows the run
    for name in ("generator", "discriminator"):
        state = task.modules[name].state_dict()
        assert all(torch.equal(value, source.group(name)[key]) for key, value in state.items()), f"{fixture}: {name} differs"
    if task.ema is not None:  # the average starts from G
        assert all(torch.equal(v, task.modules["generator"].state_dict()[k]) for k, v in task.ema.module.state_dict().items())
    assert "Starting from" in notices[0] and config.init == str((FIXTURES / f"{fixture}.safetensors").resolve())


def test_init_from_other_classes_starts_the_label_layers_afresh(isolated):
    from tests.conftest import make_image_folder

    make_image_folder(isolated / "shapes", size=28, per_class=6, classes=("circles", "squares"), mode="L")
    source = checkpoints.load_checkpoint(FIXTURES / "cdcgan.safetensors")
    config, task, notices = _task_started_from(FIXTURES / "cdcgan.safetensors", "shapes")
    assert config.class_names == ("circles", "squares") and "label layers start afresh" in notices[-1]
    g, d = task.modules["generator"].state_dict(), task.modules["discriminator"].state_dict()
    assert g["embedding.weight"].shape == (2, 50) and d["y_stem.weight"].shape[1] == 2  # two classes now, ten before
    for name, state, fresh in (("generator", g, ("embedding",)), ("discriminator", d, ("y_stem", "projection"))):
        kept = [k for k in state if k.split(".")[0] not in fresh]
        assert kept and all(torch.equal(state[k], source.group(name)[k]) for k in kept)  # the rest is the run's


def test_freeze_d_keeps_the_first_blocks(cli, isolated):
    assert cli("train", "mnist", "--init", FIXTURES / "dcgan-ema.safetensors", "--freeze-d", "2", "--steps", "2", "--out", "f", *FAST).code == 0
    before = checkpoints.load_checkpoint(FIXTURES / "dcgan-ema.safetensors").group("discriminator")
    after = checkpoints.load_checkpoint(isolated / "f/checkpoints/last.safetensors").group("discriminator")
    from gancli.models import build_discriminator
    from gancli.training.finetune import discriminator_blocks

    config = checkpoints.load_checkpoint(isolated / "f/checkpoints/last.safetensors").config
    d = build_discriminator(config)
    names = {id(p): n for n, p in d.named_parameters()}
    blocks = discriminator_blocks(d, config)
    frozen = {names[id(p)] for block in blocks[:2] for m in block for p in m.parameters()}
    learning = {names[id(p)] for block in blocks[2:] for m in block for p in m.parameters()}
    assert frozen and learning
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in learning)
    assert config.freeze_d == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--freeze-d", "1"], "--freeze-d keeps the first blocks of D from the run given with --init"),
        (["--init", FIXTURES / "dcgan-ema.safetensors", "--generator-width", "16"], "fine-tuning keeps the network's shape"),
        (["--init", FIXTURES / "dcgan-ema.safetensors", "--arch", "sagan"], "was trained with --arch dcgan, not sagan"),
        (["--init", FIXTURES / "classifier.safetensors"], "is a classifier run, not a GAN"),
        (["--init", FIXTURES / "progan.safetensors"], "its growth from 4x4 cannot restart"),
        (["--init", FIXTURES / "dcgan-ema.safetensors", "--freeze-d", "50"], "would freeze all of D"),
        (["--init", FIXTURES / "srcnn.safetensors"], "is a srcnn run, not a GAN"),
    ],
)
def test_bad_init_combinations_are_one_line_usage_errors(cli, isolated, args, message):
    result = cli("train", "mnist", *args, "--steps", "1", *FAST)
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1


def test_init_refuses_images_of_other_channels(cli, isolated, image_folder):
    result = cli("train", image_folder, "--init", FIXTURES / "dcgan-ema.safetensors", "--steps", "1", *FAST)
    assert result.code == 2 and "1-channel images" in result.err and "3 channels" in result.err


def test_init_refuses_a_resumed_run_that_started_elsewhere(cli, isolated):
    assert cli("train", "mnist", "--init", FIXTURES / "dcgan-ema.safetensors", "--steps", "2", "--out", "r", *FAST).code == 0
    result = cli("train", "--resume", "r", "--init", FIXTURES / "sagan.safetensors", "--steps", "3")
    assert result.code == 2 and "--init cannot change when resuming" in result.err


# --- adaptive augmentation ---------------------------------------------------------------------------------


def test_ada_p_rises_while_d_overfits_and_falls_otherwise():
    ada = AdaptiveAugment(("color", "translation", "cutout"))
    confident = torch.full((32,), 3.0)  # D sure every real image is real: r_t = 1 > 0.6
    for _ in range(3 * ADA_INTERVAL):
        ada.observe(confident)
    step = 32 * ADA_INTERVAL / ADA_SPEED_IMAGES
    assert ada.p.item() == pytest.approx(3 * step) and ada.r_t.item() == 1.0
    unsure = torch.tensor([1.0, -1.0] * 16)  # r_t = 0 < 0.6
    for _ in range(ADA_INTERVAL):
        ada.observe(unsure)
    assert ada.p.item() == pytest.approx(2 * step) and ada.r_t.item() == 0.0
    for _ in range(10 * ADA_INTERVAL):
        ada.observe(unsure)
    assert ada.p.item() == 0.0  # never below 0


def test_ada_is_differentiable_and_the_same_function_for_real_and_fake():
    ada = AdaptiveAugment(("color", "translation", "cutout"))
    x = torch.rand(16, 1, 8, 8, requires_grad=True)
    assert torch.equal(ada(x, torch.Generator().manual_seed(0)), x)  # p = 0: nothing changes
    ada.p.fill_(1.0)
    out = ada(x, torch.Generator().manual_seed(0))
    assert not torch.equal(out, x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    same = ada(x.detach().clone(), torch.Generator().manual_seed(0))  # a real or a fake batch: one function, one stream
    assert torch.equal(same, out.detach())
    ada.p.fill_(0.5)
    changed = (ada(x.detach(), torch.Generator().manual_seed(1)) != x.detach()).flatten(1).any(1).float().mean()
    assert 0.5 < changed < 1.0  # each of three transforms with p = 0.5: 1 - 0.5^3 of the images, give or take


def test_train_step_augments_everything_d_sees_and_shows_it_the_real_logits():
    from gancli.config import TrainConfig
    from gancli.models import build_discriminator, build_generator
    from gancli.training.tasks.gan import train_step

    config = TrainConfig(latent_dim=8, generator_width=8, discriminator_width=8)
    g, d = build_generator(config), build_discriminator(config)
    seen, observed = [], []

    class Spy:
        def __call__(self, images):
            seen.append(images.shape[0])
            return images

        def observe(self, logits):
            observed.append(logits.detach().clone())

    real = torch.rand(4, 1, 28, 28) * 2 - 1
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    train_step(real, g, d, opt_g, opt_d, torch.randn(4, 8), augment=Spy())
    assert seen == [4, 4, 4]  # real and fake in D's step, fake in G's: all through the same augmentation
    assert len(observed) == 1 and observed[0].shape == (4,)


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a == "dcgan" else [pytest.mark.slow]) for a in GANS])
def test_ada_resume_is_bit_exact_and_shows_p(cli, isolated, arch):
    """8 straight steps equal 3, stop, resume to 8: p moves at steps 4 and 8, from sums begun before the resume."""
    options = ["mnist", "--arch", arch, *TINY, *SMALL.get(arch, []), *FAST, "--augment", "ada"]
    assert cli("train", *options, "--steps", "8", "--out", "straight").code == 0
    assert cli("train", *options, "--steps", "3", "--out", "split").code == 0
    assert cli("train", "--resume", "split", "--steps", "8").code == 0
    a = checkpoints.load_checkpoint(isolated / "straight/checkpoints/last.safetensors")
    b = checkpoints.load_checkpoint(isolated / "split/checkpoints/last.safetensors")
    assert a.tensors["augment.calls"].item() == 8 and a.tensors["augment.r_t"].item() != 0  # measured at steps 4 and 8
    assert not a.tensors["augment.sums"].any()  # and the sums restarted after step 8
    for key, value in a.tensors.items():
        assert key.startswith("rng.") or torch.equal(value, b.tensors[key]), f"{arch}: {key} differs after resume"
    header = (isolated / "straight/metrics.csv").read_text().splitlines()[0].split(",")
    assert "ada_p" in header and "ada_r_t" in header
    assert (isolated / "straight/metrics.png").is_file()


def test_augment_spellings(cli, isolated):
    """--augment alone is --augment diff (the switch of before); old configs' policies read as diff and none."""
    from gancli.config import AUGMENT_POLICY, TrainConfig

    for args, stored in ((["--augment"], "diff"), (["--augment", "ada"], "ada"), ([], "none"), (["--augment", "none"], "none")):
        assert cli("train", "mnist", *args, "--steps", "1", "--out", f"a{len(args)}{stored}", *FAST).code == 0
        assert checkpoints.load_checkpoint(isolated / f"a{len(args)}{stored}/checkpoints/last.safetensors").config.augment == stored
    assert cli("train", "--augment", "mnist", "--steps", "1", "--out", "before", *FAST).code == 0  # the dataset after the switch
    assert TrainConfig.from_dict({"augment": AUGMENT_POLICY}).augment == "diff" and TrainConfig.from_dict({"augment": ""}).augment == "none"
    bad = cli("train", "mnist", "--augment", "strong", "--steps", "1")
    assert bad.code == 2 and "'strong' is not one of 'none', 'diff', 'ada'" in bad.err


# --- usefulness ---------------------------------------------------------------------------------------------


def _balanced(images, labels, per_class, skip=0):
    picked = torch.cat([(labels == k).nonzero().flatten()[skip : skip + per_class] for k in range(10)])
    return images[picked], labels[picked]


@pytest.fixture(scope="module")
def digits():
    """The bundled digits at 12 px (a seventh of the classifier's work at 28), in three disjoint balanced parts: 100 per class
    to train on, 300 per class to pass off as synthetic, 100 per class to test on."""
    from torchvision.transforms import functional as TF

    from gancli.data.datasets import load_dataset

    data = load_dataset("mnist", 28)
    images = TF.resize(data.images, 12, antialias=True)
    return _balanced(images, data.labels, 100), _balanced(images, data.labels, 300, skip=100), _balanced(images, data.labels, 100, skip=400)


@pytest.mark.slow  # six classifier fits at 12 px
def test_usefulness_controls(digits):
    """Real images passed off as synthetic score within 2 points of the real ones; a generator whose labels mean nothing
    gives chance."""
    from gancli.config import TrainConfig
    from gancli.evaluation.usefulness import measure

    real, (pool_x, pool_y), test = digits
    config = TrainConfig(arch="cdcgan", image_size=12, num_classes=10, class_names=tuple("0123456789"))

    def real_as_synthetic(k, n, seed):
        mine = pool_x[pool_y == k]
        return mine[torch.randperm(len(mine), generator=torch.Generator().manual_seed(seed))[:n]]

    def shuffled(k, n, seed):  # images of any class, whatever was asked
        return pool_x[torch.randperm(len(pool_x), generator=torch.Generator().manual_seed(seed))[:n]]

    honest = measure(real_as_synthetic, config, real, test, per_class=100, steps=200)
    assert honest.mean("real") > 0.85
    assert abs(honest.mean("synthetic") - honest.mean("real")) <= 0.02, honest.accuracy
    assert honest.mean("real+synthetic") >= honest.mean("real") - 0.01  # twice the real data: not worse
    chance = measure(shuffled, config, real, test, per_class=100, steps=200)
    # chance is 10% on average; with labels that mean nothing, which class wins each digit is luck (all or nothing per class)
    assert chance.mean("synthetic") <= 0.2, chance.accuracy
    assert chance.mean("real+synthetic") < honest.mean("real+synthetic")  # the noise costs (c)
    assert len(chance.class_accuracy[0]) == 10


@pytest.mark.slow  # six classifier fits, each tested on 1,000 held-out digits: 9 s
def test_usefulness_command_on_a_conditional_run(cli, isolated):
    import shutil

    run = isolated / "run" / "checkpoints"
    run.mkdir(parents=True)
    shutil.copy(FIXTURES / "cdcgan.safetensors", run / "last.safetensors")
    result = cli("eval", "run", "--usefulness", "--steps", "5", "--per-class", "3", "--seeds", "2", "--device", "cpu")
    assert result.code == 0, result.err
    assert "(a) real" in result.out and "(b) synthetic only (CAS)" in result.out and "(c) - (a):" in result.out
    assert "held out" in result.out  # the bundled digits have no separate test split: a tenth is held out
    import json

    record = json.loads((isolated / "run" / "eval.json").read_text())[-1]
    assert len(record["usefulness"]["real+synthetic"]) == 2 and record["per_class"] == 3


def test_usefulness_refuses_what_it_cannot_measure(cli, isolated):
    refused = cli("eval", FIXTURES / "dcgan-ema.safetensors", "--usefulness")
    assert refused.code == 2 and "needs a conditional run" in refused.err
    mixed = cli("eval", FIXTURES / "cdcgan.safetensors", "--usefulness", "--n", "100")
    assert mixed.code == 2 and "do not apply to --usefulness" in mixed.err
    alone = cli("eval", FIXTURES / "cdcgan.safetensors", "--per-class", "10")
    assert alone.code == 2 and "are for --usefulness" in alone.err
