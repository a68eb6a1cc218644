"""Upscalers: quality measures, tiling, training srcnn/upgan, and the upscale command end to end."""

import pytest
import torch
from PIL import Image

from gancli.store import checkpoints
from gancli.config import TrainConfig
from gancli.models import build_generator
from gancli.evaluation.metrics import psnr, psnr_each, ssim
from gancli.use.upscaling import degrade, quantize, upscale_tensor
from tests.conftest import train_once

FAST = ["--batch-size", "16", "--device", "cpu"]


@pytest.fixture(scope="session")
def sr_run(tmp_path_factory):
    return train_once(tmp_path_factory, "sr", "--arch", "srcnn", "--scale", "2", "--steps", "30", "--sample-every", "15")


def test_psnr_and_ssim_basics():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    assert ssim(x, x) == pytest.approx(1.0)
    assert psnr_each(x, x).min() > 90
    assert 0 < ssim(x, noisy) < 0.99
    assert ssim(x, noisy) == pytest.approx(ssim(noisy, x))
    mse = (((x - noisy) / 2) ** 2).mean().item()
    assert psnr(x, noisy) == pytest.approx(10 * torch.log10(torch.tensor(1 / mse)).item(), rel=1e-6)
    assert ssim(x, noisy) > ssim(x, (x + 0.3 * torch.randn_like(x)).clamp(-1, 1))


def test_degrade_halves_and_quantises():
    x = torch.rand(1, 1, 28, 28) * 2 - 1
    low = degrade(x, 2)
    assert low.shape == (1, 1, 14, 14)
    assert torch.equal(quantize(low), low)


def test_tiled_upscaling_matches_whole_image():
    torch.manual_seed(0)
    model = build_generator(TrainConfig(arch="srcnn", channels=1, scale=2)).eval()
    torch.nn.init.normal_(model.net[-1].weight, 0, 0.1)  # not the zero-initialised identity
    low = torch.rand(1, 1, 40, 52) * 2 - 1
    with torch.no_grad():
        whole = model(low).clamp(-1, 1)
    tiled = upscale_tensor(model, low, 2, tile=16, overlap=8)
    assert tiled.shape == (1, 1, 80, 104)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_srcnn_run_reports_psnr_and_is_an_upscaler(sr_run):
    header = (sr_run / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,epoch,loss_MSE,PSNR,PSNR_bicubic,images_per_s,seconds"
    ck = checkpoints.load_checkpoint(sr_run / "checkpoints" / "last.safetensors")
    assert ck.config.arch == "srcnn" and ck.config.scale == 2
    assert "discriminator.net.0.weight" not in ck.tensors
    assert Image.open(sr_run / "samples" / "step_000030.png").size == (8 * 30 + 2, 3 * 30 + 2)  # bicubic, model, original


def test_upgan_trains_on_colour_folder(cli, image_folder):
    result = cli("train", image_folder, "--arch", "upgan", "--image-size", "32", "--steps", "2", "--generator-width", "8",
                 "--discriminator-width", "8", "--content-weight", "10", "--out", "runs/ug", *FAST)  # fmt: skip
    assert result.code == 0, result.err
    assert "PSNR" in result.out and "bicubic" in result.out
    ck = checkpoints.load_checkpoint("runs/ug/checkpoints/last.safetensors")
    assert ck.config.content_weight == 10 and ck.config.channels == 3 and "discriminator.net.0.weight" in ck.tensors


def test_upscale_files_with_a_model_and_classically(cli, sr_run, tmp_path):
    Image.new("RGB", (20, 12), (200, 30, 40)).save(tmp_path / "red.png")
    Image.new("L", (300, 24), 128).save(tmp_path / "wide.png")  # wider than a tile: processed in tiles
    result = cli("upscale", tmp_path / "red.png", tmp_path / "wide.png", "--model", sr_run, "--out", tmp_path / "big")
    assert result.code == 0, result.err
    red = Image.open(tmp_path / "big" / "red.png")
    assert red.size == (40, 24) and red.mode == "RGB"
    r, g, b = red.getpixel((20, 12))
    assert r > 150 and g < 90 and b < 90  # colours kept by a one-channel model run per channel
    assert Image.open(tmp_path / "big" / "wide.png").size == (600, 48)
    assert cli("upscale", tmp_path / "red.png", "--model", sr_run, "--scale", "4", "--out", tmp_path / "x4").code == 0
    assert Image.open(tmp_path / "x4" / "red.png").size == (80, 48)
    for method in ("bicubic", "lanczos"):
        assert cli("upscale", tmp_path / "red.png", "--method", method, "--scale", "3", "--out", tmp_path / method).code == 0
        assert Image.open(tmp_path / method / "red.png").size == (60, 36)


def test_benchmark_prints_psnr_and_ssim_against_bicubic(cli, sr_run, tmp_path):
    result = cli("upscale", "--benchmark", "mnist", "--limit", "40", "--model", sr_run)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("Benchmark: 40 images (MNIST test split")
    assert lines[1].split() == ["method", "PSNR", "(dB)", "SSIM"]
    bicubic_psnr = float(lines[2].split()[1])
    model_psnr = float(lines[3].split()[2])
    assert 10 < bicubic_psnr < 40 and 10 < model_psnr < 40
    assert lines[4].startswith("model - bicubic")
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (30 + i, 30), 40 * i).save(folder / f"{i}.png")
    assert "3 images" in cli("upscale", "--benchmark", folder, "--model", sr_run).out


def test_generate_small_then_upscale(cli, trained_run, sr_run, tmp_path):
    result = cli("sample", "--checkpoint", trained_run, "--n", "16", "--seed", "0", "--upscale", sr_run, "--out", tmp_path / "big.png")
    assert result.code == 0, result.err
    assert Image.open(tmp_path / "big.png").size == (4 * 56 + 5 * 2, 4 * 56 + 5 * 2)  # 4x4 grid of 56x56 images


@pytest.mark.parametrize(
    "args,message",
    [
        (["sample", "--checkpoint", "{sr}"], "is an upscaler (srcnn), not a generator"),
        (["interpolate", "1", "2", "--checkpoint", "{sr}"], "is an upscaler"),
        (["upscale", "x.png", "--model", "{gen}"], "is a generator (dcgan), not an upscaler"),
        (["upscale", "{png}", "--model", "{sr}", "--scale", "3"], "--scale 3 cannot be reached with the x2 model"),
        (["upscale"], "Give images to upscale"),
        (["upscale", "{png}", "--method", "bicubic", "--model", "{sr}"], "--model goes with --method model"),
        (["upscale", "--benchmark", "mnist", "--method", "bicubic"], "compares a trained upscaler"),
        (["train", "mnist", "--arch", "srcnn", "--scale", "5"], "Invalid value for '--scale'"),
    ],
)
def test_upscaler_bad_input(cli, sr_run, trained_run, tmp_path, args, message):
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    args = [a.format(sr=sr_run, gen=trained_run, png=tmp_path / "a.png") for a in args]
    result = cli(*args)
    assert result.code == 2, (result.code, result.err)
    assert message in result.err and len(result.err.strip().splitlines()) == 1


def test_no_upscaler_runs_yet(cli, isolated):
    result = cli("upscale", "x.png")
    assert result.code == 1 and "No trained upscaler runs under 'runs/'" in result.err
