"""Verdicts for the registered claims (C1-C8, ``registry.yaml``) from stored results: task-level bootstrap
statistics with Holm-Bonferroni, plots, Markdown/HTML report with the pre-registration, W&B report.

    from wnbench.report import build_report
    results, paths = build_report(["results/rl", "results/gen", "results/bench"], "results/report")

Reads only what ``wnbench run`` and ``wnbench bench`` stored; never trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .claims import DIAGNOSTICS, ClaimResult, analyze
from .records import Inputs, load_inputs
from .registry import Registry, load_registry
from .render import write_report

__all__ = [
    "ClaimResult",
    "Inputs",
    "Registry",
    "analyze",
    "build_report",
    "load_inputs",
    "load_registry",
    "wandb_sections",
]

#: What the W&B report draws per claim: (curve metrics, final metrics).
_WANDB_METRICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "C1": (("eval/mean_return", *DIAGNOSTICS), ("final_return", "auc_normalized")),
    "C2": (
        ("elbo_test_nats", "fid_classifier", "modes_covered"),
        ("elbo_test_nats", "fid_classifier", "modes_covered"),
    ),
    "C3": ((), ("steps_per_cpu_s",)),
    "C4": (("elbo_test_nats", "modes_covered"), ("elbo_test_nats", "modes_covered")),
    "C5": (("eval/mean_return",), ("final_return", "modes_covered", "fid_classifier")),
    "C6": (("eval/mean_return",), ("final_return", "elbo_test_nats", "fid_classifier", "modes_covered")),
    "C7": (("eval/mean_return", *DIAGNOSTICS), ("final_return",)),
}


def build_report(
    directories: Sequence[str | Path],
    out_dir: str | Path,
    reps: int | None = None,
    registry: Registry | None = None,
) -> tuple[list[ClaimResult], dict[str, Path]]:
    """Load, analyze and write the report (``reps`` bootstrap resamples, the registry's default when ``None``);
    returns the claim results and the files written."""
    registry = registry or load_registry()
    inputs = load_inputs(directories)
    results = analyze(inputs, reps=reps, registry=registry)
    paths = write_report(results, inputs, Path(out_dir), registry)
    return results, paths


def wandb_sections(results: Sequence[ClaimResult]) -> list[Any]:
    """One W&B report section per claim measured by tracked suite runs, with a panel grid per cell (task,
    algorithm) of the claim's records."""
    from wnbench.tracking.wandb_report import ClaimSection

    sections = []
    for r in results:
        if not r.suites or r.claim not in _WANDB_METRICS:
            continue
        curves, finals = _WANDB_METRICS[r.claim]
        tuned = f" Tuned per norm: {r.tuned_verdict}." if r.tuned_verdict else ""
        text = f"**Verdict: {r.verdict}.** {r.headline_text} ({r.basis}).{tuned} Measured by: {r.measure}."
        cells = sorted(
            {
                (rec["config"]["task"], rec["config"]["algo"])
                for by_arm in (r.cell_records or {}).values()
                for recs in by_arm.values()
                for rec in recs
            }
        )
        sections.append(ClaimSection(r.claim, r.title, text, tuple(r.suites), curves, finals, tuple(cells)))
    return sections
