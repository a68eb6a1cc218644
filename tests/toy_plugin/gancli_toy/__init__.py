"""A gancli plugin in one registry entry: a denoising autoencoder, a task that is not a GAN.

Installed, it registers through pyproject's entry points:

    [project.entry-points."gancli.architectures"]
    toy = "gancli_toy:ENTRIES"

This module imports no torch: gancli reads it when it lists architectures.
"""

from gancli.models import Architecture, Kind

ENTRIES = [
    Kind("denoiser", ("autoencoder",), "apply it with gancli.load('{path}').apply(images)",
         "python -c \"import gancli; print(gancli.load('{run}'))\"", "No denoiser runs under '{root}/'; train one with --arch toydae."),
    Architecture("toydae", "gancli_toy.task", "toy denoising autoencoder (a plugin)", None, task="gancli_toy.task", kind="denoiser",
                 options=("generator_width",), generator="Autoencoder", discriminator=None, max_image_size=64),
]  # fmt: skip
