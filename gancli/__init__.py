"""gancli: train GANs, sample, walk latent space and upscale, from the command line or from Python.

    import gancli
    gancli.train("mnist", recipe="quick", outdir="runs/digits")
    g = gancli.load("runs/digits")
    gancli.save_grid(g.sample(seeds=[0, 1, 2]), "grid.png")

The names below are imported on first use, so `gancli --help` does not wait for PyTorch.
"""

__version__ = "0.1.0"
__all__ = ["train", "load", "evaluate", "usefulness", "save_grid", "to_pil", "png_bytes", "explorer", "upscale_files", "benchmark_upscaler", "decode_folder", "grid", "Model"]


def __getattr__(name: str):
    if name in __all__:
        from gancli import api

        return getattr(api, name)
    raise AttributeError(f"module 'gancli' has no attribute {name!r}")
