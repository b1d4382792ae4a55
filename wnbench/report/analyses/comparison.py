"""Norms compared on a claim's metric. Registry v3 (``method.decider``): every hypothesis decided over tasks on the
cells the peer gate admits, with the headline's sensitivity table (:mod:`wnbench.report.decide`). Registry v2:
every hypothesis on the shared stage, at peer level, and tuned per norm (the v2 bootstrap)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cells import (
    PEER_LEVEL,
    CellScores,
    below_peer_cells,
    describe_records,
    group_cells,
    matches_filter,
    metric_score,
    records_for,
    registered_cells,
    scored_cells,
    stage_of,
    tuned_records,
)
from ..decide import DECIDED_BY_ONE_TASK, CellPool, evaluate_claim, v2_run_ids
from ..hypotheses import evaluate_hypothesis, iqm_by_norm
from ..records import Inputs
from ..registry import Claim, Registry
from ..results import AT_PEER, TUNED, ClaimResult, HypothesisResult
from ..tables import diagnostics_table, floor_table, median_table, peer_table


def analyze_comparison(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """Norms compared on the claim's metric, by the registry's rule: v3's task-level decider when the registry
    has a ``method``, else v2's bootstrap."""
    if registry.method is not None:
        return analyze_comparison_v3(claim, registry, inputs, reps, result)
    return analyze_comparison_v2(claim, registry, inputs, reps, result)


def analyze_comparison_v3(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """Every hypothesis decided over tasks (Holm within the claim's families) on the shared-stage runs of the cells
    at peer or with no reference, the per-cell description, the peer table and the headline's sensitivity
    table."""
    # the claim's own cells only (v3 splits C2 by model: each split counts its own runs)
    records = [r for r in records_for(inputs, claim) if matches_filter(r["config"], claim.cells)]
    describe_records(result, claim, records, inputs)
    shared = [r for r in records if stage_of(r) == "eval"]
    if not shared:
        return []
    cells = group_cells(shared)
    test_cells = registered_cells(claim, scored_cells(cells), cells)
    result.cell_records = {c: cells[c] for c in test_cells}
    result.cell_scores = {c: s.normalized for c, s in test_cells.items()}
    result.anchors = {c: s.anchor.source for c, s in test_cells.items()}
    level = registry.peer_gate.level if registry.peer_gate is not None else PEER_LEVEL
    without_v2 = registry.method is not None and registry.method.sensitivity.without_v2_cells
    pool = CellPool(shared, v2_run_ids() if without_v2 else frozenset(), level)
    out, tables, notes = evaluate_claim(
        claim, registry, pool, reps, lambda metric: metric_score(metric) if metric else None
    )
    result.notes += notes
    result.tables += tables
    for table in tables:  # (the headline on at-peer cells only is a line of this table)
        if DECIDED_BY_ONE_TASK in table.title:
            result.notes.insert(0, f"The headline's verdict is {DECIDED_BY_ONE_TASK}: leaving one task out changes "
                                   "it (see its sensitivity table).")  # fmt: skip
    result.iqm = iqm_by_norm(test_cells, reps)
    if any(s.grade == "no reference" for h in out for s in h.cells):
        result.notes.append("Cells marked (no reference): their baseline has no published figure; they count in "
                            "the headline (registry peer_gate.headline_cells).")  # fmt: skip
    _add_cell_tables(result, {c: cells[c] for c in test_cells})
    return out


def analyze_comparison_v2(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """Norms compared on the claim's metric: every hypothesis on the shared stage, the headline again on the cells
    whose baseline is at peer level (when some are not), and every hypothesis tuned per norm (when the inputs hold
    a tuning stage)."""
    records = records_for(inputs, claim)
    describe_records(result, claim, records, inputs)
    if not records:
        return []
    cells = group_cells([r for r in records if stage_of(r) == "eval"])
    scored = scored_cells(cells)
    result.cell_records = cells
    result.cell_scores = {c: s.normalized for c, s in scored.items()}
    result.anchors = {c: s.anchor.source for c, s in scored.items()}
    test_cells = registered_cells(claim, scored, cells)
    if claim.cells and len(test_cells) < len(scored):
        result.notes.append(
            "Hypotheses are tested on the cells with "
            + ", ".join(f"{k} in {{{', '.join(v)}}}" for k, v in claim.cells.items())
            + f" ({len(test_cells)} of {len(scored)}); the others are shown for reference."
        )
    out = []
    for h in claim.hypotheses:
        if h.metric:  # another recorded metric of the same runs (C1: normalized AUC beside final return)
            alt = registered_cells(claim, scored_cells(cells, metric_score(h.metric)), cells)
            out.append(evaluate_hypothesis(claim, h, alt, registry, reps))
        else:
            out.append(evaluate_hypothesis(claim, h, test_cells, registry, reps))
    result.iqm = iqm_by_norm(test_cells, reps)
    out += _at_peer(claim, registry, reps, result, cells, test_cells, out)
    _add_cell_tables(result, cells)
    return out + _tuned(claim, registry, reps, result, records)


def _at_peer(
    claim: Claim,
    registry: Registry,
    reps: int,
    result: ClaimResult,
    cells: Mapping[str, Any],
    test_cells: Mapping[str, CellScores],
    shared: Sequence[HypothesisResult],
) -> list[HypothesisResult]:
    """The headline again without the cells it used whose baseline is below peer level (its own family), when
    some but not all of them are."""
    first = next((i for i, h in enumerate(claim.hypotheses) if not h.metric), None)  # the headline, as shared
    used = [c.cell for c in shared[first].cells] if first is not None else []  # the cells it was estimated on
    below = [c for c in below_peer_cells(cells) if c in used]
    if not below or len(below) >= len(used):
        return []
    at_peer = {c: s for c, s in test_cells.items() if c not in below}
    result.notes.append(
        f"Baselines below peer level in {len(below)} of {len(used)} cells ({', '.join(below)}; see the "
        f"peer table): the headline is tested again without them, as its own family ({AT_PEER})."
    )
    return [evaluate_hypothesis(claim, claim.hypotheses[first], at_peer, registry, reps, stage=AT_PEER)]


def _add_cell_tables(result: ClaimResult, cells: Mapping[str, Any]) -> None:
    """The peer table, the generative floors, the medians of every run, and the mechanism diagnostics where runs
    logged them."""
    for table in (peer_table(cells), floor_table(cells)):
        if table is not None:
            result.tables.append(table)
    result.tables.append(median_table(cells, "Median of the headline metric per cell (raw units), every run"))
    diagnostics = diagnostics_table(cells)
    if diagnostics is not None:
        result.tables.append(diagnostics)


def _tuned(
    claim: Claim, registry: Registry, reps: int, result: ClaimResult, records: Sequence[dict[str, Any]]
) -> list[HypothesisResult]:
    """Every hypothesis on the evaluation runs at each (cell, norm)'s tuned choice; none without a tuning stage."""
    tuned, keys, lines = tuned_records(records)
    if not tuned:
        return []
    tuned_cells = registered_cells(
        claim,
        scored_cells(group_cells(tuned, exclude_params=keys)),
        group_cells(tuned, exclude_params=keys),
    )
    result.notes.append(
        f"Tuned per norm: {', '.join(keys)} chosen per (cell, norm) on tuning seeds disjoint from the "
        "evaluation seeds, then evaluated on the evaluation seeds — " + "; ".join(lines) + "."
    )
    return [evaluate_hypothesis(claim, h, tuned_cells, registry, reps, stage=TUNED) for h in claim.hypotheses]
