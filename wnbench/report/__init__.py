"""Verdicts for the registered claims (``registry.yaml``, the only list of claims) from stored results: task-level
bootstrap statistics with Holm-Bonferroni, plots, Markdown/HTML report with the pre-registration, W&B report.

    from wnbench.report import build_report
    results, paths = build_report(["results/rl", "results/gen", "results/bench"], "results/report")

Reads only what ``wnbench run`` and ``wnbench bench`` stored; never trains. Names are imported on first use, so
``wnbench.report.registry`` (read by suite validation) does not pull in numpy, matplotlib or the analyses.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .claims import ClaimResult, analyze
    from .records import Inputs, load_inputs
    from .registry import Registry, load_registry

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

#: Public names served lazily: name -> the submodule that defines it.
_LAZY = {
    "ClaimResult": "claims",
    "analyze": "claims",
    "Inputs": "records",
    "load_inputs": "records",
    "Registry": "registry",
    "load_registry": "registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_report(
    directories: Sequence[str | Path],
    out_dir: str | Path,
    reps: int | None = None,
    registry: Registry | None = None,
) -> tuple[list[ClaimResult], dict[str, Path]]:
    """Load, analyze and write the report (``reps`` bootstrap resamples, the registry's default when ``None``);
    returns the claim results and the files written."""
    from .claims import analyze
    from .records import load_inputs
    from .registry import load_registry
    from .render import write_report

    registry = registry or load_registry()
    inputs = load_inputs(directories)
    results = analyze(inputs, reps=reps, registry=registry)
    paths = write_report(results, inputs, Path(out_dir), registry)
    return results, paths


def wandb_sections(results: Sequence[ClaimResult]) -> list[Any]:
    """One W&B report section per claim measured by tracked suite runs whose registry entry has ``wandb`` panels,
    with a panel grid per cell (task, algorithm) of the claim's records."""
    from wnbench.tracking.wandb_report import ClaimSection

    sections = []
    for r in results:
        panels = r.registered.wandb if r.registered is not None else None
        if not r.suites or panels is None:
            continue
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
        sections.append(
            ClaimSection(
                r.claim,
                r.title,
                text,
                tuple(r.suites),
                curve_metrics(panels.curves),
                panels.finals,
                tuple(cells),
            )
        )
    return sections


def curve_metrics(curves: Sequence[str]) -> tuple[str, ...]:
    """A registry entry's W&B curves with ``diag/*`` expanded to every mechanism diagnostic a run logs."""
    from .cells import DIAGNOSTICS
    from .registry import ALL_DIAGNOSTICS

    return tuple(m for name in curves for m in (DIAGNOSTICS if name == ALL_DIAGNOSTICS else (name,)))
