"""Starting a GAN from another run's weights (`--init`) and keeping D's first blocks as they were (`--freeze-d`,
FreezeD: Mo et al., 2020).

A block of D is one of its weight layers (a convolution, or a linear layer of the fully-connected D) with the
normalisation after it, counted from the image in the order D applies them; label layers are never frozen. The label layers of a
conditional network (its class embeddings, and the layers that read one-hot label maps) start afresh when the
classes differ: class 3 of one dataset means nothing in another.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.errors import GancliError, UsageError



def _has_weights(module: nn.Module) -> bool:
    """A layer with parameters of its own (spectral norm keeps them under `parametrizations`)."""
    return any(True for _ in module.parameters(recurse=False)) or hasattr(module, "parametrizations")


def _starts_block(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() >= 2  # convolutions and linear layers; not norms' scales


def discriminator_blocks(discriminator: nn.Module, config) -> list[list[nn.Module]]:
    """D's blocks in the order an image meets them: each a weight layer and the layers with parameters after it."""
    from gancli.models import get_architecture

    label_layers = {id(m) for name in getattr(discriminator, "label_layers", ()) for m in getattr(discriminator, name).modules()}
    called: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, _i, _o: called.append(m)) for m in discriminator.modules()
             if m is not discriminator and _has_weights(m) and id(m) not in label_layers]  # fmt: skip
    was_training = discriminator.training
    discriminator.eval()  # no BatchNorm statistics or spectral-norm iterations move
    try:
        with torch.no_grad():
            x = torch.zeros(2, *config.image_shape)
            condition = (torch.zeros(2, dtype=torch.long),) if get_architecture(config.arch).conditional else ()
            discriminator(x, *condition)
    finally:
        for hook in hooks:
            hook.remove()
        discriminator.train(was_training)
    blocks: list[list[nn.Module]] = []
    for module in dict.fromkeys(called):  # the first call of each layer, in order
        if _starts_block(module) or not blocks:
            blocks.append([module])
        else:
            blocks[-1].append(module)
    return blocks


def check_freeze(config, count: int) -> None:
    """Refuse --freeze-d N unless D of `config` has more than N blocks (its last one always learns)."""
    from gancli.models import build_discriminator

    blocks = len(discriminator_blocks(build_discriminator(config), config))
    if count >= blocks:
        raise UsageError(f"--freeze-d {count} would freeze all of D: {config.arch}'s D at {config.image_size} px has {blocks} blocks; "
                         f"use at most {blocks - 1}.")  # fmt: skip


def freeze_blocks(discriminator: nn.Module, config, count: int) -> int:
    """Stop the first `count` blocks of D from learning; the number of parameters frozen."""
    frozen = 0
    for block in discriminator_blocks(discriminator, config)[:count]:
        for module in block:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
                frozen += parameter.numel()
    return frozen


def load_weights(module: nn.Module, checkpoint, group: str, relabelled: bool) -> None:
    """`module` takes the checkpoint's `group` weights, except its label layers when `relabelled` (they keep their
    fresh initialisation). A tensor that does not fit is named."""
    state = checkpoint.group(group)
    if not state:
        raise GancliError(f"--init: '{checkpoint.path}' has no {group} weights; give a run folder or one of its checkpoints/.")
    fresh = set(getattr(module, "label_layers", ())) if relabelled else set()
    own = module.state_dict()
    taken = {}
    for key, value in own.items():
        if key.split(".", 1)[0] in fresh:
            taken[key] = value
        elif key not in state or state[key].shape != value.shape:
            theirs = "missing" if key not in state else tuple(state[key].shape)
            raise GancliError(f"--init: the {group}'s {key} is {theirs} in '{checkpoint.path}' but {tuple(value.shape)} here "
                              "(the class count shapes it in this architecture); start from a run with as many classes.")  # fmt: skip
        else:
            taken[key] = state[key]
    module.load_state_dict(taken)
