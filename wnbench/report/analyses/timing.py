"""The cost of a norm: the paired per-step overhead benchmark (headline) and the runs' throughput."""

from __future__ import annotations

from typing import Any

from .. import stats
from ..cells import (
    group_cells,
    records_for,
    scored_cells,
    stage_of,
    throughput_score,
)
from ..hypotheses import evaluate_hypothesis
from ..records import Inputs
from ..registry import Claim, Registry, arm_of
from ..results import ClaimResult, HypothesisResult, Table
from ..tables import throughput_table


def analyze_timing(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """C3: the paired per-step benchmark (headline) and the runs' own throughput (supporting)."""
    out: list[HypothesisResult] = []
    all_arms = registry.arms()
    for hyp in claim.hypotheses:
        if hyp.metric == "throughput":
            records = [
                r for r in records_for(inputs, claim) if r["status"] == "finished" and stage_of(r) == "eval"
            ]
            if not records:
                out.append(HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y))
                continue
            if not result.suites:
                result.suites = sorted({r["suite"] for r in records})
            cells = group_cells(records)
            scored = scored_cells(cells, throughput_score)
            h = evaluate_hypothesis(claim, hyp, scored, registry, reps)
            h.metric = "run throughput"
            out.append(h)
            result.tables.append(throughput_table(cells))
            continue
        h = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, statistical=False)
        overhead = inputs.bench.get("overhead")
        out.append(h)
        if not overhead:
            continue
        rows = overhead["rows"]
        rope = registry.rope(claim)
        decisions = []
        for model in dict.fromkeys(r["model"] for r in rows):
            by_arm: dict[str, dict[str, Any]] = {}
            for r in rows:
                if r["model"] == model:
                    arm = arm_of(str(r["norm"]), all_arms)
                    if arm is not None:
                        by_arm.setdefault(arm, r)
            for a in hyp.x:
                for b in hyp.y:
                    if a in by_arm and b in by_arm:
                        wa, wb = by_arm[a], by_arm[b]
                        cheaper = wa["train_step_ratio_q75"] < wb["train_step_ratio_q25"]
                        dearer = wa["train_step_ratio_q25"] > wb["train_step_ratio_q75"]
                        close = abs(wa["train_step_ratio"] - wb["train_step_ratio"]) <= rope
                        decisions.append((model, a, b, cheaper, dearer, close, wa, wb))
        if not decisions:
            h.verdict = stats.INSUFFICIENT
            h.text = "the benchmark has no WN and BN rows for one model"
            continue
        if all(d[5] for d in decisions):
            h.verdict = stats.EQUIVALENT
        elif all(d[3] for d in decisions):
            h.verdict = stats.SUPPORTED
        elif all(d[4] for d in decisions):
            h.verdict = stats.CONTRADICTED
        else:
            h.verdict = stats.INCONCLUSIVE
        k = sum(d[3] for d in decisions)
        h.text = (
            "train step vs no norm: " + "; ".join(
                f"{m} {a} {wa['train_step_ratio']:.2f}× vs {b} {wb['train_step_ratio']:.2f}×"
                for m, a, b, _, _, _, wa, wb in decisions[:4]
            ) + (" …" if len(decisions) > 4 else "") + f" (WN cheaper, IQRs apart, in {k} of {len(decisions)})"
        )  # fmt: skip
        meta = overhead.get("meta", {})
        result.tables.append(
            Table(
                f"Paired overhead benchmark (ratio to no norm, median [IQR] of {meta.get('repeats', '?')} "
                f"interleaved repeats, {meta.get('device', '?')}, {meta.get('torch_threads', '?')} thread)",
                ["model", "norm", "train step", "act step", "peak memory"],
                [
                    [
                        r["model"], r["norm"],
                        f"{r['train_step_ratio']:.2f} [{r['train_step_ratio_q25']:.2f}, {r['train_step_ratio_q75']:.2f}]",
                        f"{r['act_step_ratio']:.2f} [{r['act_step_ratio_q25']:.2f}, {r['act_step_ratio_q75']:.2f}]",
                        f"{r['peak_memory_ratio']:.2f}",
                    ]
                    for r in rows
                ],
            )
        )  # fmt: skip
        result.notes.append(
            f"Headline rule (paired benchmark, no bootstrap): *supported* when, for every model and (WN, BN) arm "
            f"pair, WN's train-step ratio IQR lies below BN's; *contradicted* when above; *equivalent* when every "
            f"median ratio is within {rope:g} of the other; else *inconclusive*. Run throughput is supporting "
            "evidence (runs share a machine with other work)."
        )
    return out
