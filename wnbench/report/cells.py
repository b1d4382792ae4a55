"""From records to scored cells: a run's score, cells and arms, peer checks, record selection, the
tuned stage."""

from __future__ import annotations

import functools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wnbench.gen.scoring import DIAGNOSTIC_KEYS as GEN_DIAGNOSTIC_KEYS
from wnbench.rl.scoring import ACTOR_DIAGNOSTIC_KEYS, DIAGNOSTIC_KEYS, EVAL_CURVE, full_batch_config
from wnbench.suite.kinds import Scoring, get_kind

from .anchors import CURVE_TOLERANCE, Anchor, minmax_anchor, record_anchor
from .records import Inputs
from .registry import Claim, canonical
from .results import ClaimResult


# -- scoring -----------------------------------------------------------------------------------------------------
@functools.cache
def scoring_of(kind: str) -> Scoring | None:
    try:
        return get_kind(kind).scoring_object()
    except Exception:  # noqa: BLE001 - an unknown kind is reported as unscorable, not a crash
        return None


def metric_of(record: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(headline metric, higher is better) of a record, or ``None`` when its kind has no scoring."""
    scoring = scoring_of(record["config"]["kind"])
    if scoring is None:
        return None
    name = scoring.primary(record["config"])
    return name, scoring.directions.get(name, "max") == "max"


def raw_score(record: Mapping[str, Any], metric: str) -> float:
    """The metric's value; NaN for a diverged run or a missing/non-finite value (it then scores worst)."""
    if record["status"] == "diverged":
        return math.nan
    value = record["metrics"].get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def is_scored(record: Mapping[str, Any]) -> bool:
    return record["status"] in ("finished", "diverged")


def stage_of(record: Mapping[str, Any]) -> str:
    """``tune`` (a tuning-stage run), ``tuned`` (evaluation at a tuned choice) or ``eval`` (shared settings)."""
    return str(record["config"].get("stage") or "eval")


def throughput(record: Mapping[str, Any]) -> tuple[float, bool]:
    """A run's throughput (the timing analysis' supporting measure): RL env steps per CPU second (higher), else the run's CPU seconds (lower)."""
    if "steps_per_cpu_s" in record["metrics"]:
        value = record["metrics"]["steps_per_cpu_s"]
        return (float(value) if isinstance(value, int | float) else math.nan), True
    cpu = (record.get("timings") or {}).get("run_cpu_s")
    return (float(cpu) if cpu else math.nan), False


ScoreFn = Callable[
    [Mapping[str, Any]], tuple[str, float, bool]
]  # record -> (metric, raw value, higher better)


def headline_score(record: Mapping[str, Any]) -> tuple[str, float, bool] | None:
    info = metric_of(record)
    return None if info is None else (info[0], raw_score(record, info[0]), info[1])


def metric_score(metric: str) -> ScoreFn:
    """Score records on ``metric`` (its direction from the kind's scoring) instead of their headline."""

    def score(record: Mapping[str, Any]) -> tuple[str, float, bool] | None:
        scoring = scoring_of(record["config"]["kind"])
        if scoring is None or metric not in scoring.directions:
            return None
        return metric, raw_score(record, metric), scoring.directions[metric] == "max"

    return score


def throughput_score(record: Mapping[str, Any]) -> tuple[str, float, bool]:
    value, higher = throughput(record)
    return ("steps per CPU s" if higher else "run CPU s"), value, higher


# -- cells ---------------------------------------------------------------------------------------------------------
def arm_label_of(record: Mapping[str, Any]) -> str:
    """A record's arm: its kind's arm label (placement arms of the generative kind), else the canonical norm."""
    scoring = scoring_of(record["config"]["kind"])
    if scoring is not None and scoring.arm is not None:
        label = scoring.arm(record["config"])
        return label if "@" in label else canonical(label)
    return canonical(record["config"]["norm"])


#: Pseudo-parameter for a run's training budget: the profile's ``budget.steps``, else the steps the task's config
#: resolved to (RL: the zoo's ``n_timesteps``). Runs of one (task, algo) at two budgets are two cells, never one arm.
BUDGET_KEY = "steps"


def cell_value(config: Mapping[str, Any], key: str) -> Any:
    """The value of a cell-splitting key in a run's config: a parameter, or the budget (``BUDGET_KEY``)."""
    if key == BUDGET_KEY and key not in config["params"]:
        steps = (config.get("budget") or {}).get("steps")
        return steps if steps is not None else (config.get("resolved") or {}).get("n_timesteps")
    return config["params"].get(key)


GroupKey = tuple[str, str, str]


def _group_of(config: Mapping[str, Any]) -> GroupKey:
    return (config["kind"], config["task"], config["algo"])


def _cell_params(
    records: Sequence[Mapping[str, Any]], exclude: Iterable[str] = ()
) -> dict[GroupKey, list[str]]:
    """The keys that name each (kind, task, algo)'s cells. The budget (``BUDGET_KEY``) names every group's cells
    once any group holds two budgets (a published folder holds the baseline profile's zoo-budget runs beside the
    paper profile's shorter ones; pooled, an arm would mix two budgets), so that cells read alike. Any other
    parameter splits only the group whose records differ in it (those that are part of the arm, per the kind's
    scoring, split nothing): diffusion's two update budgets on ring8 label ring8's cells, not the VAE's."""
    values: dict[tuple[GroupKey, str], set[str]] = defaultdict(set)
    skip = set(exclude)
    for r in records:
        c = r["config"]
        scoring = scoring_of(c["kind"])
        arm_params = scoring.arm_params if scoring is not None else frozenset()
        for key in [*c["params"], BUDGET_KEY]:
            if key in arm_params or key in skip:
                continue
            values[(_group_of(c), key)].add(json.dumps(cell_value(c, key), sort_keys=True))
    split: dict[GroupKey, set[str]] = defaultdict(set)
    budgets_split = any(len(seen) > 1 for (_, key), seen in values.items() if key == BUDGET_KEY)
    for (group, key), seen in values.items():
        if len(seen) > 1 or (key == BUDGET_KEY and budgets_split):
            split[group].add(key)
    return {group: sorted(keys) for group, keys in split.items()}


def cell_of(record: Mapping[str, Any], split: Sequence[str]) -> str:
    c = record["config"]
    values = {k: cell_value(c, k) for k in split}
    # a key whose value is unset (a generative run has no step budget) adds nothing to the name
    extra = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items() if v is not None)
    return f"{c['task']}/{c['algo']}" + (f" [{extra}]" if extra else "")


def group_cells(
    records: Sequence[dict[str, Any]], exclude_params: Iterable[str] = ()
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{cell: {arm label (canonical norm, or the kind's arm label): [records in seed order]}}``."""
    splits = _cell_params(records, exclude_params)
    cells: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    order: dict[str, tuple[Any, ...]] = {}
    for r in sorted(records, key=lambda r: (r["config"]["seed"], r["run_id"])):
        c = r["config"]
        split = splits.get(_group_of(c), [])
        cell = cell_of(r, split)
        cells[cell][arm_label_of(r)].append(r)
        values = [cell_value(c, k) for k in split]  # numbers in numeric order (batch 4 before 16)
        order[cell] = (
            c["task"],
            c["algo"],
            *[(0, v, "") if isinstance(v, int | float) else (1, 0, json.dumps(v)) for v in values],
        )
    return {c: dict(cells[c]) for c in sorted(cells, key=lambda c: order[c])}


@dataclass
class CellScores:
    """One cell's scored runs per norm: raw values (diverged -> the cell's worst), oriented values (higher better),
    normalized values (fixed anchor, else min-max), and the anchor used."""

    metric: str
    higher_is_better: bool
    raw: dict[str, np.ndarray]
    oriented: dict[str, np.ndarray]
    normalized: dict[str, np.ndarray]
    anchor: Anchor
    task: str = (
        ""  # the environment or dataset: the bootstrap resamples tasks, then the cells inside each task
    )


def task_of(by_norm: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    return next((r["config"]["task"] for recs in by_norm.values() for r in recs), "")


def score_cell(
    by_norm: Mapping[str, Sequence[Mapping[str, Any]]],
    score: ScoreFn | None = None,
    anchor: Anchor | None = None,
) -> CellScores | None:
    """Each arm's raw, oriented and normalized scores. The anchor is the given one, else the first scored
    record's fixed anchor (:func:`record_anchor`; none with a custom ``score``), else min-max over the cell."""
    values: dict[str, list[float]] = {}
    metric, higher = "", True
    for norm, recs in by_norm.items():
        for r in recs:
            if not is_scored(r):
                continue
            got = (score or headline_score)(r)
            if got is None:
                continue
            metric, value, higher = got
            values.setdefault(norm, []).append(value)
            if anchor is None and score is None:
                anchor = record_anchor(r, metric)
    if not values:
        return None
    finite = [v for vs in values.values() for v in vs if math.isfinite(v)]
    worst = (min(finite) if higher else max(finite)) if finite else 0.0
    raw = {n: np.array([v if math.isfinite(v) else worst for v in vs]) for n, vs in values.items()}
    sign = 1.0 if higher else -1.0
    anchor = anchor or minmax_anchor(finite, higher)
    return CellScores(
        metric,
        higher,
        raw,
        {n: sign * v for n, v in raw.items()},
        {n: anchor.normalize(v) for n, v in raw.items()},
        anchor,
        task_of(by_norm),
    )


def scored_cells(
    cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], score: ScoreFn | None = None
) -> dict[str, CellScores]:
    out = {}
    for cell, by_norm in cells.items():
        scored = score_cell(by_norm, score)
        if scored is not None:
            out[cell] = scored
    return out


#: Mechanism diagnostics a run's curves may carry, in the order they are shown: RL's (wnbench.rl.diagnostics: the
#: critic's or policy's, then the actor's weight growth) and each generative network's (wnbench.gen.norm_callback).
DIAGNOSTICS = tuple(f"diag/{key}" for key in (*DIAGNOSTIC_KEYS, *ACTOR_DIAGNOSTIC_KEYS, *GEN_DIAGNOSTIC_KEYS))
#: The diagnostics of minibatch sampling noise: shown as "full batch" where the update uses the whole rollout.
SAMPLING_NOISE = ("diag/grad_noise", "diag/grad_var")


def unmeasured_diagnostic(record: Mapping[str, Any], key: str) -> bool:
    """A sampling-noise diagnostic of a full-batch update: nothing to measure (older records hold rounding)."""
    return key in SAMPLING_NOISE and full_batch_config(record.get("config") or {})


#: Final figures of generative runs that explain a score rather than grade it, shown beside the curve diagnostics:
#: the VAE's active latent units (0 = posterior collapse: the decoder ignores z and fits one broad Gaussian) and
#: the diffusion denoiser's loss on test points (how well it learned the denoising task).
FINAL_MECHANISMS = ("active_units", "denoising_loss_test")


def diagnostic_value(record: Mapping[str, Any], key: str) -> float:
    """A run's summary of one diagnostic: the mean over its probe points (NaN when it has none); a final mechanism
    figure (:data:`FINAL_MECHANISMS`) as the run recorded it."""
    if key in FINAL_MECHANISMS:
        value = (record.get("metrics") or {}).get(key)
        return float(value) if isinstance(value, (int, float)) else math.nan
    curve = (record.get("curves") or {}).get(key) or {}
    values = np.asarray(curve.get("value") or [], dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


#: A cell's no-norm arm is at peer level when its median normalized score is at least this (1 = the zoo's figure).
PEER_LEVEL = 0.95


@dataclass
class PeerCheck:
    """A cell's peer-baseline arm against one published figure (see :func:`peer_checks`)."""

    arm: str
    runs: int
    steps: float
    zoo_steps: float
    source: str
    median: float
    low: float
    best: float
    norm_median: float
    norm_best: float
    metric: str = "final_return"
    single_run: bool = True  # the published figure is one run (rl-zoo), not a mean over trials (PacGAN)
    basis: str = "final"  # anchors.BASIS_*: the figure at the cell's budget, a curve point, or "reached only"
    figure_of: str = "zoo's"  # whose figure, in the status line ("zoo's", "reference's")

    @property
    def reached_only(self) -> bool:
        """The figure is at a larger budget and no curve point is near the cell's: missing it grades nothing."""
        return self.basis == "reached only"

    @property
    def at_peer(self) -> bool:
        """The median run reaches the published figure (normalized >= PEER_LEVEL), at whatever budget."""
        return self.norm_median >= PEER_LEVEL

    @property
    def status(self) -> str:
        if self.reached_only:
            share = f"{self.steps / self.zoo_steps:.0%} of the {self.figure_of} steps"
            return (
                f"at peer level at {share}"
                if self.at_peer
                else f"short budget ({share}): no reference at this budget (no learning-curve point near it)"
            )
        if self.basis == "curve":
            return (
                "at peer level (reference's learning curve)" if self.at_peer else "below peer level (curve)"
            )
        if self.zoo_steps and self.steps < 0.99 * self.zoo_steps:
            share = f"{self.steps / self.zoo_steps:.0%} of the zoo's steps"
            return (
                f"at peer level at {share}"
                if self.at_peer
                else f"short budget ({share}): sample efficiency, not peer"
            )
        if self.at_peer:
            return "at peer level"
        if self.norm_best >= PEER_LEVEL:
            return "below peer in the median; best seed at peer" + (
                " (the zoo's figure is one run)" if self.single_run else ""
            )
        return "below peer level"


def peer_arm_runs(
    by_arm: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[str | None, list[Mapping[str, Any]]]:
    """A cell's peer-baseline arm (its kind's ``peer_arm``: no norm, stock CrossQ, BN on StackedMNIST) and that
    arm's scored runs; ``(None, [])`` where the cell's kind names no peer arm."""
    first = next((r for recs in by_arm.values() for r in recs), None)
    scoring = scoring_of(first["config"]["kind"]) if first else None
    if first is None or scoring is None or scoring.peer_arm is None:
        return None, []
    arm = scoring.peer_arm(first["config"])
    return arm, [r for r in by_arm.get(arm, []) if is_scored(r)]


def peer_checks(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[PeerCheck]:
    """A cell's peer-baseline arm (the kind's ``peer_arm``: no norm, or stock CrossQ) against each published figure
    of the cell (:func:`wnbench.report.anchors.peer_figures`: rl-baselines3-zoo's benchmark.md for RL, PacGAN's
    Table 1 for the mixture GANs); empty where the cell has no such arm, runs or figure. Normalized: the figure's
    anchor (random policy, or 0) at 0, the published figure at 1."""
    from .anchors import peer_figures

    arm, recs = peer_arm_runs(by_arm)
    if not recs:
        return []
    first = recs[0]  # the peer arm's own run: its budget (steps run) picks the figure
    scoring = scoring_of(first["config"]["kind"])
    rl = first["config"]["kind"] == "rl"
    out = []
    for metric, anchor in peer_figures(first, scoring.primary(first["config"])):
        if anchor.at_step:  # one evaluation of the reference at a step: each run's own evaluation there
            values = np.array([evaluation_at(r, anchor.at_step, raw_score(r, metric)) for r in recs])
            metric = f"{EVAL_CURVE} at {anchor.at_step:,.0f}"
        else:
            values = np.array([raw_score(r, metric) for r in recs])
        lower = (
            anchor.high < anchor.low
        )  # a lower-is-better figure (StackedMNIST's KL, anchored at its worst)
        values = np.where(
            np.isfinite(values), values, math.inf if lower else -math.inf
        )  # diverged: the worst
        median, best = float(np.median(values)), float(values.min() if lower else values.max())
        norm_median, norm_best = (float(anchor.normalize(np.array([v]))[0]) for v in (median, best))
        out.append(
            PeerCheck(
                arm=arm,
                runs=len(recs),
                steps=max(float(r["metrics"].get("total_steps") or 0) for r in recs) if rl else 0.0,
                zoo_steps=anchor.steps if rl else 0.0,
                source=anchor.source.split(", ", 1)[-1].removeprefix("rl-zoo "),
                median=median,
                low=float(values.max() if lower else values.min()),
                best=best,
                norm_median=norm_median,
                norm_best=norm_best,
                metric=metric,
                single_run=rl,
                basis=anchor.basis,
                figure_of="zoo's" if "rl-zoo" in anchor.source else "reference's",
            )
        )
    return out


def evaluation_at(record: Mapping[str, Any], step: float, fallback: float) -> float:
    """The run's evaluation return at the curve point nearest ``step`` (within the anchors' curve tolerance), else
    ``fallback`` (its primary score); NaN-safe like :func:`raw_score` (a diverged run's stays non-finite)."""
    curve = (record.get("curves") or {}).get(EVAL_CURVE) or {}
    points = [
        (abs(float(s) - step), float(v))
        for s, v in zip(curve.get("step") or [], curve.get("value") or [], strict=False)
        if v is not None and abs(float(s) - step) <= CURVE_TOLERANCE * step
    ]
    return min(points)[1] if points and math.isfinite(fallback) else fallback


def below_peer_cells(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """Cells whose baseline does not reach one of its published figures in the median."""
    return [c for c, by_arm in cells.items() if peer_grade(by_arm) == BELOW_PEER_GRADE]


# -- record selection ------------------------------------------------------------------------------------------------
def tagged_for(claim_id: str, tags: Iterable[str]) -> bool:
    """A record tagged ``C2`` counts for ``C2`` and for the claims split from it (``C2-GAN``, ``C2-VAE``: v3's C2
    by model; the claim's ``cells`` filter picks its records among them)."""
    return any(claim_id == t or claim_id.startswith(f"{t}-") for t in tags)


def records_for(inputs: Inputs, claim: Claim) -> list[dict[str, Any]]:
    """The claim's records: those of its suites, or tagged with it (or the claim it was split from) by their suite
    file."""
    return [
        r for r in inputs.records if r["suite"] in claim.suites or tagged_for(claim.id, r.get("claims", []))
    ]


def _status_counts(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        counts[arm_label_of(r)][r["status"]] += 1
    return {n: dict(c) for n, c in sorted(counts.items())}


def _problems(records: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        if r["status"] in ("failed", "timeout"):
            error = (r.get("error") or "").strip().splitlines()
            lines.append(
                f"{r['status']}: {r['config']['task']}/{r['config']['algo']}/{r['config']['norm']}/seed"
                f"{r['config']['seed']} ({r['run_id']}): {error[-1] if error else 'no message'}"
            )
    return lines


def _missing_for(inputs: Inputs, claim: Claim) -> dict[str, int]:
    missing = inputs.missing_by_suite()
    return {
        m.suite: missing.get(m.suite, 0)
        for m in inputs.manifests
        if (claim.id in m.claims or m.suite in claim.suites) and missing.get(m.suite)
    }


def describe_records(
    result: ClaimResult, claim: Claim, records: list[dict[str, Any]], inputs: Inputs
) -> None:
    """Fill a claim result's bookkeeping from its records: status counts per arm, failures, planned runs without a
    record, and the suites the records come from."""
    result.status_counts = _status_counts(records)
    result.problems = _problems(records)
    result.missing = _missing_for(inputs, claim)
    result.suites = sorted({r["suite"] for r in records})


#: Registry cell-filter keys that name a config field by another word (v3: ``model`` for a generative run's algo,
#: ``data`` for its dataset).
FILTER_ALIASES = {"model": "algo", "data": "task"}


def config_field(config: Mapping[str, Any], key: str) -> Any:
    """A cell filter's value in a run's config: a top-level field (aliases resolved), else a parameter."""
    key = FILTER_ALIASES.get(key, key)
    return config[key] if key in config else (config.get("params") or {}).get(key)


def matches_filter(config: Mapping[str, Any], cells: Mapping[str, Sequence[str]] | None) -> bool:
    """Whether a run's config passes a registry ``cells`` filter (every key's value among those listed)."""
    return not cells or all(str(config_field(config, k)) in v for k, v in cells.items())


def registered_cells(
    claim: Claim,
    cells: Mapping[str, Any],
    records_by_cell: Mapping[str, Any],
    extra: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The cells the claim's ``cells`` filter (and a hypothesis' own, ``extra``) keeps, all of them without one."""
    filters = {**(claim.cells or {}), **(extra or {})}
    if not filters:
        return dict(cells)
    keep = {}
    for cell, value in cells.items():
        recs = [r for rs in records_by_cell[cell].values() for r in rs]
        if recs and all(matches_filter(r["config"], filters) for r in recs):
            keep[cell] = value
    return keep


# -- the peer gate (registry v3) ---------------------------------------------------------------------------------------
AT_PEER_GRADE, BELOW_PEER_GRADE, NO_REFERENCE = "at peer", "below peer", "no reference"


def peer_grade(by_arm: Mapping[str, Sequence[Mapping[str, Any]]], level: float = PEER_LEVEL) -> str:
    """A cell's grade: *no reference* where its baseline has no published figure (or no baseline runs), *below
    peer* where its median misses one of them (normalized score < ``level``), else *at peer*. A figure at a larger
    budget with no learning-curve point near the cell's (:attr:`PeerCheck.reached_only`) grades *at peer* when
    reached and *no reference* (at this budget) when missed, never *below peer*."""
    checks = peer_checks(by_arm)
    if not checks:
        return NO_REFERENCE
    if any(c.norm_median < level and not c.reached_only for c in checks):
        return BELOW_PEER_GRADE
    return AT_PEER_GRADE if all(c.norm_median >= level for c in checks) else NO_REFERENCE


def combined_grade(grades: Iterable[str]) -> str:
    """A design cell's grade from its algorithms' cells: below peer if any is, at peer if all are, else no
    reference."""
    grades = list(grades)
    if BELOW_PEER_GRADE in grades:
        return BELOW_PEER_GRADE
    return AT_PEER_GRADE if grades and all(g == AT_PEER_GRADE for g in grades) else NO_REFERENCE


def design_cell_of(config: Mapping[str, Any]) -> str:
    """A run's design cell, ``"task [steps=N]"``: its task and budget, whatever the algorithm."""
    budget = cell_value(config, BUDGET_KEY)
    return config["task"] + (f" [steps={json.dumps(budget)}]" if budget is not None else "")


def design_cells(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Design cells: ``{"task [steps=N]": {"algo:arm label": [records]}}`` -- one cell per (task, budget) across
    algorithms, an arm per (algorithm, norm label), so SAC + WN meets CrossQ on the same task and budget."""
    cells: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(records, key=lambda r: (r["config"]["seed"], r["run_id"])):
        c = r["config"]
        cells[design_cell_of(c)][f"{c['algo']}:{arm_label_of(r)}"].append(r)
    return {c: dict(v) for c, v in sorted(cells.items())}


def design_grade(by_design_arm: Mapping[str, Sequence[Mapping[str, Any]]], level: float = PEER_LEVEL) -> str:
    """The peer grade of a design cell: each algorithm's runs graded as their own cell, then combined."""
    by_algo: dict[str, dict[str, Sequence[Mapping[str, Any]]]] = defaultdict(dict)
    for label, recs in by_design_arm.items():
        algo, _, arm = label.partition(":")
        by_algo[algo][arm] = recs
    return combined_grade(peer_grade(by_arm, level) for by_arm in by_algo.values())


# -- tuned stage ------------------------------------------------------------------------------------------------------
def tuned_records(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The evaluation records at each (cell, norm)'s tuned choice, the tuned parameter names, and one line per
    choice (from the tuning-stage records, :func:`wnbench.suite.tuning.choose_from_records`)."""
    from wnbench.suite.tuning import choose_from_records, matches_choice

    tune = [r for r in records if stage_of(r) == "tune"]
    if not tune:
        return [], [], []
    choices = choose_from_records(tune)
    keys = sorted({k for c in choices.values() for k in c.choice})
    out, lines = [], []
    for group, chosen in choices.items():
        lines.append(f"{group.label}: {chosen.describe()}")
        for r in records:
            if stage_of(r) != "tune" and group.matches(r) and matches_choice(r, chosen.choice):
                out.append(r)
    return out, keys, lines
