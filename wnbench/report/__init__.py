"""Verdicts for claims C1-C8 from stored results: statistics (rliable), plots, Markdown/HTML report, W&B report.

    from wnbench.report import build_report
    results, paths = build_report(["results/rl", "results/gen", "results/bench"], "results/report")

Reads only what ``wnbench run`` and ``wnbench bench`` stored; never trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .claims import CLAIMS, ClaimResult, analyze
from .records import Inputs, load_inputs
from .render import write_report

__all__ = ["CLAIMS", "ClaimResult", "Inputs", "analyze", "build_report", "load_inputs", "wandb_sections"]

#: What the W&B report draws per claim: (curve metrics, final metrics).
_WANDB_METRICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "C1": (("eval/mean_return",), ("final_return", "auc_normalized")),
    "C2": (
        ("elbo_test_nats", "fid_classifier", "modes_covered"),
        ("elbo_test_nats", "fid_classifier", "modes_covered"),
    ),
    "C3": ((), ("steps_per_cpu_s",)),
    "C4": (("elbo_test_nats", "modes_covered"), ("elbo_test_nats", "modes_covered")),
    "C5": (("eval/mean_return",), ("final_return", "modes_covered", "fid_classifier")),
    "C6": (("eval/mean_return",), ("final_return", "elbo_test_nats", "fid_classifier", "modes_covered")),
    "C7": (("eval/mean_return",), ("final_return",)),
}


def build_report(
    directories: Sequence[str | Path], out_dir: str | Path, reps: int = 2000
) -> tuple[list[ClaimResult], dict[str, Path]]:
    """Load, analyze and write the report (``reps`` bootstrap resamples); returns the claim results and the files
    written."""
    inputs = load_inputs(directories)
    results = analyze(inputs, reps=reps)
    paths = write_report(results, inputs, Path(out_dir))
    return results, paths


def wandb_sections(results: Sequence[ClaimResult]) -> list[Any]:
    """One W&B report section per claim measured by tracked suite runs."""
    from wnbench.tracking.wandb_report import ClaimSection

    sections = []
    for r in results:
        if not r.suites or r.claim not in _WANDB_METRICS:
            continue
        curves, finals = _WANDB_METRICS[r.claim]
        text = f"**Verdict: {r.verdict}.** {r.headline_text} ({r.basis}). Measured by: {r.measure}."
        sections.append(ClaimSection(r.claim, r.title, text, tuple(r.suites), curves, finals))
    return sections
