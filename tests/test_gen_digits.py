"""Digit metrics of generated images (issue 35): recognizable share and class shares from classifier logits."""

from __future__ import annotations

import pytest
import torch

from wnbench.gen.digit_metrics import digit_scores
from wnbench.gen.features import _shifted


def _logits(labels: list[int], sure: list[bool], classes: int = 10) -> torch.Tensor:
    """Logits whose softmax puts 0.99 (sure) or 0.5 (unsure) on each label."""
    out = torch.zeros(len(labels), classes)
    for i, (label, s) in enumerate(zip(labels, sure, strict=True)):
        p = torch.full((classes,), (0.01 if s else 0.5) / (classes - 1))
        p[label] = 0.99 if s else 0.5
        out[i] = p.log()
    return out


def test_balanced_confident_digits():
    labels = [d for d in range(10) for _ in range(5)]
    scores = digit_scores(_logits(labels, [True] * 50))
    assert scores == {"recognizable_pct": 100.0, "class_share_min": 0.1, "class_share_max": 0.1}


def test_shares_count_recognizable_samples_only():
    # 6 sure: four 3s and two 8s; 4 unsure 1s that must not count as a class
    labels = [3, 3, 3, 3, 8, 8, 1, 1, 1, 1]
    sure = [True] * 6 + [False] * 4
    scores = digit_scores(_logits(labels, sure))
    assert scores["recognizable_pct"] == pytest.approx(60.0)
    assert scores["class_share_max"] == pytest.approx(4 / 6)
    assert scores["class_share_min"] == 0.0  # eight classes never drawn recognizably


def test_threshold_is_inclusive_and_nothing_recognizable_gives_worst_shares():
    at = torch.tensor([[0.9, 0.1]]).log()
    assert digit_scores(at)["recognizable_pct"] == 100.0
    blobs = digit_scores(_logits([0, 1, 2], [False] * 3))
    assert blobs == {"recognizable_pct": 0.0, "class_share_min": 0.0, "class_share_max": 1.0}
    with pytest.raises(ValueError):
        digit_scores(torch.zeros(0, 10))


def test_reader_augmentation_shifts_whole_images():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3, 3] = 1.0
    shifted = _shifted(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and torch.all(shifted.sum((1, 2, 3)) == 1)  # nothing lost within 2 px
    rows = shifted[:, 0].sum(2).argmax(1)
    cols = shifted[:, 0].sum(1).argmax(1)
    assert set(rows.tolist()) == set(range(1, 6)) and set(cols.tolist()) == set(range(1, 6))
