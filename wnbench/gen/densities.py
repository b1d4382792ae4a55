"""The standard 2-D toy densities of the flow and diffusion literature, as seeded numpy samplers.

Definitions follow the toy-data generators of FFJORD (Grathwohl et al. 2019, ``lib/toy_data.py``) and
scikit-learn's ``make_swiss_roll`` / ``make_moons`` / ``make_circles``, written here in numpy with two changes:

* every point is an i.i.d. draw (scikit-learn spaces the angles of moons and circles evenly and splits the
  points half and half between components; here angles and components are random), so a held-out set is a
  sample of the density and the energy distance's U-statistic is unbiased on it;
* each density is standardized to comparable scale: the FFJORD-scale points are shifted by the density's
  mean (zero by symmetry where it is; moons' (0, 0.3) exactly) and divided by its per-coordinate RMS
  standard deviation (checkerboard's 8 / sqrt(12) exactly), so every density has mean ~0 and
  ``sqrt((var_x + var_y) / 2)`` ~1. The constants were measured once on 4,000,000 draws (seed 0) and are
  fixed here; ``tests/test_gen_densities.py`` checks them.

``swissroll``     the swiss roll's (x, z) plane: (t cos t, t sin t), t = 1.5 pi (1 + 2u), plus N(0, 1) noise, / 5.
``checkerboard``  uniform on the 8 dark squares of a 4x4 board (x1 in [-4, 4]); label = square.
``spirals``       two interleaved spirals (FFJORD's ``2spirals``), N(0, 0.1^2) noise; label = arm.
``moons``         two interleaved half circles (``make_moons``, noise 0.1, FFJORD's x2 - (1, 0.2)); label = moon.
``pinwheel``      5 curved arms (radial std 0.3, tangential std 0.1, rate 0.25, FFJORD's x2); label = arm.
``circles``       two concentric circles, radii 1 and 0.5 (``make_circles``, factor 0.5, noise 0.08), x3;
                  label = circle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DENSITIES", "sample_density", "density_names"]

Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _swissroll(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + rng.standard_normal((n, 2))
    return points / 5.0, np.zeros(n, dtype=np.int64)


def _checkerboard(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + np.floor(x1) % 2
    labels = (np.floor(x1) + 2) * 4 + (np.floor(x2) + 2)  # the 4x4 cell, only dark ones occur
    _, labels = np.unique(labels, return_inverse=True)
    return 2.0 * np.stack([x1, x2], axis=1), labels.astype(np.int64)


def _spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    turn = np.sqrt(rng.random(n)) * 540 * (2 * np.pi) / 360
    arm = rng.integers(0, 2, n)
    x = -np.cos(turn) * turn + rng.random(n) * 0.5
    y = np.sin(turn) * turn + rng.random(n) * 0.5
    sign = np.where(arm == 0, 1.0, -1.0)
    points = sign[:, None] * np.stack([x, y], axis=1) / 3 + 0.1 * rng.standard_normal((n, 2))
    return points, arm.astype(np.int64)


def _moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    moon = rng.integers(0, 2, n)
    angle = np.pi * rng.random(n)
    outer = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    inner = np.stack([1 - np.cos(angle), 1 - np.sin(angle) - 0.5], axis=1)
    points = np.where(moon[:, None] == 0, outer, inner) + 0.1 * rng.standard_normal((n, 2))
    return points * 2 + np.array([-1.0, -0.2]), moon.astype(np.int64)


def _pinwheel(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
    labels = rng.integers(0, arms, n)
    features = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    angles = 2 * np.pi * labels / arms + rate * np.exp(features[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    # Row vector times the rotation [[cos, -sin], [sin, cos]] (FFJORD's einsum), per point.
    points = np.stack(
        [features[:, 0] * cos + features[:, 1] * sin, -features[:, 0] * sin + features[:, 1] * cos], axis=1
    )
    return 2.0 * points, labels.astype(np.int64)


def _circles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    inner = rng.integers(0, 2, n)
    angle = 2 * np.pi * rng.random(n)
    radius = np.where(inner == 1, 0.5, 1.0)
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return 3.0 * (points + 0.08 * rng.standard_normal((n, 2))), inner.astype(np.int64)


#: name -> (sampler at FFJORD's scale, number of labels, mean, RMS per-coordinate std, summary).
DENSITIES: dict[str, tuple[Sampler, int, tuple[float, float], float, str]] = {
    "swissroll": (_swissroll, 1, (0.3995, 0.0416), 1.3725, "swiss roll (FFJORD), standardized"),
    "checkerboard": (_checkerboard, 8, (0.0, 0.0), 2.3094, "8-square checkerboard (FFJORD), standardized"),
    "spirals": (_spirals, 2, (0.0, 0.0), 1.5973, "two interleaved spirals (FFJORD's 2spirals), standardized"),
    "moons": (_moons, 2, (0.0, 0.3), 1.4237, "two moons (make_moons, noise 0.1), standardized"),
    "pinwheel": (_pinwheel, 5, (0.0, 0.0), 1.4827, "5-arm pinwheel (FFJORD), standardized"),
    "circles": (_circles, 2, (0.0, 0.0), 1.6940, "two concentric circles (make_circles), standardized"),
}


def density_names() -> list[str]:
    """The toy densities' names, in registration order."""
    return list(DENSITIES)


def sample_density(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. standardized points ``(n, 2)`` float32 and their component labels ``(n,)`` int64."""
    sampler, _, mean, scale, _ = DENSITIES[name]
    points, labels = sampler(n, rng)
    standardized = (points - np.asarray(mean)) / scale
    return standardized.astype(np.float32), labels
