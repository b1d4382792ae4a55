"""Classifier-read scores of generated digits: how many a classifier recognizes, and how the classes are shared.

``recognizable_pct``  share of samples (in %) the suite's classifier assigns to a class with softmax confidence
                      >= 0.9 (a sample a digit classifier reads without doubt; blobs and scribbles fall below).
``class_share_min``   smallest and largest share (a fraction, 0.1 each for balanced digits) of one class among
``class_share_max``   the *recognizable* samples only -- a blob's argmax is noise, not a class -- so mode dropping
                      and mode preference show up without counting unreadable samples as a class. With no
                      recognizable sample at all the shares take their worst values, 0 and 1.

StackedMNIST (Metz et al. 2017; VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): a sample's mode is the
triple of the digits the classifier reads in its three channels (argmax, no confidence threshold, as PacGAN's
``log_metrics``), 1,000 modes in all. ``modes_covered`` counts modes with at least one sample; ``kl_modes`` is
KL(generated mode histogram || uniform over the 1,000 modes), in nats, PacGAN's ``JSD().KLD(p, q)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "RECOGNIZABLE_CONFIDENCE",
    "STACKED_MODES",
    "digit_scores",
    "mode_labels",
    "mode_scores",
    "StackedMNISTEvaluator",
    "STACKED_FINAL_SAMPLES",
]

#: Softmax confidence at which a sample counts as recognizable (issue 35).
RECOGNIZABLE_CONFIDENCE = 0.9
#: Modes of StackedMNIST: three digits.
STACKED_MODES = 1000


def digit_scores(
    logits: torch.Tensor, num_classes: int | None = None, confidence: float = RECOGNIZABLE_CONFIDENCE
) -> dict[str, float]:
    """``recognizable_pct``, ``class_share_min`` and ``class_share_max`` from class logits (N, classes)."""
    if logits.ndim != 2 or len(logits) == 0:
        raise ValueError(f"logits must be (samples, classes) with samples >= 1, got {tuple(logits.shape)}")
    classes = num_classes or logits.shape[1]
    probs = torch.softmax(logits.double(), dim=1)
    top, label = probs.max(dim=1)
    sure = top >= confidence
    recognized = int(sure.sum())
    if recognized == 0:
        share_min, share_max = 0.0, 1.0
    else:
        counts = torch.bincount(label[sure], minlength=classes).double()
        shares = counts / recognized
        share_min, share_max = float(shares.min()), float(shares.max())
    return {
        "recognizable_pct": 100.0 * recognized / len(logits),
        "class_share_min": share_min,
        "class_share_max": share_max,
    }


def mode_labels(digits: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, 3) digit triples -> mode index ``100 * d0 + 10 * d1 + d2`` (0..999)."""
    d = np.asarray(digits.cpu() if isinstance(digits, torch.Tensor) else digits, dtype=np.int64)
    if d.ndim != 2 or d.shape[1] != 3 or (d.size and (d.min() < 0 or d.max() > 9)):
        raise ValueError(f"expected (N, 3) digits in 0..9, got shape {d.shape}")
    return d @ np.array([100, 10, 1], dtype=np.int64)


def mode_scores(modes: np.ndarray, num_modes: int = STACKED_MODES) -> dict[str, float]:
    """``modes_covered`` (modes with >= 1 sample) and ``kl_modes`` = KL(histogram || uniform) in nats."""
    modes = np.asarray(modes, dtype=np.int64)
    if modes.size == 0:
        raise ValueError("mode_scores needs at least one sample")
    counts = np.bincount(modes, minlength=num_modes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    kl = float(np.sum(p * (np.log(p) + math.log(num_modes))))
    return {"modes_covered": float((counts > 0).sum()), "kl_modes": max(kl, 0.0)}


#: Samples scored at a run's end: VEEGAN's and PacGAN's 26,000 (PacGAN's VEEGAN setting, ``num_test_sample``).
STACKED_FINAL_SAMPLES = 26_000


class StackedMNISTEvaluator:
    """Mode scores of a StackedMNIST GAN, its channels read by the mnist-5k digit reader.

    Per-epoch curves score ``num_samples`` generated stacks (the config's ``eval_samples``); the final evaluation
    scores ``final_samples`` (26,000, the published tables' count): with fewer, the KL of even a perfect generator
    rises (about 999 / (2 n) nats for n samples of a uniform histogram), so only same-size figures compare. The
    real-data level at the same size (``modes_covered_floor``, ``kl_modes_floor``) reads seeded random triples of
    the real test digits with the same reader. Samples come from a fixed seeded z, chunk by chunk (26,000 RGB
    images would be 245 MB at once).
    """

    def __init__(
        self,
        reader: torch.nn.Module,
        test_digits: torch.Tensor,
        num_samples: int = 2600,
        final_samples: int = STACKED_FINAL_SAMPLES,
        seed: int = 0,
        chunk: int = 1000,
    ) -> None:
        if num_samples < 1 or final_samples < 1:
            raise ValueError(f"sample counts must be >= 1, got {num_samples} and {final_samples}")
        self.reader = reader.eval().requires_grad_(False)
        self.test_digits = test_digits
        self.num_samples, self.final_samples = num_samples, final_samples
        self.seed, self.chunk = seed, chunk
        self._floor: dict[str, float] | None = None

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """(N, 3, H, W) stacks -> (N, 3) digits and the (N * 3, 10) channel logits."""
        n, c, h, w = images.shape
        logits = self.reader(images.reshape(n * c, 1, h, w).float())
        return logits.argmax(1).view(n, c).cpu().numpy(), logits

    @torch.no_grad()
    def floor(self) -> dict[str, float]:
        """Real data at the final sample size: seeded triples of test digits, read by the reader; computed once."""
        if self._floor is None:
            digits = self.test_digits.to(next(self.reader.parameters()).device)
            labels = torch.cat([self.reader(chunk.float()).argmax(1) for chunk in digits.split(self.chunk)])
            rng = np.random.default_rng(self.seed)
            triples = labels.cpu().numpy()[rng.integers(0, len(labels), size=(self.final_samples, 3))]
            scores = mode_scores(mode_labels(triples))
            self._floor = {f"{k}_floor": v for k, v in scores.items()}
        return self._floor

    @torch.no_grad()
    def __call__(self, gan, final: bool = False) -> dict[str, float]:
        self.reader.to(gan.device)
        n = self.final_samples if final else self.num_samples
        digits, sure = [], 0
        for z in gan.noise(n, seed=self.seed).split(self.chunk):
            read, logits = self.read(gan.generate_images(z))
            digits.append(read)
            sure += int((torch.softmax(logits.double(), 1).max(1).values >= RECOGNIZABLE_CONFIDENCE).sum())
        metrics = mode_scores(mode_labels(np.concatenate(digits)))
        metrics["channel_recognizable_pct"] = 100.0 * sure / (3 * n)
        if final:
            metrics |= self.floor() | {"mode_samples": float(n)}
        return metrics
