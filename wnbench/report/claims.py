"""From stored records to one result per registered claim: generic analysis over the claims registry (the driver;
the work is in results, cells, hypotheses, tables and one analyses module per kind of claim).

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
- Aggregate: the mean over tasks of the mean over each task's cells of P(X > Y). Registry v3 decides it over
  tasks: the exact sign-flip test (every sign pattern of the task effects equally likely under the null) with its
  subset-means interval, Holm-Bonferroni within each family; fewer than ``min_tasks`` tasks, or too few for the
  exact test to reach the Holm level, is *insufficient* and decides nothing. The v2 rules (``--registry v2``)
  instead take an interval from a multi-stage bootstrap (tasks drawn with replacement, then the cells of each
  drawn task, then each arm's runs inside each drawn cell) at the Holm level; it is printed beside each v3
  headline as description. The pre-registration lists families and equivalence regions.
- Normalized scores (IQM, performance profiles, C5) use fixed anchors: RL (return - random policy) /
  (rl-zoo reference - random policy); VAE ELBO between the independent-pixel model and 0 nats; modes covered
  between 0 and the number of modes. Other metrics are min-max normalized over the cell, marked *min-max*.
"""

from __future__ import annotations

from .analyses import ANALYSES
from .analyses.lr_robustness import good_lr_width, own_best_threshold
from .cells import DIAGNOSTICS, stage_of, tuned_records
from .hypotheses import apply_holm
from .records import Inputs
from .registry import Claim, Registry, load_registry
from .results import AT_PEER, NO_DATA, SHARED, TUNED, ClaimResult, Figure, HypothesisResult, Table
from .tables import (
    anchor_table,
    hypotheses_table,
    iqm_table,
    per_cell_table,
    reference_table,
    seed_spread_table,
)

#: Re-exported: the names other modules and tests import from here.
__all__ = [
    "DIAGNOSTICS",
    "ClaimResult",
    "Figure",
    "HypothesisResult",
    "Table",
    "analyze",
    "good_lr_width",
    "own_best_threshold",
    "reference_table",
    "stage_of",
    "tuned_records",
]

#: The extra tables a registry entry can ask for (``tables:``), each drawn from the claim's result.
EXTRA_TABLES = {"seed_spread": seed_spread_table}
#: Analyses whose results carry normalization anchors worth a table.
ANCHORED = ("comparison", "lr_robustness", "noise")


def analyze(inputs: Inputs, reps: int | None = None, registry: Registry | None = None) -> list[ClaimResult]:
    """One result per registered claim, whether or not data for it was given (``reps`` bootstrap resamples;
    the registry's default when ``None``)."""
    registry = registry or load_registry()
    reps = reps or registry.defaults.reps
    results: list[ClaimResult] = []
    for claim in registry.claims:
        result = ClaimResult(claim.id, claim.statement, claim.metric, registered=claim,
                             registry=registry.identity)  # fmt: skip
        result.hypotheses = ANALYSES[claim.analysis](claim, registry, inputs, reps, result)
        if claim.note:
            result.notes.insert(0, claim.note)
        results.append(result)
    everything = [h for result in results for h in result.hypotheses]
    apply_holm(everything, registry, {c.id: registry.rope(c) for c in registry.claims})
    for claim, result in zip(registry.claims, results, strict=True):
        _pick_headlines(result)
        _add_tables(claim, result, registry)
    return results


def _pick_headlines(result: ClaimResult) -> None:
    """The first hypothesis of each stage (shared, tuned per norm, cells at peer level) is its headline."""
    for stage, head, verdict in ((SHARED, "headline", "verdict"), (TUNED, "tuned_headline", "tuned_verdict"),
                                 (AT_PEER, "peer_headline", "peer_verdict")):  # fmt: skip
        first = next((h for h in result.hypotheses if h.stage == stage), None)
        if first is not None:
            setattr(result, head, first)
            setattr(result, verdict, first.verdict)


def _add_tables(claim: Claim, result: ClaimResult, registry: Registry) -> None:
    """The hypotheses table first, per-cell tables of the headlines and supporting hypotheses, notes on cells left
    out, then IQM, anchors and the extra tables the registry entry names."""
    statistical = [h for h in result.hypotheses if h.statistical and h.cells]
    if statistical or any(not h.statistical for h in result.hypotheses if h.verdict != NO_DATA):
        result.tables.insert(
            0, hypotheses_table(result.hypotheses, f"{claim.id} hypotheses (pre-registered)")
        )
    headlines = (result.headline, result.tuned_headline, result.peer_headline)
    for h in result.hypotheses:
        if h.statistical and h.cells and (any(h is x for x in headlines) or h.family == "supporting"):
            result.tables.append(per_cell_table(h))
        if h.left_out:
            result.notes.append(f"{h.name}: cells without {registry.min_runs(claim)} scored runs per side, left "
                                f"out: {'; '.join(h.left_out)}.")  # fmt: skip
    if result.iqm:
        result.tables.append(iqm_table(result.iqm, result.anchors))
    if result.anchors and claim.analysis in ANCHORED:
        result.tables.append(anchor_table(result.anchors))
    for kind in claim.tables:
        if result.cell_scores:
            result.tables.append(EXTRA_TABLES[kind](result))
