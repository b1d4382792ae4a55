"""Generative metrics on hand-made inputs: mixture scores, active units, baselines, feature-space distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wnbench.gen import GenDataModule, active_units, independent_baseline_nll, mixture_metrics, mixture_modes
from wnbench.gen.features import (
    ClassifierFeatures,
    ImageGANEvaluator,
    classifier_inception_score,
    feature_frechet_distance,
    load_or_train_classifier,
    reconstruction_error,
)
from wnbench.gen.metrics import check_finite, check_finite_parameters

MODES, STD = mixture_modes("ring8")


def _at_modes(indices, per_mode=10, offset=0.0):
    return np.concatenate([np.repeat(MODES[[i]], per_mode, axis=0) + offset for i in indices])


def test_all_samples_on_one_mode():
    scores = mixture_metrics(_at_modes([3], per_mode=100), MODES, STD)
    assert scores == {
        "hq_coverage_pct": pytest.approx(100 / 8),
        "modes_covered": 1,
        "modes_covered_any": 1,
        "high_quality_pct": 100.0,
        "reverse_kl": pytest.approx(math.log(8)),
    }


def test_samples_spread_evenly_over_all_modes():
    scores = mixture_metrics(_at_modes(range(8)), MODES, STD)
    assert scores["modes_covered"] == scores["modes_covered_any"] == 8
    assert scores["high_quality_pct"] == 100.0 and scores["hq_coverage_pct"] == pytest.approx(100.0)
    assert scores["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_high_quality_uses_three_std_of_the_nearest_mode():
    inside = _at_modes([0, 1], per_mode=5, offset=np.array([2.9 * STD, 0.0]))
    outside = _at_modes([2, 3], per_mode=5, offset=np.array([0.0, 3.1 * STD]))
    scores = mixture_metrics(np.concatenate([inside, outside]), MODES, STD)
    assert scores["high_quality_pct"] == pytest.approx(50.0)
    # Modes 2 and 3 received only low-quality samples, so they are not covered.
    assert scores["modes_covered"] == scores["modes_covered_any"] == 2
    # Reverse KL is over the high-quality samples' modes (PacGAN): 2 modes with 1/2 each -> log(8/2).
    assert scores["reverse_kl"] == pytest.approx(math.log(4))
    # Each covered mode holds 5 of 20 samples, more than its 1/8 share: 2 x 1/8 of the target mass matched.
    assert scores["hq_coverage_pct"] == pytest.approx(25.0)


def test_reverse_kl_of_a_skewed_histogram():
    samples = np.concatenate([_at_modes([0], per_mode=30), _at_modes([1], per_mode=10)])
    q = np.array([0.75, 0.25])
    assert mixture_metrics(samples, MODES, STD)["reverse_kl"] == pytest.approx(
        float(np.sum(q * np.log(q * 8)))
    )


def test_a_mode_needs_a_tenth_of_its_share_to_count_as_covered():
    # 800 samples: 100 expected per mode. Mode 7 gets 9 (< 10%), mode 6 gets 10 (= 10%).
    counts = [100, 100, 100, 100, 100, 100, 10, 9]
    far = np.full((800 - sum(counts), 2), 50.0)  # low quality: count towards N, not towards any mode
    samples = np.concatenate([_at_modes([i], per_mode=c) for i, c in enumerate(counts)] + [far])
    scores = mixture_metrics(samples, MODES, STD)
    assert scores["modes_covered"] == 7 and scores["modes_covered_any"] == 8
    assert scores["high_quality_pct"] == pytest.approx(100 * sum(counts) / 800)
    assert scores["hq_coverage_pct"] == pytest.approx(100 * sum(min(c, 100) for c in counts) / 800)


def test_hq_coverage_keeps_ranking_generators_that_cover_every_mode():
    """Two generators with all 8 modes covered: the blurrier one scores lower (mode counts tie at 8)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, 2500)
    sharp = MODES[labels] + STD * rng.standard_normal((2500, 2))
    blurry = MODES[labels] + 3 * STD * rng.standard_normal((2500, 2))
    a, b = mixture_metrics(sharp, MODES, STD), mixture_metrics(blurry, MODES, STD)
    assert a["modes_covered"] == b["modes_covered"] == 8
    assert a["hq_coverage_pct"] > 95 > 60 > b["hq_coverage_pct"] > 20
    assert a["hq_coverage_pct"] <= a["high_quality_pct"] + 1e-9


def test_non_finite_samples_are_never_high_quality():
    samples = np.concatenate([_at_modes([0], per_mode=2), np.array([[np.nan, 0.0], [np.inf, 1.0]])])
    scores = mixture_metrics(samples, MODES, STD)
    assert scores["high_quality_pct"] == 50.0 and scores["modes_covered_any"] == 1


def test_no_high_quality_sample_gives_the_one_mode_reverse_kl():
    scores = mixture_metrics(np.full((10, 2), 50.0), MODES, STD)
    assert scores["reverse_kl"] == pytest.approx(math.log(8))
    assert scores["hq_coverage_pct"] == 0.0 and scores["modes_covered_any"] == 0


def test_active_units_counts_dimensions_that_vary_with_the_data():
    gen = torch.Generator().manual_seed(0)
    means = torch.zeros(500, 6)
    means[:, :3] = torch.randn(500, 3, generator=gen)  # variance ~1: active
    means[:, 3] = 0.05 * torch.randn(500, generator=gen)  # variance 0.0025: inactive
    assert active_units(means) == 3
    assert active_units(means, threshold=0.001) == 4


def test_independent_bernoulli_baseline_is_the_per_pixel_entropy():
    train = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])  # p = (0.75, 0.75)
    nll = independent_baseline_nll(train, train, "bernoulli")
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert nll == pytest.approx(2 * entropy, rel=1e-6)


def test_check_finite_names_the_step():
    check_finite({"loss": torch.tensor(1.0)}, step=3)
    with pytest.raises(FloatingPointError, match="step 7: loss is nan"):
        check_finite({"loss": torch.tensor(float("nan"))}, step=7)
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="step 2: parameter weight"):
        check_finite_parameters([layer], step=2)


# -- feature space ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    dm = GenDataModule("digits")
    dm.setup()
    cache = tmp_path_factory.mktemp("cache")
    classifier, accuracy = load_or_train_classifier(
        "digits", dm.tensors("train"), dm.tensors("test"), 10, cache_dir=cache, epochs=8
    )
    return classifier, accuracy, dm, cache


def test_classifier_is_cached_and_reloaded(digits_classifier):
    classifier, accuracy, dm, cache = digits_classifier
    assert accuracy > 0.85  # a useful feature space, not a random one
    files = list(cache.glob("feature-classifier-digits-*.pt"))
    assert len(files) == 1
    again, accuracy_again = load_or_train_classifier(
        "digits", dm.tensors("train"), dm.tensors("test"), 10, cache_dir=cache, epochs=8
    )
    assert accuracy_again == accuracy
    for a, b in zip(classifier.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_frechet_distance_is_zero_for_real_vs_real_and_grows_with_noise(digits_classifier):
    classifier, _, dm, _ = digits_classifier
    features = ClassifierFeatures(classifier)
    real = dm.tensors("test")[0]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(real.shape, generator=gen)
    same = feature_frechet_distance(features, real, real.clone())
    distances = [
        feature_frechet_distance(features, real, (real + s * noise).clamp(0, 1)) for s in (0.05, 0.2, 0.5)
    ]
    assert abs(same) < 1e-3 * distances[0]
    assert 0 < distances[0] < distances[1] < distances[2]


def test_inception_score_bounds():
    confident_and_diverse = 50.0 * torch.eye(10).repeat(20, 1)
    assert classifier_inception_score(confident_and_diverse) == pytest.approx(10.0, rel=1e-6)
    collapsed = 50.0 * torch.eye(10)[[3]].repeat(200, 1)
    assert classifier_inception_score(collapsed) == pytest.approx(1.0)
    extreme = torch.tensor([[1e4, -1e4, 0.0]] * 5)  # saturated softmax: still finite
    assert classifier_inception_score(extreme) == pytest.approx(1.0)


class _FixedImages:
    """Stands in for a GAN whose samples are a fixed set of images (for the evaluator)."""

    latent_dim = 4
    device = torch.device("cpu")

    def __init__(self, images):
        self.images = images
        self.generator = torch.nn.Linear(4, int(images[0].numel()))
        self.sampler = (
            self.generator
        )  # the network generate_images uses (the GAN's: G, or G's moving average)

    def sample(self, n, seed=None):
        return self.images[:n]

    def generate_images(self, z):
        return torch.sigmoid(self.generator(z)).view(-1, *self.images.shape[1:])


def test_image_evaluator_ranks_real_images_above_noise(digits_classifier):
    classifier, _, dm, _ = digits_classifier
    real = dm.tensors("test")[0]
    train = dm.tensors("train")[0]
    evaluator = ImageGANEvaluator(classifier, real, num_fake=len(train), reconstruction_images=8,
                                  reconstruction_steps=20)  # fmt: skip
    good = evaluator(_FixedImages(train))
    bad = evaluator(_FixedImages(torch.rand_like(train)), final=True)
    assert good["fid_feature"] < bad["fid_feature"]
    assert good["kid_feature"] < bad["kid_feature"]
    assert 1.0 <= bad["inception_score_classifier"] < good["inception_score_classifier"] <= 10.0
    assert "reconstruction_mse" in bad and "reconstruction_mse" not in good
    # What the final record states about sample sizes: every fake asked for, every real test image.
    assert bad["fid_fake_samples"] == len(train) and bad["fid_real_samples"] == len(real)
    assert bad["kid_subset_size"] == len(real) // 2 < min(len(real), len(train))


def test_kid_subsets_are_smaller_than_both_sets_so_its_std_is_real(digits_classifier):
    classifier, _, dm, _ = digits_classifier
    real = dm.tensors("test")[0]
    fake = dm.tensors("train")[0][:300]
    evaluator = ImageGANEvaluator(classifier, real, num_fake=len(fake), reconstruction_steps=0)
    assert evaluator.kid_subset_size == 150
    metrics = evaluator(_FixedImages(fake))
    assert metrics["kid_feature_std"] > 0
    # The std is the spread over subsets: far below the gap to pure noise.
    noise = evaluator(_FixedImages(torch.rand_like(fake)))
    assert (
        noise["kid_feature_std"] > 0
        and metrics["kid_feature_std"] < noise["kid_feature"] - metrics["kid_feature"]
    )


def test_fid_floor_is_near_zero_and_below_a_bad_model(digits_classifier):
    classifier, _, dm, _ = digits_classifier
    real = dm.tensors("test")[0]
    train = dm.tensors("train")[0]
    n = len(real)
    evaluator = ImageGANEvaluator(classifier, real, num_fake=n, reconstruction_images=4, reconstruction_steps=1,
                                  reference_images=train)  # fmt: skip
    floor = evaluator.fid_floor()
    assert evaluator.fid_floor() == floor  # computed once, seeded
    gen = torch.Generator().manual_seed(1)
    blurred = (0.5 * train[:n] + 0.5 * torch.rand(train[:n].shape, generator=gen)).clamp(0, 1)
    bad = evaluator(_FixedImages(blurred), final=True)
    assert bad["fid_feature_floor"] == floor and bad["fid_floor_samples"] == n
    assert 0 <= floor < 0.2 * bad["fid_feature"]
    # Real training digits scored as a generator's samples, at the same size, are the floor's own kind of sample:
    # their FID is close to it (not equal: another subset), and halves of the test set (the fallback) sit higher.
    perfect = evaluator(_FixedImages(train[-n:]))["fid_feature"]
    assert abs(perfect - floor) < 0.5 * floor
    halves = ImageGANEvaluator(classifier, real, num_fake=n, reconstruction_steps=0).fid_floor()
    assert floor < halves


def test_reconstruction_error_finds_a_reachable_image():
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Sigmoid())
    target_z = torch.randn(5, 3)
    with torch.no_grad():
        reachable = generator(target_z)
    before = [p.clone() for p in generator.parameters()]
    err_reachable = reconstruction_error(
        generator, list(generator.parameters()), reachable, 3, steps=300, lr=0.05
    )
    err_unreachable = reconstruction_error(
        generator, list(generator.parameters()), 1 - reachable.round(), 3, steps=300, lr=0.05
    )
    assert err_reachable < 0.1 * err_unreachable
    # G stayed frozen and its parameters trainable again afterwards.
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters(), strict=True))
    assert all(p.requires_grad for p in generator.parameters())
