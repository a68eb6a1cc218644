"""gancli: train GANs, sample, walk latent space and upscale from the command line."""

__version__ = "0.1.0"
