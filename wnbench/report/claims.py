"""From stored records to one result per registered claim: generic analysis over the claims registry.

Scoring (written into every report):

- A run's score is its kind's headline metric (``Scoring.primary``: RL ``final_return``; VAE test ELBO; image GAN
  classifier-feature FID; mixture GAN modes covered; toy test MSE), oriented so that higher is better. A
  diverged run (or one whose metric is not finite) scores as the worst value of its cell. Failed and timed-out
  runs carry no result: they are counted and listed, not scored. Every scored run counts: cells and arms keep
  all their runs, whatever their number.
- A *cell* is everything about a run except its norm and seed (kind, task, algo and the parameters that vary
  between the claim's records). An *arm* is a norm label from the registry; a hypothesis compares arm set X
  with arm set Y.
- Per cell: P(X > Y) (mean over arm pairs of the chance a run of one beats a run of the other, ties half) with a
  95% interval over runs; the difference of medians, X minus Y, in the metric's raw units, with its interval.
  Direction count: the cells whose point estimate favours X, favours Y, or ties.
- Aggregate: the mean over tasks of the mean over each task's cells of P(X > Y), with an interval from a
  multi-stage bootstrap (tasks drawn with replacement, then the cells of each drawn task, then each arm's runs
  inside each drawn cell), at the level Holm-Bonferroni gives the hypothesis
  in its family (the pre-registration lists families and equivalence regions).
- Normalized scores (IQM, performance profiles, C5) use fixed anchors: RL (return - random policy) /
  (rl-zoo reference - random policy); VAE ELBO between the independent-pixel model and 0 nats; modes covered
  between 0 and the number of modes. Other metrics are min-max normalized over the cell, marked *min-max*.
"""

from __future__ import annotations

from .analyses import ANALYSES
from .analyses.lr_robustness import LR_KEYS, good_lr_width, own_best_threshold
from .cells import (
    BUDGET_KEY,
    DIAGNOSTICS,
    PEER_LEVEL,
    SAMPLING_NOISE,
    CellScores,
    PeerCheck,
    arm_label_of,
    below_peer_cells,
    cell_of,
    cell_value,
    diagnostic_value,
    group_cells,
    headline_score,
    is_scored,
    metric_of,
    metric_score,
    peer_checks,
    raw_score,
    records_for,
    score_cell,
    scored_cells,
    scoring_of,
    stage_of,
    task_of,
    throughput,
    throughput_score,
    tuned_records,
    unmeasured_diagnostic,
)
from .hypotheses import apply_holm, arm_runs, evaluate_hypothesis, iqm_by_norm
from .records import Inputs
from .registry import Registry, load_registry
from .results import (
    AT_PEER,
    NO_DATA,
    SHARED,
    STAGE_SUFFIX,
    TUNED,
    CellEstimate,
    ClaimResult,
    Figure,
    HypothesisResult,
    Table,
)
from .tables import (
    _anchor_table,
    _iqm_table,
    hypotheses_table,
    norm_order,
    peer_table,
    per_cell_table,
    reference_table,
    seed_spread_table,
)

#: Re-exported: the names other modules and tests import from here.
__all__ = [
    "ANALYSES",
    "AT_PEER",
    "BUDGET_KEY",
    "CellEstimate",
    "CellScores",
    "ClaimResult",
    "DIAGNOSTICS",
    "Figure",
    "HypothesisResult",
    "LR_KEYS",
    "NO_DATA",
    "PEER_LEVEL",
    "PeerCheck",
    "SAMPLING_NOISE",
    "SHARED",
    "STAGE_SUFFIX",
    "TUNED",
    "Table",
    "analyze",
    "apply_holm",
    "arm_label_of",
    "arm_runs",
    "below_peer_cells",
    "cell_of",
    "cell_value",
    "diagnostic_value",
    "evaluate_hypothesis",
    "good_lr_width",
    "group_cells",
    "headline_score",
    "hypotheses_table",
    "iqm_by_norm",
    "is_scored",
    "metric_of",
    "metric_score",
    "norm_order",
    "own_best_threshold",
    "peer_checks",
    "peer_table",
    "per_cell_table",
    "raw_score",
    "records_for",
    "reference_table",
    "score_cell",
    "scored_cells",
    "scoring_of",
    "seed_spread_table",
    "stage_of",
    "task_of",
    "throughput",
    "throughput_score",
    "tuned_records",
    "unmeasured_diagnostic",
]


def analyze(inputs: Inputs, reps: int | None = None, registry: Registry | None = None) -> list[ClaimResult]:
    """One result per registered claim, whether or not data for it was given (``reps`` bootstrap resamples;
    the registry's default when ``None``)."""
    registry = registry or load_registry()
    reps = reps or registry.defaults.reps
    results: list[ClaimResult] = []
    everything: list[HypothesisResult] = []
    for claim in registry.claims:
        result = ClaimResult(claim.id, claim.statement, claim.metric)
        hyps = ANALYSES[claim.analysis](claim, registry, inputs, reps, result)
        if claim.note:
            result.notes.insert(0, claim.note)
        result.hypotheses = hyps
        everything += hyps
        results.append(result)
    apply_holm(everything, registry, {c.id: registry.rope(c) for c in registry.claims})
    for claim, result in zip(registry.claims, results, strict=True):
        shared = [h for h in result.hypotheses if h.stage == SHARED]
        tuned = [h for h in result.hypotheses if h.stage == TUNED]
        peer = [h for h in result.hypotheses if h.stage == AT_PEER]
        if shared:
            result.headline = shared[0]
            result.verdict = shared[0].verdict
        if tuned:
            result.tuned_headline = tuned[0]
            result.tuned_verdict = tuned[0].verdict
        if peer:
            result.peer_headline = peer[0]
            result.peer_verdict = peer[0].verdict
        statistical = [h for h in result.hypotheses if h.statistical and h.cells]
        if statistical or any(not h.statistical for h in result.hypotheses if h.verdict != NO_DATA):
            result.tables.insert(
                0, hypotheses_table(result.hypotheses, f"{claim.id} hypotheses (pre-registered)")
            )
        for h in result.hypotheses:
            if (
                h.statistical
                and h.cells
                and (
                    h is result.headline
                    or h is result.tuned_headline
                    or h is result.peer_headline
                    or h.family == "supporting"
                )
            ):
                result.tables.append(per_cell_table(h))
            if h.left_out:
                result.notes.append(f"{h.name}: cells without {registry.min_runs(claim)} scored runs per side, left "
                                    f"out: {'; '.join(h.left_out)}.")  # fmt: skip
        if result.iqm:
            result.tables.append(_iqm_table(result.iqm, result.anchors))
        if result.anchors and claim.analysis in ("comparison", "lr_robustness", "noise"):
            result.tables.append(_anchor_table(result.anchors))
        if claim.id == "C6" and result.cell_scores:
            result.tables.append(seed_spread_table(result))
    return results
