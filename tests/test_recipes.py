"""Training recipes: losses, spectral norm, EMA, DiffAugment."""

import json

import pytest
import torch

from gancli.store import checkpoints
from gancli.training.augment import diff_augment
from gancli.config import BEFORE_FIELD, TrainConfig
from gancli.training.losses import discriminator_loss, generator_loss, gradient_penalty
from gancli.models import ARCHITECTURES, build_discriminator, get_architecture

FAST = ["--batch-size", "16", "--device", "cpu", "--sample-every", "2"]


def test_hinge_and_wasserstein_losses_on_known_logits():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(0.5 / 2 + 1.0 / 2)  # relu(1-r) + relu(1+f), averaged
    assert generator_loss("hinge", fake).item() == pytest.approx(1.0)
    wasserstein = discriminator_loss("wgan-gp", real, fake).item()
    assert wasserstein == pytest.approx(-1.0 - 1.25 + 1e-3 * (4 + 0.25) / 2)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    critic = lambda x: x.flatten(1)[:, 0]  # gradient (1, 0, ...) everywhere: norm 1  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert gradient_penalty(critic, real, fake, (), None).item() == pytest.approx(0.0)
    steep = lambda x: 3 * x.flatten(1)[:, 0]  # noqa: E731
    assert gradient_penalty(steep, real, fake, (), None).item() == pytest.approx(10.0 * 4)


def test_spectral_norm_and_wgan_gp_replace_batch_norm_in_the_discriminator():
    def norms(**changes):
        d = build_discriminator(TrainConfig(arch="dcgan", **changes))
        return {type(m).__name__ for m in d.modules()}, d

    plain, _ = norms()
    assert "BatchNorm2d" in plain
    sn, d = norms(spectral_norm=True)
    assert "BatchNorm2d" not in sn and any(hasattr(m, "parametrizations") for m in d.modules())
    gp, _ = norms(loss="wgan-gp")
    assert "BatchNorm2d" not in gp and "GroupNorm" in gp


def _discriminator_inputs(config):
    x = torch.randn(4, config.channels, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    return (x, torch.arange(4) % config.num_classes) if get_architecture(config.arch).conditional else (x,)


@pytest.mark.parametrize("arch", [a for a, spec in ARCHITECTURES.items() if spec.discriminator])
def test_spectral_norm_discriminators_are_not_positively_homogeneous(arch):
    """Dropping BatchNorm left DCGAN's bias-free convolutions without any shift: D(2x) = 2 D(x), and hinge + SN collapsed."""
    size = {"progan": 32, "stylegan": 32, "srcnn": 16, "upgan": 16}.get(arch, 28)
    config = TrainConfig(arch=arch, image_size=size, spectral_norm=True, generator_width=8, discriminator_width=8,
                         num_classes=10, class_names=tuple("0123456789"))
    torch.manual_seed(0)  # the weights and the values below: a fixed draw (the global stream's state depends on test order)
    d = build_discriminator(config)
    with torch.no_grad():
        for p in d.parameters():  # fresh biases are zero: give every one a value, as training does
            p.add_(0.1 * torch.randn_like(p))
        x, *label = _discriminator_inputs(config)
        d.eval()
        assert not torch.allclose(d(2 * x, *label), 2 * d(x, *label), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("field", BEFORE_FIELD)
def test_a_config_stored_before_a_field_existed_reads_the_value_its_model_was_trained_with(field):
    stored = json.loads(TrainConfig().to_json())
    del stored[field]
    assert getattr(TrainConfig.from_dict(stored), field) == BEFORE_FIELD[field] != getattr(TrainConfig(), field)


def test_spectral_norm_configs_stored_before_the_bias_build_the_discriminator_they_were_trained_with():
    stored = json.loads(TrainConfig(arch="dcgan", spectral_norm=True).to_json())
    del stored["spectral_norm_bias"]
    old = TrainConfig.from_dict(stored)
    assert old.spectral_norm_bias is False and TrainConfig.from_dict(stored | {"spectral_norm_bias": True}).spectral_norm_bias
    names = {type(m).__name__ for m in build_discriminator(old).modules()}
    assert "ChannelBias" not in names and "Identity" in names
    assert "ChannelBias" in {type(m).__name__ for m in build_discriminator(TrainConfig(arch="dcgan", spectral_norm=True)).modules()}


def test_diff_augment_keeps_shape_differs_per_image_and_passes_gradients():
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    again = diff_augment(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # reproducible from the generator
    cut = diff_augment(torch.ones(8, 1, 16, 16), ("cutout",), torch.Generator().manual_seed(1))
    zeros = (cut == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 64).all()  # at most a half-size square (8 x 8)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_spectral_norm_trains_with_sn_gans_betas_unless_given(cli, isolated):
    result = cli("train", "mnist", "--loss", "hinge", "--spectral-norm", "--steps", "1", "--out", "sn", *FAST)
    assert result.code == 0, result.err
    assert "--spectral-norm trains with Adam betas 0 / 0.9" in result.err
    config = checkpoints.load_checkpoint(isolated / "sn" / "checkpoints" / "last.safetensors").config
    assert (config.beta1, config.beta2, config.spectral_norm_bias) == (0.0, 0.9, True)
    mine = cli("train", "mnist", "--spectral-norm", "--beta1", "0.5", "--steps", "1", "--out", "mine", *FAST)
    assert mine.code == 0 and "Adam betas" not in mine.err
    config = checkpoints.load_checkpoint(isolated / "mine" / "checkpoints" / "last.safetensors").config
    assert (config.beta1, config.beta2) == (0.5, 0.9)  # the one given wins; the other keeps SN's


@pytest.mark.slow  # several runs per recipe
@pytest.mark.parametrize("recipe", [["--loss", "hinge", "--spectral-norm"], ["--loss", "wgan-gp", "--augment"]])
def test_recipes_train_and_resume(cli, isolated, recipe):
    assert cli("train", "mnist", *recipe, "--steps", "2", "--out", "r", *FAST).code == 0
    config = checkpoints.load_checkpoint(isolated / "r" / "checkpoints" / "last.safetensors").config
    assert config.loss == recipe[1]
    resumed = cli("train", "--resume", "r", "--steps", "4")
    assert resumed.code == 0, resumed.err
    assert cli("sample", "--checkpoint", "r", "--n", "4", "--seed", "0", "--out", "s.png").code == 0
    changed = cli("train", "--resume", "r", "--steps", "6", "--loss", "bce")
    assert changed.code == 2 and "--loss cannot change when resuming" in changed.err


@pytest.mark.slow  # end to end: several runs, sampling and eval
def test_ema_weights_are_sampled_by_default(cli, isolated):
    assert cli("train", "mnist", "--ema", "--steps", "3", "--out", "e", *FAST).code == 0
    checkpoint = checkpoints.load_checkpoint(isolated / "e" / "checkpoints" / "last.safetensors")
    assert checkpoint.tensors["generator_ema.n_averaged"].item() == 3
    ema = {k[len("generator_ema.module.") :]: v for k, v in checkpoint.tensors.items() if k.startswith("generator_ema.module.")}
    raw = checkpoint.group("generator")
    assert ema.keys() == raw.keys() and any(not torch.equal(ema[k], raw[k]) for k in raw)
    assert cli("sample", "--checkpoint", "e", "--n", "4", "--seed", "0", "--out", "ema.png").code == 0
    assert cli("sample", "--checkpoint", "e", "--n", "4", "--seed", "0", "--no-ema", "--out", "raw.png").code == 0
    assert (isolated / "ema.png").read_bytes() != (isolated / "raw.png").read_bytes()
    # resuming continues the average rather than restarting it
    assert cli("train", "--resume", "e", "--steps", "5").code == 0
    resumed = checkpoints.load_checkpoint(isolated / "e" / "checkpoints" / "last.safetensors")
    assert resumed.tensors["generator_ema.n_averaged"].item() == 5


def test_recipes_are_refused_for_upscalers(cli):
    result = cli("train", "mnist", "--arch", "srcnn", "--ema", "--steps", "1")
    assert result.code == 2 and "--ema applies to GANs" in result.err and "drop it." in result.err
    both = cli("train", "mnist", "--arch", "srcnn", "--ema", "--r1", "1", "--steps", "1")
    assert both.code == 2 and "--r1, --ema apply to GANs, not to --arch srcnn; drop them." in both.err


def test_named_recipe_sets_what_the_user_did_not(cli, isolated):
    """--recipe quick fills widths, learning rates, EMA, R1, Adam betas and length; the user's own flags win."""
    result = cli("train", "mnist", "--recipe", "quick", "--steps", "2", "--lr-g", "1e-4", *FAST, "--out", "run")
    assert result.code == 0, result.out
    assert "Recipe quick: --generator-width 16 --discriminator-width 16 --lr-d 0.003 --ema --r1 1 --beta1 0 --beta2 0.99." in result.out + result.err
    config = checkpoints.read_header(isolated / "run" / "checkpoints" / "last.safetensors").config
    assert (config.generator_width, config.discriminator_width, config.lr_g, config.lr_d, config.ema, config.r1) == (16, 16, 1e-4, 3e-3, 0.999, 1.0)
    assert (config.beta1, config.beta2) == (0.0, 0.99)
    assert config.steps == 2


def test_small_fast_leaves_r1_and_its_betas_out_for_cdcgan(cli, isolated):
    """R1 (and Adam betas 0 / 0.99 with it) were measured better for dcgan, R1 worse for cdcgan: the recipe adds them
    to one, and says so."""
    for arch, r1, betas in (("dcgan", 1.0, (0.0, 0.99)), ("cdcgan", 0.0, (0.5, 0.999))):
        result = cli("train", "mnist", "--arch", arch, "--recipe", "small-fast", "--steps", "1", *FAST, "--out", arch)
        assert result.code == 0, result.err
        assert ("--r1 1 --beta1 0 --beta2 0.99." in result.out + result.err) == bool(r1)
        config = checkpoints.read_header(isolated / arch / "checkpoints" / "last.safetensors").config
        assert (config.r1, config.beta1, config.beta2) == (r1, *betas)


@pytest.mark.parametrize(("args", "message"), [
    (["--arch", "srcnn"], "--recipe quick is for --arch dcgan, not srcnn"),
    (["--resume", "nowhere"], "--recipe quick is for new runs"),
])  # fmt: skip
def test_named_recipe_refuses_what_it_was_not_measured_on(cli, args, message):
    result = cli("train", "mnist", "--recipe", "quick", *args)
    assert result.code == 2 and message in result.out + result.err


@pytest.mark.parametrize("name", list(__import__("gancli.training.recipes", fromlist=["RECIPES"]).RECIPES))
def test_every_named_recipe_trains_what_it_says(cli, isolated, name):
    from gancli.training.recipes import RECIPES

    recipe = RECIPES[name]
    result = cli("train", "mnist", "--recipe", name, "--arch", recipe.archs[0], "--steps", "2", *FAST, "--out", "run")
    assert result.code == 0, result.err
    config = checkpoints.read_header(isolated / "run" / "checkpoints" / "last.safetensors").config
    for option, value in recipe.values:
        if option != "steps":
            assert getattr(config, option) == (0.999 if option == "ema" else value), option
