"""Batch statistics as a noise source: the noise benchmark (the mechanism) and batch-size sweeps."""

from __future__ import annotations

import math
from collections import defaultdict

from .. import stats
from ..cells import (
    describe_records,
    group_cells,
    records_for,
    scored_cells,
    stage_of,
)
from ..hypotheses import evaluate_hypothesis
from ..records import Inputs
from ..registry import Claim, Registry, arm_of
from ..results import ClaimResult, HypothesisResult, Table, fmt_value
from ..tables import median_table


def analyze_noise(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """A batch-noise claim: the noise benchmark (the mechanism, a deterministic measurement) and batch-size sweeps in training."""
    out: list[HypothesisResult] = []
    all_arms = registry.arms()
    mech, *rest = claim.hypotheses
    h = HypothesisResult(claim.id, mech.name, mech.family, mech.x, mech.y, statistical=False)
    out.append(h)
    noise = inputs.bench.get("noise")
    if noise:
        rows_by_norm: dict[str, dict[int, float]] = defaultdict(dict)
        for r in noise["rows"]:
            rows_by_norm[r["norm"]][int(r["batch_size"])] = float(r["relative_spread"])
        sizes = sorted({b for by in rows_by_norm.values() for b in by})
        result.tables.append(
            Table(
                f"Relative spread of one input's output across {noise['meta'].get('companions', '?')} companion "
                "sets (train mode; 0 = no batch dependence)",
                ["norm", *[f"B={b}" for b in sizes]],
                [[n, *[fmt_value(by.get(b, math.nan)) for b in sizes]] for n, by in rows_by_norm.items()],
            )
        )
        bns = {n: by for n, by in rows_by_norm.items() if arm_of(n, all_arms) in mech.x}
        wns = {n: by for n, by in rows_by_norm.items() if arm_of(n, all_arms) in mech.y}
        if bns and wns:
            noisy = all(all(v > 0 for v in by.values()) and by[min(by)] > by[max(by)] for by in bns.values())
            wn_zero = all(abs(v) < 1e-6 for by in wns.values() for v in by.values())
            h.verdict = stats.SUPPORTED if noisy and wn_zero else stats.CONTRADICTED
            bn = next(iter(bns.values()))
            small, large = min(bn), max(bn)
            h.text = (
                f"{next(iter(bns))} spread {bn[small]:.3f} at B={small} → {bn[large]:.3f} at B={large}; "
                + ", ".join(f"{n} {max(by.values()):.1g}" for n, by in wns.items())
            )
            result.notes.append(
                "Mechanism rule (deterministic measurement, no bootstrap): supported when every BN arm's spread is "
                "positive at every batch size and larger at the smallest than at the largest, and every WN arm's is "
                "zero."
            )
        else:
            h.verdict = stats.INSUFFICIENT
            h.text = "the noise benchmark lacks a BN or a WN arm"
    records = [r for r in records_for(inputs, claim) if stage_of(r) == "eval"]
    if records:
        describe_records(result, claim, records, inputs)
        cells = group_cells(records)
        scored = scored_cells(cells)
        result.cell_records = cells
        result.cell_scores = {c: s.normalized for c, s in scored.items()}
        result.anchors = {c: s.anchor.source for c, s in scored.items()}
        out += [evaluate_hypothesis(claim, hyp, scored, registry, reps) for hyp in rest]
        result.tables.append(
            median_table(cells, "Training with small and large batches: median headline metric")
        )
    else:
        out += [HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y) for hyp in rest]
    return out
