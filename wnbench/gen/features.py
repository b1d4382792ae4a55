"""Image-GAN metrics in the feature space of a small classifier the suite trains itself.

Inception-v3 weights cannot be downloaded here and are a poor fit for 8x8 digits anyway, so each image
dataset gets a small CNN classifier, trained once with a fixed seed and cached on disk. Its penultimate
layer is the feature space for torchmetrics' FrechetInceptionDistance / KernelInceptionDistance (passed
as ``feature=``), its logits give a classifier-based Inception Score. Xiang & Li (2017)'s reconstruction
error measures how well the frozen generator can reproduce held-out images (a mode-dropping signal).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from .digit_metrics import digit_scores

__all__ = [
    "DigitReader",
    "FeatureClassifier",
    "ClassifierFeatures",
    "ClassifierLogits",
    "default_cache_dir",
    "load_or_train_classifier",
    "feature_frechet_distance",
    "classifier_inception_score",
    "reconstruction_error",
    "ImageGANEvaluator",
]

#: Epochs for the feature classifier per dataset (enough for >= 95% test accuracy on digits/MNIST).
CLASSIFIER_EPOCHS = {"digits": 40, "mnist-5k": 15, "mnist": 3, "fashion-mnist": 5, "cifar10": 15}
_CACHE_VERSION = 1
#: The digit reader (``purpose="reader"``, :class:`DigitReader`): a CNN with max-pooling and dropout trained on images
#: randomly rotated (up to ``rotate`` degrees), scaled (1 +- ``scale``) and shifted (up to ``shift`` pixels), Adam 1e-3
#: decayed on a cosine to 0. A reader must be sure of nearly every real digit, or ``recognizable_pct`` measures the
#: reader rather than the generator: the feature classifier is sure of far fewer real test digits than this one
#: (docs/measurements/gen-v3-digits.md). Trained once per cache.
READER_TRAINING = {"epochs": 40, "shift": 2, "rotate": 10.0, "scale": 0.1}
#: Classifiers this process has loaded or trained, by cache file: StackedMNIST's evaluator and every image cell of a
#: worker reuse one (frozen, eval mode) instead of reading the file per run.
_LOADED: dict[Path, tuple[nn.Module, float]] = {}


class FeatureClassifier(nn.Module):
    """A small plain CNN (no normalization, so it favours no norm kind): conv stack -> features -> classes."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, num_features: int = 64) -> None:
        super().__init__()
        self.num_features = num_features
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * width, num_features), nn.ReLU(),
        )  # fmt: skip
        self.classifier = nn.Linear(num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


class DigitReader(nn.Module):
    """The digit reader's network: two blocks of two 3x3 convs, each block max-pooled with dropout 0.25, then a
    128-unit layer with dropout 0.5 (the Keras MNIST CNN's layout). No normalization, so it favours no norm kind. It
    only reads (recognizable_pct, StackedMNIST's modes); FID keeps :class:`FeatureClassifier`'s feature space."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, hidden: int = 128) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Dropout(0.25),
            ]  # fmt: skip

        self.net = nn.Sequential(
            *block(channels, width), *block(width, 2 * width), nn.AdaptiveAvgPool2d(7), nn.Flatten(),
            nn.Linear(2 * width * 49, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ClassifierFeatures(nn.Module):
    """``feature=`` module for torchmetrics FID/KID: float images in [0, 1] -> penultimate features."""

    def __init__(self, classifier: FeatureClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x.float())

    def train(self, mode: bool = True) -> ClassifierFeatures:  # the classifier stays frozen in eval mode
        return super().train(False)


class ClassifierLogits(ClassifierFeatures):
    """Images -> class logits, for the classifier-based Inception Score."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.float())


def default_cache_dir() -> Path:
    """``$WNBENCH_CACHE`` or ``~/.cache/wnbench``."""
    return Path(os.environ.get("WNBENCH_CACHE", Path.home() / ".cache" / "wnbench"))


def _augmented(
    x: torch.Tensor, generator: torch.Generator, shift: float = 0, rotate: float = 0.0, scale: float = 0.0
) -> torch.Tensor:
    """Each image rotated by up to ``rotate`` degrees, scaled by a factor in 1 +- ``scale`` and shifted by up to
    ``shift`` pixels in each direction, all drawn uniformly per image (zero fill, bilinear)."""
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotate)
    factor = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    offset = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift * 2 / torch.tensor([w, h])
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / factor, -torch.sin(angle) / factor
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / factor, torch.cos(angle) / factor
    theta[:, :, 2] = offset
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def _train_classifier(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    epochs: int,
    seed: int,
    batch_size: int = 128,
    augment: dict[str, float] | None = None,
) -> nn.Module:
    """``model`` trained (seeded, Adam 1e-3); with ``augment`` (:func:`_augmented`'s options) on augmented images and
    with the learning rate decayed on a cosine to 0."""
    x, y = train
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs) if augment else None
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            batch = _augmented(x[idx], generator, **augment) if augment else x[idx]
            loss = F.cross_entropy(model(batch), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if schedule is not None:
            schedule.step()
    return model.eval()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    predictions = torch.cat([model(chunk).argmax(1) for chunk in x.split(1000)])
    return float((predictions == y).float().mean())


def load_or_train_classifier(
    dataset: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    epochs: int | None = None,
    purpose: str = "feature",
) -> tuple[nn.Module, float]:
    """The dataset's feature classifier and its test accuracy: from ``cache_dir`` or trained (seeded) and cached.

    ``purpose="reader"`` gives the digit reader instead (:class:`DigitReader`, :data:`READER_TRAINING`), which
    labels generated digits (wnbench.gen.digit_metrics) and leaves the FID feature space as it was.

    Parallel runs share the cache: the first one to need the classifier trains it while holding an
    exclusive lock on ``<entry>.lock`` (released by the OS if that process dies), the others wait and
    then load it. The entry is written atomically (temp file + rename), so a reader never sees half a file.
    """
    if purpose not in ("feature", "reader"):
        raise ValueError(f"purpose must be 'feature' or 'reader', got {purpose!r}")
    reader = purpose == "reader"
    augment = {k: v for k, v in READER_TRAINING.items() if k != "epochs"} if reader else None
    default_epochs = READER_TRAINING["epochs"] if reader else CLASSIFIER_EPOCHS.get(dataset, 10)
    epochs = epochs if epochs is not None else default_epochs
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    shape = tuple(train[0].shape[1:])
    size = "x".join(map(str, shape))
    stem = (
        "feature-classifier"
        if not reader
        else "digit-reader-" + "-".join(f"{k}{v:g}" for k, v in augment.items())
    )
    path = cache / f"{stem}-{dataset}-{size}-seed{seed}-ep{epochs}-v{_CACHE_VERSION}.pt"
    network = DigitReader if reader else FeatureClassifier
    if path in _LOADED:
        return _LOADED[path]
    stored = _load_classifier(path, network, shape, num_classes)
    if stored is not None:
        _LOADED[path] = stored
        return stored
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(path.with_suffix(".lock")):
        stored = _load_classifier(
            path, network, shape, num_classes
        )  # another run may have trained it meanwhile
        if stored is not None:
            return stored
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _train_classifier(network(shape[0], num_classes), train, epochs, seed, augment=augment)
        accuracy = _accuracy(model, *test)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"state_dict": model.state_dict(), "test_accuracy": accuracy, "shape": shape}, tmp)
        tmp.replace(path)
    _LOADED[path] = (model, accuracy)
    return model, accuracy


def _load_classifier(
    path: Path, network: type[nn.Module], shape: tuple[int, ...], num_classes: int
) -> tuple[nn.Module, float] | None:
    """A cached classifier, or None when there is none (a damaged entry counts as none and is retrained)."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        model = network(shape[0], num_classes)
        model.load_state_dict(stored["state_dict"])
        return model.eval(), float(stored["test_accuracy"])
    except Exception:  # noqa: BLE001 - a damaged cache entry is retrained, not fatal
        return None


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # Windows: fall back to racing; the atomic rename keeps the cache sound
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _batches(x: torch.Tensor, size: int = 500):
    return x.split(size)


def feature_frechet_distance(features: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between ``real`` and ``fake`` images (N, C, H, W in [0, 1]) in ``features``' space."""
    fid = FrechetInceptionDistance(feature=features, normalize=True).to(real.device)  # accumulates in float64
    for chunk in _batches(real):
        fid.update(chunk, real=True)
    for chunk in _batches(fake):
        fid.update(chunk, real=False)
    return float(fid.compute())


def classifier_inception_score(logits: torch.Tensor) -> float:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) from class logits, one split, in float64 log space.

    Computed here rather than with torchmetrics' InceptionScore, which turns a class no sample assigns
    any probability to (common with an untrained generator) into NaN via ``0 * log(0)``.
    """
    log_p = torch.log_softmax(logits.double(), dim=1)
    log_marginal = torch.logsumexp(log_p, dim=0) - torch.log(
        torch.tensor(float(len(log_p)), dtype=torch.float64)
    )
    kl = (log_p.exp() * (log_p - log_marginal)).sum(1)
    return float(kl.mean().exp())


def reconstruction_error(
    generator: Callable[[torch.Tensor], torch.Tensor],
    parameters: list[nn.Parameter],
    images: torch.Tensor,
    latent_dim: int,
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
) -> float:
    """Xiang & Li (2017): mean per-pixel squared error of ``min_z ||G(z) - x||^2`` over held-out ``images``.

    ``generator`` maps z to images in [0, 1]; its ``parameters`` are frozen for the search. Each z starts
    from a seeded N(0, I) draw and is optimized with Adam. A generator that dropped modes cannot
    reconstruct their images, so the error rises.
    """
    flags = [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(False)
    try:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(len(images), latent_dim, generator=gen).to(images.device).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                loss = (generator(z) - images).pow(2).flatten(1).mean(1).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return float((generator(z) - images).pow(2).flatten(1).mean(1).mean())
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad_(flag)


class ImageGANEvaluator:
    """Per-epoch metrics for an image GAN: feature FID, KID, classifier IS; FID floor and reconstruction at the end.

    Sample sizes follow the FID/KID literature's warnings about small-sample bias (Heusel et al. 2017;
    Binkowski et al. 2018): ``num_fake`` generated images (default 2,500, at least 2,000 in the configs) against
    every real test image (all of them when the test split has fewer than that, e.g. 360 for 8x8 digits). KID
    averages ``kid_subsets`` random subsets of ``kid_subset_size`` = min(1000, half the smaller set) images of each
    side, so its standard deviation over subsets is a real spread, not zero from one repeated subset.

    The *FID floor* is what real data scores in this feature space at the same sample sizes: real training images
    (``reference_images``; ``min(num_fake, len(reference))`` of them, a seeded subset) against every real test image,
    scored exactly as a generator's samples are. FID's small-sample bias is then the same on both sides of the
    comparison, so a model near the floor is near real data, and one below it is within noise of it. Without
    ``reference_images`` it falls back to two seeded halves of the test images, which doubles the bias: measured on
    8x8 digits with the suite's classifier, 76.5 for halves (180 vs 180) against a 2,500-sample BN-DCGAN at 73.6;
    the train-vs-test floor is far lower (see configs/gen/gan.yaml).

    Real-image features are computed once. Fakes come from a fixed seeded noise batch, so epochs and
    runs are compared on the same z, and evaluation never consumes the training RNG.
    """

    def __init__(
        self,
        classifier: FeatureClassifier,
        test_images: torch.Tensor,
        num_fake: int = 2500,
        reconstruction_images: int = 64,
        reconstruction_steps: int = 200,
        reconstruction_every_epoch: bool = False,
        seed: int = 0,
        kid_subsets: int = 50,
        reference_images: torch.Tensor | None = None,
        reader: FeatureClassifier | None = None,
    ) -> None:
        if len(test_images) < 4 or num_fake < 4:
            raise ValueError(f"FID/KID need >= 4 real and fake images, got {len(test_images)} and {num_fake}")
        self.features = ClassifierFeatures(classifier)
        self.logits = ClassifierLogits(classifier)
        #: The digit reader (load_or_train_classifier(purpose="reader")): recognizable_pct and class shares.
        self.reader = reader.eval().requires_grad_(False) if reader is not None else None
        self.test_images = test_images
        self.reference_images = reference_images
        self.num_fake = num_fake
        self.reconstruction_images = min(reconstruction_images, len(test_images))
        self.reconstruction_steps = reconstruction_steps
        self.reconstruction_every_epoch = reconstruction_every_epoch
        self.seed = seed
        self.kid_subset_size = min(1000, len(test_images) // 2, num_fake // 2)
        self.fid = FrechetInceptionDistance(feature=self.features, normalize=True, reset_real_features=False)
        # KID warns it "will save all extracted features": a few thousand 64-d vectors here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*will save all extracted features.*")
            self.kid = KernelInceptionDistance(
                feature=self.features,
                normalize=True,
                reset_real_features=False,
                subsets=kid_subsets,
                subset_size=self.kid_subset_size,
            )
        self._real_done = False
        self._floor: float | None = None
        self._floor_samples = 0

    @torch.no_grad()
    def _add_real(self) -> None:
        for chunk in _batches(self.test_images):
            self.fid.update(chunk, real=True)
            self.kid.update(chunk, real=True)
        self._real_done = True

    @torch.no_grad()
    def fid_floor(self) -> float:
        """Real training images against the real test images at the fakes' size (else test half vs half); once."""
        if self._floor is None:
            images = self.test_images
            gen = torch.Generator().manual_seed(self.seed)
            if self.reference_images is not None and len(self.reference_images) >= 4:
                reference = self.reference_images.to(images.device)
                pick = torch.randperm(len(reference), generator=gen)[: min(self.num_fake, len(reference))]
                self._floor = feature_frechet_distance(
                    self.features, images, reference[pick.to(images.device)]
                )
                self._floor_samples = len(pick)
            else:
                order = torch.randperm(len(images), generator=gen)
                half = len(order) // 2
                self._floor = feature_frechet_distance(
                    self.features,
                    images[order[:half].to(images.device)],
                    images[order[half:].to(images.device)],
                )
                self._floor_samples = half
        return self._floor

    @torch.no_grad()
    def real_recognizable_pct(self) -> float:
        """``recognizable_pct`` of the real test images: the level of real data (NaN without a reader)."""
        if self.reader is None:
            return math.nan
        self.reader.to(self.test_images.device)
        logits = torch.cat([self.reader(chunk.float()) for chunk in _batches(self.test_images)])
        return digit_scores(logits)["recognizable_pct"]

    def __call__(self, gan, final: bool = False) -> dict[str, float]:
        device = gan.device
        for metric in (self.fid, self.kid):
            metric.to(device)
        if self.reader is not None:
            self.reader.to(device)
        self.test_images = self.test_images.to(device)
        if not self._real_done:
            self._add_real()
        self.fid.reset()
        self.kid.reset()
        with torch.no_grad():
            fake = gan.sample(self.num_fake, seed=self.seed)
            for chunk in _batches(fake):
                self.fid.update(chunk, real=False)
                self.kid.update(chunk, real=False)
            logits = torch.cat([self.logits(chunk) for chunk in _batches(fake)])
            inception = classifier_inception_score(logits)
        with torch.random.fork_rng(devices=[]):  # KID draws random subsets: keep the training RNG untouched
            torch.manual_seed(self.seed)
            kid_mean, kid_std = self.kid.compute()
        metrics = {
            "fid_feature": float(self.fid.compute()),
            "kid_feature": float(kid_mean),
            "kid_feature_std": float(kid_std),
            "inception_score_classifier": inception,
        }
        if self.reader is not None:
            with torch.no_grad():
                metrics |= digit_scores(torch.cat([self.reader(chunk.float()) for chunk in _batches(fake)]))
        if final:
            metrics |= {
                "fid_feature_floor": self.fid_floor(),
                "fid_floor_samples": float(self._floor_samples),
                "fid_fake_samples": float(len(fake)),
                "fid_real_samples": float(len(self.test_images)),
                "kid_subset_size": float(self.kid_subset_size),
            }
            if self.reader is not None:
                metrics["recognizable_pct_real"] = self.real_recognizable_pct()
        if final or self.reconstruction_every_epoch:
            images = self.test_images[: self.reconstruction_images]
            metrics["reconstruction_mse"] = reconstruction_error(
                gan.generate_images, list(gan.sampler.parameters()), images, gan.latent_dim,
                steps=self.reconstruction_steps, seed=self.seed,
            )  # fmt: skip
        return metrics
