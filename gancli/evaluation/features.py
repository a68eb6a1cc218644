"""Feature extractors for `gancli eval`: gancli's own dataset classifier, or Inception-v3.

Each maps uint8 images (N, C, H, W) to feature vectors (and, for the classifier, predicted
classes). `name` keys the cache of reference statistics; `identity` is printed with every score,
because a score means nothing without the network that measured it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.errors import GancliError, UsageError

BATCH = 250
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"  # torchvision's IMAGENET1K_V1 weights, as the hub caches them
INCEPTION_SIZE = 299


def file_digest(path: Path, length: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def _as_float(images: torch.Tensor, channels: int, size: int, device) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [-1, 1] with the extractor's channels and size."""
    x = images.to(device).float().div(127.5).sub(1)
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x[:, :channels]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


class ClassifierExtractor:
    """The 128-d feature layer and the predicted class of a classifier gancli trained on the dataset."""

    def __init__(self, path: Path, device: torch.device):
        from gancli.evaluation.classify import load_classifier

        self.net, self.config, checkpoint = load_classifier(path, device)
        self.device = device
        self.num_classes = self.config.num_classes
        self.class_names = self.config.class_names
        digest = file_digest(path)
        self.path = path
        self.accuracy = checkpoint.score("accuracy")  # what the file says: replaced by measure_accuracy()
        self.digest = digest
        self.name = f"classifier-{digest}"
        self._describe("")

    def _describe(self, how: str) -> None:
        self.how = how
        measured = f", {100 * self.accuracy:.1f}% held-out accuracy{how}" if self.accuracy is not None else ", held-out accuracy unknown"
        self.identity = f"gancli classifier ({self.config.dataset}{measured}; {self.path}, sha256 {self.digest})"

    def measure_accuracy(self, data_dir: Path | None) -> None:
        """Measure the accuracy on the images its training held out, rather than trust the number in the file
        (anyone can write one); unknown when that data cannot be read."""
        from gancli.data.datasets import load_dataset
        from gancli.training.tasks.classifier import held_out_count

        try:
            data = load_dataset(self.config.dataset, self.config.image_size, data_dir, download=False)
        except GancliError:
            data = None
        held = held_out_count(len(data)) if data is not None and data.labels is not None else 0
        if held < 1 or data.channels != self.config.channels:
            self.accuracy = None
        else:
            _, predicted = self(data.images[len(data) - held :])
            self.accuracy = float((predicted == data.labels[len(data) - held :]).float().mean())
        self._describe(f" measured now on {held:,} images")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, classes = [], []
        for batch in images.split(BATCH):
            x = _as_float(batch, self.config.channels, self.config.image_size, self.device)
            f = self.net.features(x)
            feats.append(f.cpu())
            classes.append(self.net.head(f).argmax(1).cpu())
        return torch.cat(feats), torch.cat(classes)

    @torch.no_grad()
    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The predicted classes of features this extractor gave (its last layer only)."""
        return torch.cat([self.net.head(f.to(self.device)).argmax(1).cpu() for f in features.split(BATCH)])


def default_inception_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


class InceptionExtractor:
    """Inception-v3's 2048-d pool features with torchvision's ImageNet weights.

    These are torchvision's weights, not the TensorFlow graph behind published FIDs: scores are
    comparable with each other, not with papers' numbers.
    """

    num_classes = 0
    class_names: tuple[str, ...] = ()

    def __init__(self, weights: Path | None, device: torch.device):
        from torchvision.models import inception_v3

        path = Path(weights) if weights else default_inception_path()
        if not path.is_file():
            if weights:
                raise UsageError(f"--inception-weights '{path}' does not exist; give the path of {INCEPTION_FILE}.")
            path = self._download(path)
        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no code runs from the file
            net.load_state_dict(state)
        except Exception as exc:
            raise GancliError(f"'{path}' does not hold torchvision's Inception-v3 weights ({type(exc).__name__}); remove it and try again.") from exc
        net.fc = torch.nn.Identity()
        self.net = net.to(device).eval()
        self.device = device
        digest = file_digest(path)
        self.name = f"inception-{digest}"
        self.identity = f"Inception-v3 pool3, torchvision IMAGENET1K_V1 weights ({path}, sha256 {digest}); not the TF-Inception of published FIDs"

    @staticmethod
    def _download(path: Path) -> Path:
        if os.environ.get("GANCLI_OFFLINE"):
            reason = "downloads are off (GANCLI_OFFLINE)"
        else:
            try:
                from torchvision.models import Inception_V3_Weights

                Inception_V3_Weights.IMAGENET1K_V1.get_state_dict(progress=True)  # saves into the torch hub cache
                if path.is_file():
                    return path
                reason = "the download did not arrive"
            except Exception as exc:
                reason = f"they could not be downloaded ({type(exc).__name__})"
        raise GancliError(
            f"Inception-v3 weights are not in {path.parent} and {reason}. Online, run gancli eval once with "
            f"--extractor inception to fetch them (104 MB), or copy {INCEPTION_FILE} there, or pass "
            "--inception-weights PATH; offline, use --extractor classifier."
        )

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        mean = torch.tensor([0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)
        feats = []
        for batch in images.split(BATCH // 5):
            x = _as_float(batch, 3, INCEPTION_SIZE, self.device).add(1).div(2)  # [0, 1], as ToTensor gives
            feats.append(self.net((x - mean) / std).cpu())
        return torch.cat(feats), None


# Below this held-out accuracy a classifier's features cannot tell good samples from bad: a 20-step
# DCGAN scored FID 1.15 with a chance-level (10.9%) MNIST classifier and hundreds with a 91.6% one.
MIN_CLASSIFIER_ACCURACY = 0.8


def open_extractor(kind: str, dataset: str, classifier: Path | None, inception_weights: Path | None, device: torch.device, force: bool = False,
                   data_dir: Path | None = None):  # fmt: skip
    """`gancli eval`'s feature space: a classifier trained on `dataset` (given, or the most accurate under runs/), or Inception-v3.

    A classifier below MIN_CLASSIFIER_ACCURACY (or of unknown accuracy) is refused unless `force`.
    """
    if kind == "inception":
        return InceptionExtractor(inception_weights, device)
    from gancli.store import runs
    from gancli.evaluation.classify import check_matches

    path = runs.resolve_checkpoint(classifier, kind="classifier") if classifier else runs.best_classifier(runs.RUNS_ROOT, dataset)
    extractor = ClassifierExtractor(path, device)
    check_matches(extractor.config, dataset)
    extractor.measure_accuracy(data_dir)
    if not force:
        check_accuracy(extractor, dataset)
    return extractor


def accuracy_problem(extractor: ClassifierExtractor, dataset: str) -> str | None:
    """Why the classifier's scores would not mean much (None when its held-out accuracy is high enough)."""
    accuracy = extractor.accuracy
    if accuracy is not None and accuracy >= MIN_CLASSIFIER_ACCURACY:
        return None
    measured = ("unknown" if accuracy is None else f"{100 * accuracy:.1f}%") + getattr(extractor, "how", "")
    return (
        f"The classifier '{extractor.path}' has held-out accuracy {measured}, below the {100 * MIN_CLASSIFIER_ACCURACY:.0f}% "
        f"that makes its scores meaningful; train a better one with 'gancli train {dataset} --arch classifier --epochs 2'"
    )


def check_accuracy(extractor: ClassifierExtractor, dataset: str) -> None:
    problem = accuracy_problem(extractor, dataset)
    if problem:
        raise UsageError(f"{problem}, or pass --force to score with it anyway.")

