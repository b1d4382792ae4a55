"""The cost of a norm: the paired per-step overhead benchmark (headline) and the runs' throughput (supporting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import stats
from ..cells import group_cells, records_for, scored_cells, stage_of, throughput_score
from ..hypotheses import evaluate_hypothesis
from ..records import Inputs
from ..registry import Claim, Hypothesis, Registry, arm_of
from ..results import ClaimResult, HypothesisResult, Table
from ..tables import throughput_table

#: One (model, X arm, Y arm) comparison of the overhead benchmark: model, arms, X cheaper (IQRs apart), X dearer,
#: within the equivalence region, and the two benchmark rows.
Decision = tuple[str, str, str, bool, bool, bool, Mapping[str, Any], Mapping[str, Any]]


def analyze_timing(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """A cost claim: the paired per-step benchmark (headline, its stated rule) and, for a hypothesis with
    ``metric: throughput``, the runs' own throughput (supporting, statistical)."""
    out: list[HypothesisResult] = []
    for hyp in claim.hypotheses:
        if hyp.metric == "throughput":
            out.append(_throughput_hypothesis(claim, hyp, registry, inputs, reps, result))
        else:
            out.append(_benchmark_hypothesis(claim, hyp, registry, inputs, result))
    return out


def _throughput_hypothesis(
    claim: Claim, hyp: Hypothesis, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> HypothesisResult:
    """P(X faster than Y) over the finished evaluation runs of the claim's suites, with a throughput table."""
    records = [r for r in records_for(inputs, claim) if r["status"] == "finished" and stage_of(r) == "eval"]
    if not records:
        return HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y)
    if not result.suites:
        result.suites = sorted({r["suite"] for r in records})
    cells = group_cells(records)
    h = evaluate_hypothesis(claim, hyp, scored_cells(cells, throughput_score), registry, reps)
    h.metric = "run throughput"
    result.tables.append(throughput_table(cells))
    return h


def _benchmark_hypothesis(
    claim: Claim, hyp: Hypothesis, registry: Registry, inputs: Inputs, result: ClaimResult
) -> HypothesisResult:
    """The paired overhead benchmark decided by its stated rule (no bootstrap), with its table and rule note."""
    h = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, statistical=False)
    overhead = inputs.bench.get("overhead")
    if not overhead:
        return h
    rope = registry.rope(claim)
    decisions = _decisions(overhead["rows"], hyp, registry.arms(), rope)
    if not decisions:
        h.verdict = stats.INSUFFICIENT
        h.text = "the benchmark has no WN and BN rows for one model"
        return h
    h.verdict = _rule_verdict(decisions)
    h.text = _decisions_text(decisions)
    result.tables.append(_overhead_table(overhead))
    result.notes.append(
        f"Headline rule (paired benchmark, no bootstrap): *supported* when, for every model and (WN, BN) arm "
        f"pair, WN's train-step ratio IQR lies below BN's; *contradicted* when above; *equivalent* when every "
        f"median ratio is within {rope:g} of the other; else *inconclusive*. Run throughput is supporting "
        "evidence (runs share a machine with other work)."
    )
    return h


def _decisions(
    rows: Sequence[Mapping[str, Any]], hyp: Hypothesis, all_arms: Sequence[str], rope: float
) -> list[Decision]:
    """Per model, each (X arm, Y arm) pair the benchmark has rows for (a label's first row for its arm)."""
    decisions: list[Decision] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        by_arm: dict[str, Mapping[str, Any]] = {}
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
    return decisions


def _rule_verdict(decisions: Sequence[Decision]) -> str:
    """Equivalent when every pair is close; supported (contradicted) when X is cheaper (dearer) in every pair."""
    if all(d[5] for d in decisions):
        return stats.EQUIVALENT
    if all(d[3] for d in decisions):
        return stats.SUPPORTED
    if all(d[4] for d in decisions):
        return stats.CONTRADICTED
    return stats.INCONCLUSIVE


def _decisions_text(decisions: Sequence[Decision]) -> str:
    k = sum(d[3] for d in decisions)
    return (
        "train step vs no norm: " + "; ".join(
            f"{m} {a} {wa['train_step_ratio']:.2f}× vs {b} {wb['train_step_ratio']:.2f}×"
            for m, a, b, _, _, _, wa, wb in decisions[:4]
        ) + (" …" if len(decisions) > 4 else "") + f" (WN cheaper, IQRs apart, in {k} of {len(decisions)})"
    )  # fmt: skip


def _overhead_table(overhead: Mapping[str, Any]) -> Table:
    meta = overhead.get("meta", {})
    return Table(
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
            for r in overhead["rows"]
        ],
    )  # fmt: skip
