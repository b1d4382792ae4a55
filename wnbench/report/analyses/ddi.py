"""WN with data-dependent init against BN at initialization: a deterministic check of the benchmark's rows."""

from __future__ import annotations

import numpy as np

from .. import stats
from ..records import Inputs
from ..registry import Claim, Registry
from ..results import ClaimResult, HypothesisResult, Table


def analyze_ddi(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    hyp = claim.headline
    h = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, statistical=False)
    ddi = inputs.bench.get("ddi")
    if not ddi:
        return [h]
    rows = ddi["rows"]
    tolerance = float(ddi["meta"].get("init_tolerance", 1e-3))
    worst = max(r["init_max_abs_diff"] for r in rows)
    fresh = [r["fresh_mean_abs_diff"] for r in rows]
    h.verdict = stats.SUPPORTED if worst < tolerance else stats.CONTRADICTED
    shapes = len({(r["in_features"], r["out_features"]) for r in rows})
    h.text = (
        f"max |WN+DDI − BN| on the init batch = {worst:.1e} (tolerance {tolerance:g}; "
        f"{shapes} layer shapes × {len({r['seed'] for r in rows})} seeds)"
    )
    result.tables.append(
        Table(
            "WN+DDI vs BN, one layer, ZCA-whitened input (output units have unit variance)",
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
                for (i, o) in sorted({(r["in_features"], r["out_features"]) for r in rows})
                for group in [[r for r in rows if (r["in_features"], r["out_features"]) == (i, o)]]
            ],
        )
    )
    result.notes.append(
        f"On a fresh whitened batch the two differ by {min(fresh):.3f}–{max(fresh):.3f} output standard deviations "
        "(mean |diff|): BN re-estimates the batch statistics that WN fixed at init. Rule (deterministic, no "
        "bootstrap): supported when the largest init-batch difference is below the benchmark's tolerance."
    )
    return [h]
