"""Design comparisons checked at validation: the registry's ``designs`` (v3) compare off-policy designs, an arm being
an (algorithm, norm) pair such as ``sac:weight`` or ``crossq:batch_renorm[placement=pre]``, "on the same task and
budget". The report puts a design comparison's runs in one cell per (task, budget) across algorithms
(:func:`wnbench.report.cells.design_cells`), so two arms that run a task at different budgets, or a task that one
arm runs and the other does not, never meet: their runs are spent and no verdict reads them. A suite that names a
claim with such a comparison and plans both of its sides is refused before anything runs, naming the field
(``tasks`` or ``budget.steps``), the task and the two arms.

Only a comparison whose two sides the profile both plans is checked: a profile with SAC arms and no CrossQ arm (a
smoke, a baseline of one design) makes no design comparison.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DesignComparison", "check_design_comparisons", "design_comparisons"]


@dataclass(frozen=True)
class DesignComparison:
    """One registry comparison of designs: its claim and name, and the design arms of each side."""

    claim: str
    name: str
    x: tuple[str, ...]
    y: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.claim} '{self.name}'"


def design_comparisons(claims: Sequence[str], registry: Any = None) -> list[DesignComparison]:
    """The comparisons of designs (both sides ``ALGO:NORM`` arms) in the hypotheses and sensitivity arm sets of the
    registry's claims that ``claims`` names (``C2`` names the claims split from it), each (x, y) pair once."""
    from wnbench.report.cells import tagged_for
    from wnbench.report.registry import load_registry

    registry = registry if registry is not None else load_registry()
    out: list[DesignComparison] = []
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for claim in registry.claims:
        if not tagged_for(claim.id, claims):
            continue
        pairs = [(h.name, h.x, h.y) for h in claim.hypotheses]
        pairs += [(f"sensitivity {p.text}", p.x, p.y) for p in claim.sensitivity_arm_sets]
        for name, x, y in pairs:
            key = (tuple(x), tuple(y))
            if x.designs and y.designs and key not in seen:
                seen.add(key)
                out.append(DesignComparison(claim.id, name, *key))
    return out


def check_design_comparisons(
    runs: Sequence[Any],
    claims: Sequence[str],
    where_of: Mapping[str, Callable[[str], str]],
    problems: Any,
    registry: Any = None,
) -> None:
    """Add one problem per (comparison, task) whose two sides' planned evaluation runs differ in task or budget.

    ``runs``: the profile's :class:`~wnbench.suite.spec.ResolvedRun` s; ``where_of``: run id -> the YAML path of
    a field of the grid that planned it; ``problems``: ``add(where, message)``."""
    comparisons = design_comparisons(claims, registry)
    if not comparisons:
        return
    runs = [r for r in runs if r.stage == "eval"]  # tuning runs are no arm of any comparison
    for comparison in comparisons:
        x_plans, y_plans = _arm_plans(runs, comparison.x), _arm_plans(runs, comparison.y)
        if not x_plans or not y_plans:
            continue  # the profile does not make this comparison
        tasks = sorted({t for plans in (x_plans, y_plans) for arm in plans.values() for t in arm})
        for task in tasks:
            mismatch = _first_mismatch(task, x_plans, y_plans)
            if mismatch is not None:
                problems.add(*_describe(comparison, task, *mismatch, where_of))


#: arm -> task -> budget (steps) -> the runs planned at it
_Plans = dict[str, dict[str, dict[Any, list[Any]]]]


def _arm_plans(runs: Sequence[Any], arms: Sequence[str]) -> _Plans:
    """The runs of each design arm of one side that the profile plans, by task and budget."""
    from wnbench.report.cells import BUDGET_KEY, cell_value
    from wnbench.report.registry import arm_of, split_design

    by_algo: dict[str, dict[str, str]] = defaultdict(dict)  # algo -> norm label -> design arm
    for arm in arms:
        algo, norm = split_design(arm)
        by_algo[algo.lower()][norm] = arm
    plans: _Plans = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        norms = by_algo.get(run.algo.lower())
        norm = arm_of(run.norm_label, norms) if norms else None
        if norm is None:
            continue
        steps = cell_value(run.config(), BUDGET_KEY)
        if steps is not None:  # unknown: the run has another problem, reported with its field
            plans[norms[norm]][run.task][steps].append(run)
    return plans


def _first_mismatch(task: str, x_plans: _Plans, y_plans: _Plans) -> tuple[str, str, _Plans, _Plans] | None:
    """The first (x arm, y arm) whose budgets on ``task`` differ (one of them may not run it at all)."""
    for a, a_tasks in x_plans.items():
        for b, b_tasks in y_plans.items():
            if set(a_tasks.get(task, {})) != set(b_tasks.get(task, {})):
                return a, b, x_plans, y_plans
    return None


def _describe(
    comparison: DesignComparison,
    task: str,
    a: str,
    b: str,
    x_plans: _Plans,
    y_plans: _Plans,
    where_of: Mapping[str, Callable[[str], str]],
) -> tuple[str, str]:
    """(YAML path, message) for arms ``a`` (x side) and ``b`` (y side) on ``task``."""
    a_budgets, b_budgets = x_plans[a].get(task, {}), y_plans[b].get(task, {})
    need = f"design comparison {comparison.label} needs its two arms on the same task and budget"
    if not a_budgets or not b_budgets:
        runs_it, lacks = (a, b) if a_budgets else (b, a)
        first = _first_run(a_budgets or b_budgets)
        return (
            where_of[first.run_id]("tasks"),
            f"{need}: design arm {runs_it} runs {task} and design arm {lacks} does not; plan {task} for "
            f"{lacks} at {_steps_text(a_budgets or b_budgets)} or drop it from {runs_it}",
        )
    a_first, b_first = _first_run(a_budgets), _first_run(b_budgets)
    return (
        where_of[a_first.run_id]("budget.steps"),
        f"{need}: on {task}, design arm {a} runs {_steps_text(a_budgets)}{_unset(a_first)} and design arm {b} "
        f"{_steps_text(b_budgets)} ({_budget_source(b_first, where_of)}); give both the same budget.steps",
    )


def _first_run(budgets: Mapping[Any, list[Any]]) -> Any:
    return next(iter(budgets.values()))[0]


def _steps_text(budgets: Mapping[Any, list[Any]]) -> str:
    values = sorted(budgets, key=lambda v: (type(v).__name__, v))
    return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values) + " steps"


def _unset(run: Any) -> str:
    """What a run's budget is when ``budget.steps`` is unset: the kind's config value (RL: the zoo's n_timesteps)."""
    return "" if run.budget.get("steps") is not None else " (budget.steps unset: the config's n_timesteps)"


def _budget_source(run: Any, where_of: Mapping[str, Callable[[str], str]]) -> str:
    """Where a run's budget comes from: its grid's ``budget.steps``, else the kind's config."""
    where = where_of[run.run_id]("budget.steps")
    return where if run.budget.get("steps") is not None else f"{where} unset: the config's n_timesteps"
