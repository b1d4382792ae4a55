"""Tune, then evaluate: a grid may declare a tuning stage that chooses hyperparameters per (cell, norm) on tuning
seeds disjoint from its evaluation seeds, then runs the chosen setting on the evaluation seeds.

    grids:
      - tasks: [CartPole-v1]
        algos: [ppo]
        seeds: 5                                    # evaluation seeds 0..4 (also the shared-setting runs)
        tune: {sweep: {learning_rate: [3.0e-4, 1.0e-3, 3.0e-3]}, seeds: 3}   # tuning seeds 1000..1002

Three kinds of runs come out of such a grid (``config.stage`` in their records):

- ``eval``: the grid's own runs, the hyperparameters every norm shares (as without ``tune``);
- ``tune``: every (task, algo, norm, sweep point) x tuning grid point x tuning seed;
- ``tuned``: once every tuning run of a (task, algo, norm, sweep point) has a result, the grid point with the best
  median headline score over its tuning seeds (the kind's ``Scoring``, diverged = worst; ties: the first in grid
  order), run on the evaluation seeds. ``config.tuning`` holds the choice and the medians it was made from. A
  choice equal to a shared run's parameters reuses that run.

The engine calls :func:`add_tuned_runs` before and after executing a suite; ``wnbench report`` reads the stages
and gives the shared and the tuned-per-norm verdicts side by side.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wnbench.errors import UserError

#: Tuning seeds given as a count are TUNE_SEED_BASE, TUNE_SEED_BASE + 1, ...
TUNE_SEED_BASE = 1000
DEFAULT_TUNE_SEEDS = 3


class TuneSpec(BaseModel):
    """A grid's ``tune`` block."""

    model_config = ConfigDict(extra="forbid")
    sweep: dict[str, list[Any]] = Field(min_length=1, description="the grid to choose from, per parameter")
    seeds: int | list[int] = Field(DEFAULT_TUNE_SEEDS, description="a count (1000, 1001, ...) or a list")


def tune_seeds(spec: TuneSpec) -> list[int]:
    if isinstance(spec.seeds, int):
        if spec.seeds < 1:
            raise ValueError(f"need at least one tuning seed, got {spec.seeds}")
        return list(range(TUNE_SEED_BASE, TUNE_SEED_BASE + spec.seeds))
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise ValueError(f"tuning seeds must be a non-empty list without repeats, got {spec.seeds!r}")
    return list(spec.seeds)


@dataclass
class TuneGroup:
    """The tuning runs of one (task, algo, norm, sweep point) and what is needed to expand its evaluation."""

    grid: dict[str, Any]  # a one-task, one-algo, one-norm grid; its sweep holds the tuning grid
    origins: dict[str, str]
    keys: tuple[str, ...]
    tune_sweep: dict[str, list[Any]]
    eval_seeds: list[int]
    tune_seeds: list[int]
    run_ids: list[str]
    expand: Callable[..., None]  # the spec's grid expansion, bound to this suite (see plan_tune_stage)
    decided: dict[str, Any] | None = None  # the choice, once made


def plan_tune_stage(
    suite: Any,
    grid: Mapping[str, Any],
    origins: Mapping[str, str],
    where: Any,
    eval_seeds: Sequence[int],
    problems: Any,
    expand: Any,
) -> None:
    """Add a grid's tuning runs to ``suite.runs`` (stage ``tune``) and one :class:`TuneGroup` per (task, algo,
    norm, sweep point) to ``suite.tune_groups``. ``expand(grid, origins, stage, tuning)`` is the spec's grid
    expansion; problems are added to ``problems`` with their YAML paths."""
    try:
        spec = TuneSpec(**(grid.get("tune") or {}))
        seeds = tune_seeds(spec)
    except ValidationError as err:
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            problems.add(where(f"tune.{loc}"), e["msg"])
        return
    except (ValueError, TypeError) as err:
        problems.add(where("tune.seeds"), str(err))
        return
    reused = sorted(set(seeds) & set(eval_seeds))
    if reused:
        problems.add(
            where("tune.seeds"),
            f"tuning seeds {reused} are also evaluation seeds; they must be disjoint (e.g. count from "
            f"{TUNE_SEED_BASE})",
        )
        return
    sweep = dict(grid.get("sweep") or {})
    both = sorted(set(sweep) & set(spec.sweep))
    if both:
        problems.add(
            where("tune.sweep"), f"{', '.join(both)} also in the grid's sweep; tune a parameter or sweep it"
        )
        return
    for key, values in spec.sweep.items():
        if not values:
            problems.add(where(f"tune.sweep.{key}"), "must list at least one value")
            return
    tune_origins = {**origins, "sweep": where("tune"), "seeds": where("tune")}
    points = list(itertools.product(*sweep.values())) if sweep else [()]
    keys = tuple(spec.sweep)
    for task in grid.get("tasks") or []:
        for algo in grid.get("algos") or []:
            for norm in grid.get("norms") or []:
                for point in points:
                    base = {k: [v] for k, v in zip(sweep, point, strict=True)}
                    one = {**copy.deepcopy(dict(grid)), "tasks": [task], "algos": [algo], "norms": [norm],
                           "tune": None}  # fmt: skip
                    tune_grid = {**one, "sweep": {**base, **spec.sweep}, "seeds": seeds}
                    before = len(suite.runs)
                    tuning = {"keys": list(keys), "grid": spec.sweep, "seeds": seeds}
                    expand(tune_grid, tune_origins, "tune", tuning)
                    run_ids = [r.run_id for r in suite.runs[before:]]
                    if run_ids:
                        suite.tune_groups.append(
                            TuneGroup(
                                {**one, "sweep": base},
                                dict(origins),
                                keys,
                                dict(spec.sweep),
                                list(eval_seeds),
                                seeds,
                                run_ids,
                                expand,
                            )
                        )


# -- choosing ---------------------------------------------------------------------------------------------------------
@dataclass
class Choice:
    """The chosen grid point of one tuning group and the medians it was chosen from."""

    choice: dict[str, Any]
    medians: list[tuple[dict[str, Any], float, int]]  # (point, median oriented score, scored runs)
    metric: str
    runs: int

    def describe(self) -> str:
        chosen = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.choice.items()
        )
        grid = "; ".join(
            ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in p.values())
            + f": {m:.4g}" for p, m, _ in self.medians
        )  # fmt: skip
        return f"{chosen} (median {self.metric} per point over {self.runs} tuning runs: {grid})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "choice": self.choice,
            "metric": self.metric,
            "medians": [{"point": p, "median": m, "runs": n} for p, m, n in self.medians],
            "tuning_runs": self.runs,
        }


def _oriented(record: Mapping[str, Any]) -> tuple[str, float] | None:
    """(headline metric, score with higher better); -inf for a diverged run or a non-finite value."""
    from .kinds import get_kind

    try:
        scoring = get_kind(record["config"]["kind"]).scoring_object()
    except Exception:  # noqa: BLE001 - a kind without scoring cannot be tuned on
        return None
    if scoring is None:
        return None
    metric = scoring.primary(record["config"])
    sign = 1.0 if scoring.directions.get(metric, "max") == "max" else -1.0
    value = (record.get("metrics") or {}).get(metric)
    if record["status"] != "finished" or not isinstance(value, int | float) or not math.isfinite(value):
        return metric, -math.inf
    return metric, sign * float(value)


def choose(
    records: Iterable[Mapping[str, Any]], keys: Sequence[str], grid: Mapping[str, Sequence[Any]]
) -> Choice | None:
    """The grid point with the best median score over its scored (finished or diverged) tuning runs; ties go to
    the first point in grid order. ``None`` when no run is scored."""
    by_point: dict[str, list[float]] = {}
    metric = ""
    runs = 0
    for r in records:
        if r["status"] not in ("finished", "diverged"):
            continue
        got = _oriented(r)
        if got is None:
            continue
        metric = got[0]
        point = {k: r["config"]["params"].get(k) for k in keys}
        by_point.setdefault(json.dumps(point, sort_keys=True), []).append(got[1])
        runs += 1
    if not by_point:
        return None
    medians = []
    for values in itertools.product(*[grid[k] for k in keys]):
        point = dict(zip(keys, values, strict=True))
        scores = by_point.get(json.dumps(point, sort_keys=True))
        if scores:
            medians.append((point, float(np.median(scores)), len(scores)))
    if not medians:
        return None
    best = max(range(len(medians)), key=lambda i: (medians[i][1], -i))
    return Choice(dict(medians[best][0]), medians, metric, runs)


@dataclass(frozen=True)
class GroupKey:
    """A tuning group as the report sees it from records: (kind, task, algo, norm, parameters minus tuned keys)."""

    kind: str
    task: str
    algo: str
    norm: str
    base: str  # JSON of the params without the tuned keys
    keys: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.task}/{self.algo}/{self.norm}"

    def matches(self, record: Mapping[str, Any]) -> bool:
        return group_key(record, self.keys) == self


def group_key(record: Mapping[str, Any], keys: Sequence[str]) -> GroupKey:
    c = record["config"]
    base = {k: v for k, v in c["params"].items() if k not in keys}
    from wnbench.report.registry import canonical  # labels as the report compares them (aliases resolved)

    return GroupKey(
        c["kind"], c["task"], c["algo"], canonical(c["norm"]), json.dumps(base, sort_keys=True), tuple(keys)
    )


def choose_from_records(records: Iterable[Mapping[str, Any]]) -> dict[GroupKey, Choice]:
    """Every tuning group's choice from tuning-stage records (``config.tuning`` names the keys and grid)."""
    groups: dict[GroupKey, list[Mapping[str, Any]]] = {}
    grids: dict[GroupKey, Mapping[str, Sequence[Any]]] = {}
    for r in records:
        tuning = r["config"].get("tuning") or {}
        keys = tuple(tuning.get("keys") or ())
        if not keys:
            continue
        key = group_key(r, keys)
        groups.setdefault(key, []).append(r)
        grids[key] = tuning.get("grid") or {}
    out = {}
    for key, recs in groups.items():
        chosen = choose(recs, key.keys, grids[key])
        if chosen is not None:
            out[key] = chosen
    return out


def matches_choice(record: Mapping[str, Any], choice: Mapping[str, Any]) -> bool:
    params = record["config"]["params"]
    return all(params.get(k) == v for k, v in choice.items())


# -- the engine's hook --------------------------------------------------------------------------------------------------
def add_tuned_runs(
    suite: Any, out_dir: str | Path | None, lookup: Callable[[str], Mapping[str, Any] | None] | None = None
) -> int:
    """Decide every tuning group whose tuning runs all have a result (finished or diverged) and add its evaluation
    runs (stage ``tuned``) to ``suite.runs``; returns how many runs were added. A group with a failed or missing
    tuning run waits (the next ``wnbench run`` reruns it). Records are read from ``out_dir``, or by ``lookup``
    (run id -> record or None; ``wnbench publish`` passes the records it is writing)."""
    from .spec import _Problems
    from .store import DONE_STATUSES, read_record

    if lookup is None:
        lookup = lambda run_id: read_record(out_dir, run_id)  # noqa: E731
    added = 0
    have = {r.run_id for r in suite.runs}
    for group in getattr(suite, "tune_groups", []):
        if group.decided is not None:
            continue
        records = [lookup(run_id) for run_id in group.run_ids]
        if any(r is None or r.get("status") not in DONE_STATUSES for r in records):
            continue
        chosen = choose(records, group.keys, group.tune_sweep)
        if chosen is None:
            continue
        group.decided = chosen.choice
        grid = {**group.grid, "sweep": {**group.grid["sweep"], **{k: [v] for k, v in chosen.choice.items()}},
                "seeds": group.eval_seeds}  # fmt: skip
        tuning = {"keys": list(group.keys), "tune_seeds": group.tune_seeds, **chosen.as_dict()}
        problems = _Problems()
        before = len(suite.runs)
        group.expand(grid, group.origins, "tuned", tuning, have, problems)
        if problems:
            raise UserError(
                f"{suite.path}: the tuned setting of {group.run_ids[0]}'s group is invalid", list(problems)
            )
        added += len(suite.runs) - before
    return added
