"""The 2-D toy densities (wnbench.gen.densities) and the energy distance that scores every 2-D task."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from wnbench.errors import UserError
from wnbench.gen.data import DATASETS, dataset_info, load_splits
from wnbench.gen.densities import DENSITIES, sample_density
from wnbench.gen.metrics import ENERGY_SAMPLES, PointsEvaluator, energy_distance
from wnbench.gen.scoring import POINT_DATASETS, primary_metric

ROOT = Path(__file__).resolve().parents[1]
ALL_POINTS = ["ring8", "grid25", *DENSITIES]


def test_eight_point_tasks_are_registered_as_point_datasets():
    assert len(ALL_POINTS) >= 8
    assert {"swissroll", "checkerboard", "spirals", "moons", "pinwheel", "circles"} <= set(DENSITIES)
    for name in ALL_POINTS:
        info = dataset_info(name)
        assert info.kind == "points" and info.shape == (2,), name
    assert sorted(POINT_DATASETS) == sorted(ALL_POINTS)


@pytest.mark.parametrize("name", list(DENSITIES))
def test_density_splits_shape_finite_and_deterministic(name):
    splits = load_splits(name, split_seed=0)
    sizes = {part: len(x) for part, (x, _) in splits.items()}
    assert sizes == {"train": 25_600, "val": 2_500, "test": 2_500}
    for x, y in splits.values():
        assert x.shape[1:] == (2,) and x.dtype == np.float32 and np.isfinite(x).all()
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < DATASETS[name].num_classes
    again = load_splits(name, split_seed=0)
    other = load_splits(name, split_seed=1)
    for part in splits:
        np.testing.assert_array_equal(splits[part][0], again[part][0])
        assert not np.array_equal(splits[part][0], other[part][0])
    # The three splits are disjoint draws.
    train, test = splits["train"][0], splits["test"][0]
    assert not set(map(bytes, test[:200])) & set(map(bytes, train))


@pytest.mark.parametrize("name", list(DENSITIES))
def test_densities_are_standardized(name):
    x, _ = sample_density(name, 400_000, np.random.default_rng(123))
    assert np.abs(x.mean(0)).max() < 0.02, x.mean(0)
    rms_std = float(np.sqrt(x.var(0).mean()))
    assert 0.98 < rms_std < 1.02, rms_std
    assert np.abs(x).max() < 6.0


def test_densities_have_their_shapes():
    """Each density's defining property, so that a wrong formula fails here rather than in a figure."""
    rng = np.random.default_rng(0)
    circles, labels = sample_density("circles", 20_000, rng)
    radii = np.linalg.norm(circles * DENSITIES["circles"][3], axis=1) / 3  # back to make_circles' scale
    assert abs(np.median(radii[labels == 0]) - 1.0) < 0.02 and abs(np.median(radii[labels == 1]) - 0.5) < 0.02
    board, _ = sample_density("checkerboard", 20_000, rng)
    raw = board * DENSITIES["checkerboard"][3]
    cells = (np.floor(raw[:, 0] / 2) + np.floor(raw[:, 1] / 2)) % 2
    assert np.all(cells == cells[0])  # only one colour of the board is ever drawn
    moons, labels = sample_density("moons", 20_000, rng)
    assert moons[labels == 0, 1].mean() > moons[labels == 1, 1].mean() + 0.5  # the upper moon is above
    pinwheel, labels = sample_density("pinwheel", 20_000, rng)
    assert np.bincount(labels).min() > 3500  # five arms, i.i.d. labels


def test_energy_distance_matches_brute_force_and_is_symmetric():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(5, 2)) + 0.5
    between = np.mean([np.linalg.norm(a - b) for a in x for b in y])
    within_x = np.mean([np.linalg.norm(a - b) for a, b in itertools.permutations(x, 2)])
    within_y = np.mean([np.linalg.norm(a - b) for a, b in itertools.permutations(y, 2)])
    expected = 2 * between - within_x - within_y
    assert energy_distance(x, y) == pytest.approx(expected, rel=1e-12)
    assert energy_distance(y, x) == pytest.approx(expected, rel=1e-12)
    assert energy_distance(torch.as_tensor(x), y) == pytest.approx(expected, rel=1e-12)


def test_energy_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2))
    same = energy_distance(a, b)
    shifts = [energy_distance(a, b + [delta, 0.0]) for delta in (0.1, 0.3, 1.0)]
    assert abs(same) < 0.005
    assert same < shifts[0] < shifts[1] < shifts[2]
    assert shifts[2] > 0.3  # ~ 2 E|X - Y| - ... for a 1-std shift: far above the sampling noise
    assert energy_distance(a, np.vstack([b[:-1], [np.nan, 0.0]])) == float("inf")
    with pytest.raises(ValueError):
        energy_distance(a[:1], b)


@pytest.mark.parametrize("name", ALL_POINTS)
def test_floor_is_small_against_a_shifted_copy(name):
    splits = load_splits(name, split_seed=0)
    evaluator = PointsEvaluator(splits["test"][0], splits["val"][0])
    assert len(evaluator.test) == ENERGY_SAMPLES
    assert abs(evaluator.floor) < 0.01
    shifted = torch.as_tensor(splits["val"][0][:ENERGY_SAMPLES]) + 0.25

    class Shifted:
        def sample(self, n, seed=None):
            return shifted[:n]

    metrics = evaluator(Shifted(), final=True)
    assert metrics["energy_distance_floor"] == evaluator.floor
    assert metrics["energy_distance"] > 5 * max(abs(evaluator.floor), 1e-3)


def test_headline_metrics():
    assert primary_metric("gan", "ring8") == "hq_coverage_pct"  # as the v2 records were scored
    assert primary_metric("gan", "moons") == "energy_distance"
    assert primary_metric("diffusion", "ring8") == "energy_distance"
    assert primary_metric("vae", "moons") == "elbo_test_nats"


def test_unknown_density_is_refused_naming_the_known_ones():
    with pytest.raises(UserError, match=r"unknown dataset 'moon' \(did you mean 'moons'\?\).*swissroll"):
        dataset_info("moon")


def test_unknown_density_in_a_suite_exits_2_listing_the_densities(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "bad.yaml"
    suite.write_text(
        "name: bad\nclaims: [C2]\ndescription: x\nprofiles:\n  default:\n    kind: gen\n    seeds: 1\n"
        "    tasks: [spiral]\n    algos: [diffusion]\n    norms: [none]\n"
    )
    code, _, err = run_cli(monkeypatch, capsys, "run", str(suite), "--no-wandb", "--out", str(tmp_path / "o"))
    assert code == 2, err
    assert "Traceback" not in err
    assert "unknown dataset 'spiral'" in err and "did you mean 'spirals'" in err
    for name in DENSITIES:
        assert name in err
    assert not (tmp_path / "o" / "runs").exists()
