"""WN with data-dependent init against BN (``wnbench bench ddi``): a deterministic check of the benchmark's rows.

Registry v3 (a claim with ``heldout_tolerance``): supported when, for one layer on whitened input, the median
held-out |WN+DDI - BN| on a batch of 512 stays within the tolerance (output standard deviations) at every
``train_steps`` value the benchmark measured (``meta.reach_summary``); contradicted when it leaves it at some step
count. The table shows where the equivalence stops (standardized and raw inputs, depth 2 and 4). The init batch
agrees by construction and is shown, not tested. Older registries: supported when the largest init-batch
difference is below the benchmark's ``init_tolerance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import stats
from ..records import Inputs
from ..registry import Claim, Registry
from ..results import NO_DATA, ClaimResult, HypothesisResult, Table

#: The claim's own setting: one layer, whitened input, held-out batch of this size.
CLAIM_INPUTS, CLAIM_DEPTH, HELDOUT_BATCH = "whitened", 1, 512


def analyze_ddi(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """C8's verdict from ``ddi.json`` (deterministic, no bootstrap, no Holm) and its tables."""
    hyp = claim.headline
    h = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, statistical=False)
    ddi = inputs.bench.get("ddi")
    if not ddi:
        return [h]
    tolerance = getattr(claim, "heldout_tolerance", None)
    if tolerance is None:
        _init_rule(h, ddi)
    else:
        summary = ddi["meta"].get("reach_summary") or []
        if not summary:
            result.notes.append("ddi.json predates the held-out measurements: rerun `wnbench bench ddi`.")
        else:
            heldout_verdict(h, summary, float(tolerance))
            result.tables.append(reach_table(summary, float(tolerance)))
    result.tables.append(_init_table(ddi["rows"]))
    return [h]


def _claim_rows(summary: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted((r for r in summary if (r["inputs"], r["depth"], r["batch"]) == (CLAIM_INPUTS, CLAIM_DEPTH,
                   HELDOUT_BATCH)), key=lambda r: r["train_steps"])  # fmt: skip


def heldout_verdict(h: HypothesisResult, summary: Sequence[Mapping[str, Any]], tolerance: float) -> None:
    """Supported when the claim's setting stays within ``tolerance`` at every train_steps; else contradicted."""
    rows = _claim_rows(summary)
    if not rows:
        h.verdict = NO_DATA
        h.text = f"no {CLAIM_INPUTS}, depth-{CLAIM_DEPTH}, batch-{HELDOUT_BATCH} rows in the reach summary"
        return
    outside = [r for r in rows if r["median_mean_abs_diff"] > tolerance]
    h.verdict = stats.CONTRADICTED if outside else stats.SUPPORTED
    figures = ", ".join(f"{r['median_mean_abs_diff']:.3f} after {r['train_steps']}" for r in rows)
    h.text = (
        f"median held-out |WN+DDI − BN| (output SDs, {CLAIM_INPUTS} input, one layer, batch {HELDOUT_BATCH}): "
        f"{figures} SGD steps; tolerance {tolerance:g}"
        + (f"; outside it after {', '.join(str(r['train_steps']) for r in outside)} steps" if outside else "")
    )


def reach_table(summary: Sequence[Mapping[str, Any]], tolerance: float) -> Table:
    """Where the equivalence stops: inputs x depth rows, one column per step count, held-out batch of 512."""
    steps = sorted({r["train_steps"] for r in summary})
    cell = {(r["inputs"], r["depth"], r["train_steps"]): r for r in summary if r["batch"] == HELDOUT_BATCH}
    keys = sorted(
        {(r["inputs"], r["depth"]) for r in summary}, key=lambda k: (k != (CLAIM_INPUTS, CLAIM_DEPTH), k)
    )
    rows = []
    for inputs, depth in keys:
        values = []
        for s in steps:
            r = cell.get((inputs, depth, s))
            values.append("—" if r is None else f"{r['median_mean_abs_diff']:.3f} "
                          + ("✓" if r["median_mean_abs_diff"] <= tolerance else "✗"))  # fmt: skip
        rows.append([inputs, str(depth), *values])
    return Table(
        f"Where WN+DDI stops behaving like BN: median over seeds of the mean |difference| on a held-out batch of "
        f"{HELDOUT_BATCH}, in output SDs (✓ within {tolerance:g}); first row: the claim's setting",
        ["inputs", "depth", *[f"after {s} SGD steps" for s in steps]],
        rows,
    )


def _init_rule(h: HypothesisResult, ddi: Mapping[str, Any]) -> None:
    """The v2 rule: supported when the largest init-batch difference is below the benchmark's tolerance."""
    rows = ddi["rows"]
    tolerance = float(ddi["meta"].get("init_tolerance", 1e-3))
    worst = max(r["init_max_abs_diff"] for r in rows)
    h.verdict = stats.SUPPORTED if worst < tolerance else stats.CONTRADICTED
    shapes = len({(r["in_features"], r["out_features"]) for r in rows})
    h.text = (
        f"max |WN+DDI − BN| on the init batch = {worst:.1e} (tolerance {tolerance:g}; "
        f"{shapes} layer shapes × {len({r['seed'] for r in rows})} seeds)"
    )


def _init_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    shapes = sorted({(r["in_features"], r["out_features"]) for r in rows})
    return Table(
        "WN+DDI vs BN, one layer, ZCA-whitened input, at init (output units have unit variance)",
        [
            "layer",
            "seeds",
            "max |diff| init batch",
            "mean |diff| init batch",
            "mean |diff| fresh batch (median)",
        ],
        [
            [
                f"{i}→{o}",
                str(len(group)),
                f"{max(r['init_max_abs_diff'] for r in group):.1e}",
                f"{float(np.mean([r['init_mean_abs_diff'] for r in group])):.1e}",
                f"{float(np.median([r['fresh_mean_abs_diff'] for r in group])):.3f}",
            ]
            for (i, o) in shapes
            for group in [[r for r in rows if (r["in_features"], r["out_features"]) == (i, o)]]
        ],
    )
