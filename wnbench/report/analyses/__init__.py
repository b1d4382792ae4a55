"""One analysis per kind of claim (the registry's ``analysis`` field): each takes (claim, registry, inputs, reps,
result), fills the result's tables and notes, and returns the claim's hypothesis results."""

from __future__ import annotations

from collections.abc import Callable

from ..results import HypothesisResult
from .comparison import analyze_comparison
from .ddi import analyze_ddi
from .init_sensitivity import analyze_init_sensitivity
from .lr_robustness import analyze_lr
from .noise import analyze_noise
from .timing import analyze_timing

ANALYSES: dict[str, Callable[..., list[HypothesisResult]]] = {
    "comparison": analyze_comparison,
    "timing": analyze_timing,
    "noise": analyze_noise,
    "lr_robustness": analyze_lr,
    "ddi": analyze_ddi,
    "init_sensitivity": analyze_init_sensitivity,
}
