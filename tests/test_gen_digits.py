"""Digit metrics of generated images (issue 35): recognizable share and class shares from classifier logits."""

from __future__ import annotations

import pytest
import torch

from wnbench.gen.digit_metrics import digit_scores
from wnbench.gen.features import _augmented


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


def test_reader_augmentation_shifts_whole_images_and_rotates_about_the_centre():
    x = torch.zeros(256, 1, 9, 9)
    x[:, :, 2, 4] = 1.0  # two pixels above the centre
    shifted = _augmented(x, torch.Generator().manual_seed(0), shift=2)
    assert shifted.shape == x.shape and torch.allclose(shifted.sum((1, 2, 3)), torch.ones(256), atol=1e-5)
    rows = (shifted[:, 0].sum(2) * torch.arange(9.0)).sum(1)  # centre of mass
    cols = (shifted[:, 0].sum(1) * torch.arange(9.0)).sum(1)
    assert (
        rows.min() >= -1e-4 and rows.max() <= 4 + 1e-4 and cols.min() >= 2 - 1e-4 and cols.max() <= 6 + 1e-4
    )
    assert rows.max() - rows.min() > 3.5 and cols.max() - cols.min() > 3.5  # the whole +-2 px range is drawn
    blob = torch.zeros(256, 1, 15, 15)
    blob[:, :, 3:6, 6:9] = 1.0  # a 3x3 blob three pixels above the centre (7, 7)
    turned = _augmented(blob, torch.Generator().manual_seed(0), rotate=90.0)[:, 0]
    mass = turned.sum((1, 2))
    row = (turned.sum(2) * torch.arange(15.0)).sum(1) / mass
    col = (turned.sum(1) * torch.arange(15.0)).sum(1) / mass
    radius = ((row - 7) ** 2 + (col - 7) ** 2).sqrt()
    assert torch.allclose(
        radius, torch.full((256,), 3.0), atol=0.1
    )  # rotation about the centre keeps the distance
    assert col.min() < 5 and col.max() > 9  # turned both ways, by up to 90 degrees
    assert torch.equal(_augmented(x, torch.Generator().manual_seed(0)), x)  # no option: unchanged
