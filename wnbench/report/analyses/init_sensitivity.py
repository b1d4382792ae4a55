"""Sensitivity to a careless initialization (registry analysis ``init_sensitivity``, v3 C6).

Arms carry the norm option ``init_gain`` (the hidden layers' initial weights multiplied by the gain after the
algorithm's own initialization): ``weight[init_gain=10]`` is the careless twin of ``weight``. Per cell and norm N,
the sensitivity is P(N > N[init_gain=g]) averaged over the gains present (0.5 = no harm, 1 = every careless run
loses). A hypothesis' effect per cell is sensitivity(X) - sensitivity(Y) (> 0: X is hurt more), per task the mean
over its cells, decided over tasks by :func:`wnbench.report.inference.decide_family` on the difference scale (null
0, region of practical equivalence ± the equivalence margin, which is in P units like the sensitivities), Holm
within each family. ``test: equivalence`` hypotheses are supported when the interval lies inside the margin and
contradicted when it clears it on either side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import stats
from ..cells import describe_records, group_cells, matches_filter, records_for, score_cell, stage_of
from ..inference import DIFFERENCE, Rule, TaskEffects, TaskHypothesis, TaskVerdict, decide_family
from ..records import Inputs
from ..registry import Claim, Registry, canonical, is_careless_init, parse_label
from ..results import NO_DATA, ClaimResult, HypothesisResult, Table

GAIN = "init_gain"
NOT_MEASURED = (
    "No input measures it yet: no record carries a careless-init arm (norm option `init_gain`, e.g. "
    "`weight[init_gain=10]`)."
)


def careless_twins(arm: str, labels: Sequence[str]) -> list[str]:
    """The labels that are ``arm`` with one ``init_gain`` option added (its careless-init twins)."""
    base, options = parse_label(arm)
    out = []
    for label in labels:
        b, o = parse_label(label)
        extra = o - options
        if b == base and options <= o and len(extra) == 1 and next(iter(extra)).startswith(f"{GAIN}="):
            out.append(label)
    return out


def cell_sensitivity(oriented: Mapping[str, np.ndarray], arm: str) -> float:
    """P(arm > arm[init_gain=g]) averaged over the gains present in the cell; NaN without the arm or a twin."""
    if not len(oriented.get(arm, ())):
        return math.nan
    twins = careless_twins(arm, [label for label, v in oriented.items() if len(v)])
    if not twins:
        return math.nan
    return float(np.mean([stats.win_matrix(oriented[arm], oriented[t]).mean() for t in twins]))


def _side(side: Any) -> tuple[tuple[str, ...], bool]:
    """(arms, first_of): a plain list pools its members present; ``{first_of: [...]}`` takes the first present."""
    members = side.get("first_of") if isinstance(side, Mapping) else getattr(side, "first_of", None)
    if members is not None:
        return tuple(canonical(a) for a in members), True
    return tuple(canonical(a) for a in side), False


def side_sensitivity(oriented: Mapping[str, np.ndarray], side: Any) -> float:
    """A side's sensitivity in one cell: the mean over its arms that have one (``first_of``: the first such arm)."""
    arms, first_of = _side(side)
    values = [v for v in (cell_sensitivity(oriented, a) for a in arms) if math.isfinite(v)]
    if not values:
        return math.nan
    return values[0] if first_of else float(np.mean(values))


def _left_out(side: Any, configs: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the side's ``not_in`` (registry arm sets) leaves this cell out: some run's config matches it."""
    not_in = getattr(side, "not_in", None)
    return bool(not_in) and any(matches_filter(c, not_in) for c in configs)


def sensitivity_effects(
    cells: Mapping[str, Mapping[str, np.ndarray]],
    tasks: Mapping[str, str],
    x: Any,
    y: Any,
    configs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> TaskEffects:
    """Per task: the mean over its cells of sensitivity(X) - sensitivity(Y) (cells lacking either side skipped, and
    cells a side's ``not_in`` leaves out, as the comparison claims skip them: ``configs`` holds each cell's run
    configs)."""
    by_task: dict[str, list[float]] = {}
    for cell, oriented in cells.items():
        if configs is not None and (_left_out(x, configs[cell]) or _left_out(y, configs[cell])):
            continue
        effect = side_sensitivity(oriented, x) - side_sensitivity(oriented, y)
        if math.isfinite(effect):
            by_task.setdefault(tasks[cell], []).append(effect)
    names = tuple(by_task)
    return TaskEffects(names, np.array([np.mean(by_task[t]) for t in names], dtype=float),
                       None, tuple(len(by_task[t]) for t in names), DIFFERENCE)  # fmt: skip


def equivalence_verdict(verdict: str) -> str:
    """An equivalence hypothesis' verdict from the superiority vocabulary: equivalent -> supported, a difference
    beyond the margin either way -> contradicted."""
    if verdict == stats.EQUIVALENT:
        return stats.SUPPORTED
    if verdict in (stats.SUPPORTED, stats.CONTRADICTED):
        return stats.CONTRADICTED
    return verdict


def _margin(registry: Registry, claim: Claim) -> float:
    margins = getattr(getattr(registry, "method", None), "margins", None)
    margin = getattr(margins, "equivalence", None)
    return float(margin if margin is not None else registry.rope(claim))


def _min_tasks(registry: Registry) -> int:
    return int(getattr(getattr(registry, "method", None), "min_tasks", None) or 5)


def analyze_init_sensitivity(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """C6: per hypothesis, sensitivity(X) - sensitivity(Y) decided over tasks (Holm within each family)."""
    out = [HypothesisResult(claim.id, h.name, h.family, tuple(_side(h.x)[0]), tuple(_side(h.y)[0]),
                            statistical=False) for h in claim.hypotheses]  # fmt: skip
    records = [r for r in records_for(inputs, claim) if stage_of(r) == "eval"]
    cells, tasks, configs, measured = {}, {}, {}, []
    for cell, by_label in group_cells(records).items():
        scored = score_cell(by_label)
        if scored is not None and any(is_careless_init(label) for label in scored.oriented):
            cells[cell], tasks[cell] = scored.oriented, scored.task
            runs = [r for rs in by_label.values() for r in rs]
            configs[cell] = [r["config"] for r in runs]
            measured += runs
    # only cells with careless-init arms measure the claim (records tagged with its id by an older suite do not)
    describe_records(result, claim, measured, inputs)
    if not cells:
        result.notes.append(NOT_MEASURED)
        return out
    margin = _margin(registry, claim)
    rule = Rule.superiority(DIFFERENCE, margin)
    effects = [sensitivity_effects(cells, tasks, h.x, h.y, configs) for h in claim.hypotheses]
    for family in dict.fromkeys(h.family for h in claim.hypotheses):
        members = [i for i, h in enumerate(claim.hypotheses) if h.family == family]
        verdicts = decide_family([TaskHypothesis(claim.hypotheses[i].name, effects[i], rule) for i in members],
                                 registry.alpha, _min_tasks(registry))  # fmt: skip
        for i, v in zip(members, verdicts, strict=True):
            _fill(out[i], v, getattr(claim.hypotheses[i], "test", None) == "equivalence", margin)
            out[i].tasks = effects[i].tasks  # what the estimate is the mean over (the README counts them)
    result.tables.append(_sensitivity_table(cells, claim))
    return out


def _fill(h: HypothesisResult, v: TaskVerdict, equivalence: bool, margin: float) -> None:
    h.metric = "init sensitivity difference (P units)"
    if v.n_tasks == 0:
        h.verdict = NO_DATA
        return
    h.point, h.p_value, h.holm, h.rejected = v.estimate.point, v.p_value, v.holm, v.rejected
    h.nominal, h.estimate, h.enough = v.nominal, v.estimate, v.verdict != stats.INSUFFICIENT
    h.verdict = equivalence_verdict(v.verdict) if equivalence else v.verdict
    test = f"equivalence within ±{margin:g}" if equivalence else f"ROPE ±{margin:g}"
    h.text = (f"sensitivity(X) − sensitivity(Y) over {v.n_tasks} task{'s' * (v.n_tasks != 1)} = {v.estimate} "
              f"(sign-flip, {test})")  # fmt: skip


def _sensitivity_table(cells: Mapping[str, Mapping[str, np.ndarray]], claim: Claim) -> Table:
    arms = list(dict.fromkeys(a for h in claim.hypotheses for side in (h.x, h.y) for a in _side(side)[0]))
    rows = []
    for cell, oriented in cells.items():
        for arm in arms:
            value = cell_sensitivity(oriented, arm)
            if math.isfinite(value):
                twins = careless_twins(arm, list(oriented))
                rows.append([cell, arm, f"{value:.2f}", ", ".join(twins)])
    return Table("Init sensitivity per cell: P(norm > its careless-init twin), averaged over the gains (0.5 = no "
                 "harm)", ["cell", "norm", "sensitivity", "careless-init arms"], rows)  # fmt: skip
