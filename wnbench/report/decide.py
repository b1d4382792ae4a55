"""Comparison hypotheses decided over tasks (registry v3, ``method.decider``): arms as their advocates define them,
the peer gate, the task-level decider (:func:`wnbench.report.inference.decide_family`) and the sensitivity table
printed under every headline.

Per hypothesis: its cells (the claim's and the hypothesis' own ``cells`` filters; design arms ``ALGO:NORM`` make a
cell of each (task, budget) across algorithms), each arm's runs per cell (a list pools every member present,
``{first_of: [...]}`` takes the first member present), P(X > Y) per cell with seed intervals and raw-unit median
differences (description), per task the mean over its cells, decided over tasks with Holm within each of the
claim's families. Cells whose baseline is below its published figure never enter a headline; cells with no
published figure do, marked *no reference*. *Insufficient*: fewer than ``min_tasks`` tasks, or too few for the
exact test to reach the hypothesis' Holm level even if every task agreed (2 / 2^k above it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import stats
from .cells import (
    BELOW_PEER_GRADE,
    NO_REFERENCE,
    PEER_LEVEL,
    CellScores,
    ScoreFn,
    design_cells,
    design_grade,
    group_cells,
    matches_filter,
    peer_grade,
    score_cell,
)
from .hypotheses import _cell_estimate, arm_runs
from .inference import EXACT_FLIP_TASKS, PROBABILITY, Rule, TaskEffects, TaskHypothesis, TaskVerdict
from .inference import decide_family as _decide_family
from .inference import task_effects as _task_effects
from .registry import REGISTRY_V2_FILE, ArmSet, Claim, Hypothesis, Registry, load_registry
from .results import NO_DATA, CellEstimate, HypothesisResult, Table, interval_text

#: Where the v2 records are published (their run ids mark the v2 cells that v3 suites repeat).
PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "published"
DECIDED_BY_ONE_TASK = "decided by one task"
#: The sensitivity table's line with the headline on cells at peer level only.
AT_PEER_ONLY = "cells at peer only"
#: The sensitivity line with the headline's arm sets without their ``not_in`` (the 2026-12-06 amendment).
AS_FIRST_REGISTERED = "arms in every cell (as pre-registered, before not_in)"
#: The grade of a cell no peer check applies to (a learning-rate sweep's cell: its own gate is ``both_good``).
UNGRADED = "not graded"


# -- cells -------------------------------------------------------------------------------------------------------------
@dataclass
class GradedCell:
    """One comparison cell: its scored runs per arm label, its task, its peer grade and whether it holds v2 runs."""

    name: str
    scored: CellScores
    grade: str
    v2: bool
    configs: tuple[
        Mapping[str, Any], ...
    ] = ()  # its runs' configs (an arm set's ``not_in`` is matched on them)


@dataclass
class CellPool:
    """A claim's cells in both layouts (per algorithm, and per design: (task, budget) across algorithms)."""

    records: Sequence[dict[str, Any]]
    v2_ids: frozenset[str]
    level: float = PEER_LEVEL
    _cache: dict[tuple[bool, str | None, str], dict[str, GradedCell]] = field(default_factory=dict)

    def cells(
        self, designs: bool, score: ScoreFn | None, metric: str | None, filters: Mapping[str, Sequence[str]]
    ) -> dict[str, GradedCell]:
        """The graded cells whose every record passes ``filters`` (scored on ``score``, the headline if None)."""
        key = (designs, metric, repr(sorted((k, tuple(v)) for k, v in filters.items())))
        if key not in self._cache:
            records = [r for r in self.records if matches_filter(r["config"], filters)]
            grouped = design_cells(records) if designs else group_cells(records)
            out = {}
            for name, by_arm in grouped.items():
                scored = score_cell(by_arm, score)
                if scored is None:
                    continue
                grade = design_grade(by_arm, self.level) if designs else peer_grade(by_arm, self.level)
                v2 = any(r["run_id"] in self.v2_ids for recs in by_arm.values() for r in recs)
                configs = tuple(r["config"] for recs in by_arm.values() for r in recs)
                out[name] = GradedCell(name, scored, grade, v2, configs)
            self._cache[key] = out
        return self._cache[key]


class Pool(Protocol):
    """Where a claim's graded cells come from: :class:`CellPool` (scored from records) or :class:`ScoredPool`."""

    def cells(
        self, designs: bool, score: ScoreFn | None, metric: str | None, filters: Mapping[str, Sequence[str]]
    ) -> dict[str, GradedCell]: ...


@dataclass
class ScoredPool:
    """Cells an analysis scored itself (C5: good-LR widths per seed), with each cell's records for the filters.
    Only one score per cell: ``score``/``metric`` are not used (the analysis refuses hypotheses that set one),
    and there are no design cells."""

    scored: Mapping[str, GradedCell]
    records: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]]

    def cells(
        self, designs: bool, score: ScoreFn | None, metric: str | None, filters: Mapping[str, Sequence[str]]
    ) -> dict[str, GradedCell]:
        """The cells whose every record passes ``filters``."""
        if designs:
            return {}
        return {name: cell for name, cell in self.scored.items()
                if all(matches_filter(r["config"], filters) for rs in self.records[name].values() for r in rs)}  # fmt: skip


def side_runs(
    oriented: Mapping[str, np.ndarray], side: ArmSet, all_arms: Sequence[str], min_runs: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """``({arm: runs}, [arms left out for too few runs])`` of one side in one cell: every member present (pooled),
    or only the first member present (``first_of``: the form its advocates run in this cell)."""
    present = arm_runs(oriented, side, all_arms)
    if side.first:
        first = next((a for a in side if a in present), None)
        present = {first: present[first]} if first is not None else {}
    few = [f"{a} ({len(v)} runs)" for a, v in present.items() if len(v) < min_runs]
    return {a: v for a, v in present.items() if len(v) >= min_runs}, few


@dataclass
class Evidence:
    """One hypothesis' usable cells on one set of cells: the runs of each side, their tasks and grades."""

    names: list[str] = field(default_factory=list)
    cells: list[dict[str, np.ndarray]] = field(default_factory=list)  # {"x:arm": runs, "y:arm": runs}
    tasks: list[str] = field(default_factory=list)
    grades: list[str] = field(default_factory=list)
    v2: list[bool] = field(default_factory=list)
    scored: list[CellScores] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    not_in: list[str] = field(default_factory=list)  # cells a side's ``not_in`` excludes

    def keys(self, side: str) -> list[str]:
        return sorted({k for c in self.cells for k in c if k.startswith(side)})

    def effects(self, keep: Sequence[bool] | None = None) -> TaskEffects:
        """Per task: the mean over its (kept) cells of P(X > Y)."""
        idx = [i for i in range(len(self.cells)) if keep is None or keep[i]]
        return _task_effects([self.cells[i] for i in idx], [self.tasks[i] for i in idx], self.keys("x:"),
                             self.keys("y:"), PROBABILITY)  # fmt: skip


def gather(
    cells: Mapping[str, GradedCell], x: ArmSet, y: ArmSet, all_arms: Sequence[str], min_runs: int,
    grades: Sequence[str],
) -> Evidence:  # fmt: skip
    """The cells of ``cells`` graded one of ``grades`` where both sides apply (their ``not_in``) and have
    ``min_runs`` runs per arm."""
    out = Evidence()
    for name, cell in cells.items():
        if cell.grade not in grades:
            continue
        if excluded(x, cell) or excluded(y, cell):
            out.not_in.append(name)
            continue
        xs, few_x = side_runs(cell.scored.oriented, x, all_arms, min_runs)
        ys, few_y = side_runs(cell.scored.oriented, y, all_arms, min_runs)
        if not xs or not ys:
            if (xs or few_x) and (ys or few_y):
                out.left_out.append(f"{name} ({', '.join(few_x + few_y)})")
            continue
        out.names.append(name)
        out.cells.append({**{f"x:{a}": v for a, v in xs.items()}, **{f"y:{a}": v for a, v in ys.items()}})
        out.tasks.append(cell.scored.task or name)
        out.grades.append(cell.grade)
        out.v2.append(cell.v2)
        out.scored.append(cell.scored)
    return out


def excluded(side: ArmSet, cell: GradedCell) -> bool:
    """Whether ``side`` is left out of ``cell`` by its ``not_in``: some run of the cell matches every field."""
    return bool(side.not_in) and any(matches_filter(c, side.not_in) for c in cell.configs)


# -- deciding ----------------------------------------------------------------------------------------------------------
def rule_of(registry: Registry, claim: Claim, hyp: Hypothesis) -> Rule:
    """Non-inferiority with ``method.margins.non_inferiority``, else superiority with the equivalence region."""
    margins = registry.method.margins if registry.method is not None else None
    if hyp.test == "non_inferiority" and margins is not None:
        return Rule.non_inferiority(PROBABILITY, margins.non_inferiority)
    return Rule.superiority(PROBABILITY, margins.equivalence if margins is not None else registry.rope(claim))


def tasks_needed(level: float) -> int:
    """The fewest tasks whose exact sign-flip test can reach ``level`` (smallest p-value 2 / 2^k)."""
    return max(1, math.ceil(math.log2(2.0 / level) - 1e-12))


def below_floor(v: TaskVerdict) -> bool:
    """Entered Holm but cannot reach its level even if every task agreed (exact test, up to 16 tasks)."""
    return v.holm is not None and v.n_tasks <= EXACT_FLIP_TASKS and 2.0 / 2**v.n_tasks > v.holm.level + 1e-12


def decide(
    named: Sequence[tuple[str, TaskEffects, Rule, bool]], alpha: float, min_tasks: int, method: str
) -> list[tuple[TaskVerdict, int | None]]:
    """One Holm family: ``(name, effects, rule, equivalence test)`` -> (verdict, tasks it would need when the exact
    test cannot reach its Holm level)."""
    verdicts = _decide_family([TaskHypothesis(n, e, r) for n, e, r, _ in named], alpha, min_tasks, method)
    out = []
    for (_, _, _, equivalence), v in zip(named, verdicts, strict=True):
        needs = None
        if below_floor(v):
            needs = tasks_needed(v.holm.level)  # type: ignore[union-attr]
            v = replace(v, verdict=stats.INSUFFICIENT, rejected=False)
        elif v.n_tasks < min_tasks:
            needs = min_tasks
        if equivalence:
            v = replace(v, verdict=_as_equivalence(v.verdict))
        out.append((v, needs))
    return out


def _as_equivalence(verdict: str) -> str:
    if verdict == stats.EQUIVALENT:
        return stats.SUPPORTED
    return stats.CONTRADICTED if verdict in (stats.SUPPORTED, stats.CONTRADICTED) else verdict


# -- v2 run ids ----------------------------------------------------------------------------------------------------
@functools.cache
def v2_run_ids(folder: Path = PUBLISHED) -> frozenset[str]:
    """The run ids of the v2 published archives: those of ``folder`` whose suite a claim of registry v2 names.
    Computed from the archives, never listed by hand; empty without them."""
    from wnbench.suite.published import find_archives, read_archive

    suites = {s for c in load_registry(REGISTRY_V2_FILE).claims for s in c.suites}
    ids: set[str] = set()
    for path in find_archives(folder):
        if path.name.split(".")[0] in suites and path.exists():
            ids.update(r["run_id"] for r in read_archive(path).records)
    return frozenset(ids)


# -- one claim ---------------------------------------------------------------------------------------------------------
@dataclass
class Planned:
    """A hypothesis with its evidence (headline cells) and the pool it came from, before its family is decided."""

    hyp: Hypothesis
    result: HypothesisResult
    evidence: Evidence
    cells: Mapping[str, GradedCell]
    pool: Pool
    score: ScoreFn | None
    filters: Mapping[str, Sequence[str]]
    grades: tuple[str, ...]


def all_arms_of(registry: Registry, claim: Claim) -> list[str]:
    """Every registry arm plus the claim's design arms: a label counts for its most specific arm."""
    designs = [a for side in registry.designs.values() for a in side]
    return list(dict.fromkeys([*registry.arms(), *designs]))


def evaluate_claim(
    claim: Claim, registry: Registry, pool: Pool, reps: int, score_of: Any
) -> tuple[list[HypothesisResult], list[Table], list[str]]:
    """Every hypothesis of a claim decided over tasks (Holm within each of the claim's families), the headline's
    sensitivity table, and notes. ``score_of(metric)`` gives the score function of a metric. Cells graded
    :data:`UNGRADED` (no peer check applies) count like the gate's headline grades."""
    method = registry.method
    assert method is not None
    gate = registry.peer_gate
    headline_grades = (*(gate.headline_cells if gate else ("at peer", NO_REFERENCE)), UNGRADED)
    all_arms = all_arms_of(registry, claim)
    planned: list[Planned] = []
    for hyp in claim.hypotheses:
        filters = {**(claim.cells or {}), **(hyp.cells or {})}
        score = score_of(hyp.metric)
        cells = pool.cells(hyp.x.designs or hyp.y.designs, score, hyp.metric, filters)
        evidence = gather(cells, hyp.x, hyp.y, all_arms, method.min_runs, headline_grades)
        result = HypothesisResult(claim.id, hyp.name, hyp.family, tuple(hyp.x), tuple(hyp.y), decided=True,
                                  decider=method.decider, left_out=evidence.left_out)  # fmt: skip
        planned.append(Planned(hyp, result, evidence, cells, pool, score, filters, headline_grades))
    for family in dict.fromkeys(h.family for h in claim.hypotheses):
        members = [p for p in planned if p.hyp.family == family]
        named = [(p.hyp.name, p.evidence.effects(), rule_of(registry, claim, p.hyp), p.hyp.test == "equivalence")
                 for p in members]  # fmt: skip
        for p, (v, needs) in zip(members, decide(named, registry.alpha, method.min_tasks, method.decider),
                                 strict=True):  # fmt: skip
            _fill(p, v, needs, reps, all_arms)
    head = planned[0]
    tables = [sensitivity_table(claim, registry, head, all_arms)] if head.result.verdict != NO_DATA else []
    notes = _notes(planned)
    return [p.result for p in planned], tables, notes


def _fill(p: Planned, v: TaskVerdict, needs: int | None, reps: int, all_arms: Sequence[str]) -> None:
    """A hypothesis result from its verdict: the task-level interval, the per-cell description, the v2 figure."""
    h, ev = p.result, p.evidence
    if v.n_tasks == 0:
        h.verdict = NO_DATA if not ev.left_out else stats.INSUFFICIENT
        return
    h.tasks = tuple(dict.fromkeys(ev.tasks))
    h.point, h.p_value, h.holm, h.rejected = v.estimate.point, v.p_value, v.holm, v.rejected
    h.nominal, h.estimate, h.enough = v.nominal, v.estimate, v.holm is not None and needs is None
    h.verdict, h.needs_tasks = v.verdict, needs if v.verdict == stats.INSUFFICIENT else None
    for i, (name, both) in enumerate(zip(ev.names, ev.cells, strict=True)):
        scored = ev.scored[i]
        label = name if ev.grades[i] != NO_REFERENCE else f"{name} (no reference)"
        est: CellEstimate = _cell_estimate(label, scored, both, all_arms, reps, i)
        est.grade = ev.grades[i]
        h.metric = scored.metric
        h.cells.append(est)
    xk, yk = ev.keys("x:"), ev.keys("y:")
    replicates = stats.probability_distribution(ev.cells, xk, yk, reps=reps, seed=0, groups=ev.tasks)
    v2_point = stats.task_mean([c.probability.point for c in h.cells], ev.tasks)
    h.v2_figure = stats.percentile_interval(v2_point, replicates, v.nominal.confidence)


def _notes(planned: Sequence[Planned]) -> list[str]:
    notes = []
    excluded_by: dict[str, dict[str, None]] = {}  # an arm set with not_in -> the cells it left out
    for p in planned:
        graded = p.cells.values()
        below = [c.name for c in graded if c.grade == BELOW_PEER_GRADE]
        if below:
            notes.append(f"{p.hyp.name}: cells below peer level never enter a headline, left out: "
                         f"{', '.join(below)} (see the peer table).")  # fmt: skip
        if p.evidence.not_in:
            sides = " and ".join(s.text for s in (p.hyp.x, p.hyp.y) if s.not_in)
            excluded_by.setdefault(sides, {}).update(dict.fromkeys(p.evidence.not_in))
        if p.result.needs_tasks and p.result.tasks:
            notes.append(f"{p.hyp.name}: insufficient at {len(p.result.tasks)} tasks; the exact test needs "
                         f"{p.result.needs_tasks} to reach its Holm level.")  # fmt: skip
    for sides, cells in excluded_by.items():
        notes.append(f"Arm set {sides}: its members are not the arm in these cells, left out of every hypothesis "
                     f"naming it: {', '.join(cells)}.")  # fmt: skip
    return list(dict.fromkeys(notes))


# -- the sensitivity table -------------------------------------------------------------------------------------------
def sensitivity_table(claim: Claim, registry: Registry, head: Planned, all_arms: Sequence[str]) -> Table:
    """The headline again: leaving each task out, with each alternative arm set, on at-peer cells only, and without
    the v2 cells; each decided alone at the headline's Holm level (description of how fragile the verdict is)."""
    method = registry.method
    assert method is not None
    sens = method.sensitivity
    h, ev = head.result, head.evidence
    level = h.holm.level if h.holm is not None else registry.alpha
    rule = rule_of(registry, claim, head.hyp)
    equivalence = head.hyp.test == "equivalence"

    def row(check: str, effects: TaskEffects) -> list[str]:
        ((v, needs),) = decide([(check, effects, rule, equivalence)], level, method.min_tasks, method.decider)
        interval = interval_text(v.estimate) if v.n_tasks else "—"
        more = f" (needs {needs} tasks)" if v.verdict == stats.INSUFFICIENT and needs else ""
        return [check, str(v.n_tasks), interval, v.verdict + more]

    rows = [row("as registered", ev.effects())]
    if sens.leave_one_task_out:
        for task in dict.fromkeys(ev.tasks):
            r = row(f"without {task}", ev.effects([t != task for t in ev.tasks]))
            if r[3].split(" (")[0] != h.verdict:
                r[3] += f" — {DECIDED_BY_ONE_TASK}"
            rows.append(r)
    if head.hyp.x.not_in or head.hyp.y.not_in:  # the sides as first registered, in every cell
        x, y = head.hyp.x.without_not_in(), head.hyp.y.without_not_in()
        cells = head.pool.cells(x.designs or y.designs, head.score, head.hyp.metric, head.filters)
        rows.append(row(f"{AS_FIRST_REGISTERED}: {x.text} vs {y.text}",
                        gather(cells, x, y, all_arms, method.min_runs, head.grades).effects()))  # fmt: skip
    for alt in claim.sensitivity_arm_sets:
        cells = head.pool.cells(alt.x.designs or alt.y.designs, head.score, head.hyp.metric, head.filters)
        alt_ev = gather(cells, alt.x, alt.y, all_arms, method.min_runs, head.grades)
        rows.append(row(f"arms {alt.text}", alt_ev.effects()))
    if sens.at_peer_only and any(g != UNGRADED for g in ev.grades):
        rows.append(row(AT_PEER_ONLY, ev.effects([g == "at peer" for g in ev.grades])))
    if sens.without_v2_cells:
        rows.append(row("without v2 cells", ev.effects([not v for v in ev.v2])))
    flipped = any(DECIDED_BY_ONE_TASK in r[3] for r in rows)
    title = (f"{claim.id} sensitivity of the headline ({head.hyp.name}: {h.verdict}"
             + (f"; {DECIDED_BY_ONE_TASK}" if flipped else "") + f"), each line decided alone at the headline's "
             f"level {level:.3g}")  # fmt: skip
    return Table(title, ["check", "tasks", "P(X > Y) over tasks [interval]", "verdict"], rows)
