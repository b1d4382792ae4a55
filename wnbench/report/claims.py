"""From stored records to one result per claim C1-C8: scores, comparisons, verdicts, tables.

Scoring (written into every report):

- A run's score is its kind's headline metric (``Scoring.primary``: RL ``final_return``; VAE test ELBO; image GAN
  classifier-feature FID; mixture GAN modes covered; toy test MSE), oriented so higher is better.
- A *cell* is everything about a run except its norm and seed (kind, task, algo and the parameters that vary
  within the claim's records). Each cell's scores, all norms together, are min-max normalized to [0, 1]; a
  diverged run (or one whose metric is not finite) scores as the worst value of its cell. Failed and timed-out
  runs carry no result: they are counted and listed, not scored.
- IQM over all runs and cells, P(X > Y) per cell averaged over cells (ties count half), each with a 95%
  stratified (per-cell) bootstrap interval, rliable, 2,000 resamples, fixed seed.
- Verdict: *supported* when the interval of the headline probability lies above 0.5, *contradicted* when below,
  *inconclusive* otherwise, *insufficient data* with fewer than 3 scored runs per cell on either side.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wnbench.suite.kinds import Scoring, get_kind

from . import stats
from .records import Inputs

WN, BN, NONE = "weight", "batch", "none"
LR_KEYS = ("learning_rate", "lr")
#: C5: a learning rate is "good" for a run when its normalized score is within this of the best median score.
LR_TOLERANCE = 0.1
NO_DATA = "no data"


@dataclass(frozen=True)
class ClaimInfo:
    claim: str
    title: str
    measure: str


CLAIMS: dict[str, ClaimInfo] = {
    c.claim: c
    for c in (
        ClaimInfo("C1", "WN beats BN in noise-sensitive RL", "final return of SB3 agents, norm swapped"),
        ClaimInfo(
            "C2", "WN beats BN in generative models (VAE, GAN)", "test ELBO; feature FID; modes covered"
        ),
        ClaimInfo(
            "C3", "WN is cheaper than BN", "training throughput per CPU second; paired overhead benchmark"
        ),
        ClaimInfo("C4", "BN's minibatch statistics are a noise source", "spread of one input's output"),
        ClaimInfo("C5", "WN makes training more robust to the learning rate", "width of the good-LR range"),
        ClaimInfo("C6", "WN needs care with initialization", "WN with vs without data-dependent init"),
        ClaimInfo(
            "C7", "WN applies to recurrent nets, where BN does not", "RecurrentPPO return, WN-LSTM vs none"
        ),
        ClaimInfo(
            "C8", "For one layer with whitened input, WN with DDI behaves like BN", "numerical check at init"
        ),
    )
}


@dataclass
class Comparison:
    """P(x > y) on a set of cells, with the verdict it implies."""

    x: str
    y: str
    estimate: stats.Estimate | None
    cells: int
    runs_x: int  # fewest scored runs of x in one cell
    runs_y: int
    verdict: str

    @property
    def label(self) -> str:
        return f"P({self.x} > {self.y})"

    def as_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "x": self.x,
            "y": self.y,
            "probability": None if est is None else est.point,
            "ci_low": None if est is None else est.low,
            "ci_high": None if est is None else est.high,
            "cells": self.cells,
            "runs_per_cell": [self.runs_x, self.runs_y],
            "verdict": self.verdict,
        }


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    title: str
    path: str  # relative to the report directory


@dataclass
class ClaimResult:
    claim: str
    title: str
    measure: str
    verdict: str = NO_DATA
    headline: Comparison | None = None
    headline_text: str = "—"
    basis: str = "—"  # "3 tasks × 5 seeds"
    comparisons: list[Comparison] = field(default_factory=list)
    iqm: dict[str, stats.Estimate] = field(default_factory=dict)
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # norm -> status -> n
    missing: dict[str, int] = field(default_factory=dict)  # suite -> planned runs without a record
    problems: list[str] = field(default_factory=list)  # failed / timed-out runs, one line each
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    # For plots: {cell: {norm: [normalized score per run]}}; {cell: {norm: [record]}}
    cell_scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    cell_records: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict, repr=False)
    lr_curves: dict[str, dict[str, dict[float, np.ndarray]]] = field(default_factory=dict, repr=False)  # C5

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "title": self.title,
            "measure": self.measure,
            "verdict": self.verdict,
            "headline": None if self.headline is None else self.headline.as_dict(),
            "headline_text": self.headline_text,
            "basis": self.basis,
            "comparisons": [c.as_dict() for c in self.comparisons],
            "iqm_normalized": {n: [e.point, e.low, e.high] for n, e in self.iqm.items()},
            "status_counts": self.status_counts,
            "missing": self.missing,
            "problems": self.problems,
            "suites": self.suites,
            "notes": self.notes,
        }


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


def _cell_params(records: Sequence[Mapping[str, Any]], exclude: Iterable[str] = ()) -> list[str]:
    """Parameters whose value differs between records of the same (kind, task, algo): they split cells."""
    values: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for r in records:
        c = r["config"]
        for key, value in c["params"].items():
            values[(c["kind"], c["task"], c["algo"], key)].add(json.dumps(value, sort_keys=True))
    skip = set(exclude)
    return sorted({k[3] for k, v in values.items() if len(v) > 1 and k[3] not in skip})


def cell_of(record: Mapping[str, Any], split: Sequence[str]) -> str:
    c = record["config"]
    extra = ", ".join(f"{k}={json.dumps(c['params'].get(k))}" for k in split)
    return f"{c['task']}/{c['algo']}" + (f" [{extra}]" if extra else "")


def group_cells(
    records: Sequence[dict[str, Any]], exclude_params: Iterable[str] = ()
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{cell: {norm: [records in seed order]}}``."""
    split = _cell_params(records, exclude_params)
    cells: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    order: dict[str, tuple[Any, ...]] = {}
    for r in sorted(records, key=lambda r: (r["config"]["seed"], r["run_id"])):
        cell = cell_of(r, split)
        cells[cell][r["config"]["norm"]].append(r)
        c = r["config"]
        values = [c["params"].get(k) for k in split]  # numbers in numeric order (batch 4 before 16)
        order[cell] = (
            c["task"],
            c["algo"],
            *[(0, v, "") if isinstance(v, int | float) else (1, 0, json.dumps(v)) for v in values],
        )
    return {c: dict(cells[c]) for c in sorted(cells, key=lambda c: order[c])}


def normalized_cells(
    cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]],
    score: Callable[[dict[str, Any]], tuple[float, bool]] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Per cell, each norm's scored runs normalized to [0, 1] over all norms of the cell (diverged = worst)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for cell, by_norm in cells.items():
        raw: dict[str, list[float]] = {}
        higher = True
        for norm, recs in by_norm.items():
            values = []
            for r in recs:
                if not is_scored(r):
                    continue
                if score is not None:
                    value, higher = score(r)
                else:
                    info = metric_of(r)
                    if info is None:
                        continue
                    value = raw_score(r, info[0])
                    higher = info[1]
                values.append(value)
            if values:
                raw[norm] = values
        if not raw:
            continue
        matrices, _ = stats.normalize_scores({n: {cell: v} for n, v in raw.items()}, higher_is_better=higher)
        out[cell] = {n: m[:, 0] for n, m in matrices.items() if m.size}
    return out


def compare(
    scores: Mapping[str, Mapping[str, np.ndarray]], x: str, y: str, seed: int = 0, reps: int = 2000
) -> Comparison:
    """P(x > y) over the cells where both norms have scored runs."""
    cells = [c for c, by in scores.items() if len(by.get(x, ())) and len(by.get(y, ()))]
    if not cells:
        return Comparison(x, y, None, 0, 0, 0, stats.INSUFFICIENT)
    runs_x = min(len(scores[c][x]) for c in cells)
    runs_y = min(len(scores[c][y]) for c in cells)
    mx = np.stack([scores[c][x][:runs_x] for c in cells], axis=1)
    my = np.stack([scores[c][y][:runs_y] for c in cells], axis=1)
    estimate = None
    if min(runs_x, runs_y) >= 2:
        estimate = stats.probability_of_improvement(mx, my, reps=reps, seed=seed)
    return Comparison(x, y, estimate, len(cells), runs_x, runs_y, stats.verdict(estimate, runs_x, runs_y))


def iqm_by_norm(
    scores: Mapping[str, Mapping[str, np.ndarray]], reps: int = 2000
) -> dict[str, stats.Estimate]:
    """IQM of normalized scores per norm, over the cells where that norm has at least 2 runs."""
    norms = sorted({n for by in scores.values() for n in by})
    out = {}
    for norm in norms:
        cells = [c for c, by in scores.items() if len(by.get(norm, ())) >= 2]
        if not cells:
            continue
        runs = min(len(scores[c][norm]) for c in cells)
        out[norm] = stats.iqm(np.stack([scores[c][norm][:runs] for c in cells], axis=1), reps=reps)
    return out


def _basis(comparison: Comparison | None) -> str:
    if comparison is None or not comparison.cells:
        return "—"
    seeds = min(comparison.runs_x, comparison.runs_y)
    return f"{comparison.cells} task{'s' if comparison.cells != 1 else ''} × {seeds} seed{'s' if seeds != 1 else ''}"


def _status_counts(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        counts[r["config"]["norm"]][r["status"]] += 1
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


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"


def _median_table(cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]], title: str) -> Table:
    """Median raw headline metric per cell and norm (diverged runs counted as such), with run counts."""
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        metric = next(filter(None, (metric_of(r) for recs in by_norm.values() for r in recs)), None)
        row = [cell, metric[0] if metric else "—"]
        for norm in norms:
            recs = [r for r in by_norm.get(norm, []) if is_scored(r)]
            if not recs or metric is None:
                row.append("—")
                continue
            values = np.array([raw_score(r, metric[0]) for r in recs])
            finite = values[np.isfinite(values)]
            diverged = int((~np.isfinite(values)).sum())
            text = _fmt(float(np.median(finite))) if finite.size else "diverged"
            row.append(text + (f" ({diverged} div.)" if diverged and finite.size else "") + f" n={len(recs)}")
        rows.append(row)
    return Table(title, ["cell", "metric", *norms], rows)


_ORDER = [
    "none",
    "batch",
    "batch_renorm",
    "layer",
    "group",
    "weight",
    "weight_ddi",
    "weight_meanonly",
    "spectral",
]


def norm_order(norm: str) -> tuple[int, str]:
    """Sort key: the usual norm order (none, batch, ..., spectral), options after their kind, unknowns last."""
    base = norm.split("[", 1)[0]
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), norm)


def _comparison_table(comparisons: Sequence[Comparison], title: str) -> Table:
    rows = [
        [c.label, str(c.estimate) if c.estimate else "—", f"{c.cells} × {min(c.runs_x, c.runs_y)}", c.verdict]
        for c in comparisons
    ]
    return Table(title, ["comparison", "probability [95% CI]", "tasks × seeds", "verdict"], rows)


def _iqm_table(iqm: Mapping[str, stats.Estimate]) -> Table:
    rows = [[n, str(e)] for n, e in sorted(iqm.items(), key=lambda kv: norm_order(kv[0]))]
    return Table("IQM of normalized score [95% CI]", ["norm", "IQM"], rows)


def _records_for(inputs: Inputs, claim: str) -> list[dict[str, Any]]:
    return [r for r in inputs.records if claim in r.get("claims", [])]


def _missing_for(inputs: Inputs, claim: str) -> dict[str, int]:
    missing = inputs.missing_by_suite()
    return {
        m.suite: missing.get(m.suite, 0)
        for m in inputs.manifests
        if claim in m.claims and missing.get(m.suite)
    }


def _base(result: ClaimResult, records: list[dict[str, Any]], inputs: Inputs) -> None:
    result.status_counts = _status_counts(records)
    result.problems = _problems(records)
    result.missing = _missing_for(inputs, result.claim)
    result.suites = sorted({r["suite"] for r in records})


def _pairwise(
    result: ClaimResult,
    scores: Mapping[str, Mapping[str, np.ndarray]],
    headline: tuple[str, str],
    extra_against: Sequence[str] = (NONE,),
    only: Sequence[str] | None = None,
    reps: int = 2000,
) -> None:
    """Headline comparison, then every norm (or those in ``only``) against each of ``extra_against``."""
    result.headline = compare(scores, *headline, reps=reps)
    result.verdict = result.headline.verdict
    result.basis = _basis(result.headline)
    result.headline_text = (
        f"{result.headline.label} = {result.headline.estimate}" if result.headline.estimate else "—"
    )
    norms = sorted({n for by in scores.values() for n in by}, key=norm_order)
    seen = {headline}
    comparisons = [result.headline]
    for y in extra_against:
        for x in norms:
            if only is not None and x not in only:
                continue
            if x != y and (x, y) not in seen and y in norms:
                seen.add((x, y))
                comparisons.append(compare(scores, x, y, reps=reps))
    result.comparisons = comparisons


def analyze_comparison_claim(
    inputs: Inputs,
    claim: str,
    headline: tuple[str, str] = (WN, BN),
    cell_filter: Callable[[dict[str, Any]], bool] | None = None,
    only: Sequence[str] | None = None,
    reps: int = 2000,
) -> ClaimResult:
    """C1, C2, C6, C7: norms compared on the claim's headline metric."""
    info = CLAIMS[claim]
    result = ClaimResult(claim, info.title, info.measure)
    records = _records_for(inputs, claim)
    _base(result, records, inputs)
    if not records:
        return result
    cells = group_cells(records)
    scores = normalized_cells(cells)
    result.cell_records, result.cell_scores = cells, scores
    headline_scores = scores
    if cell_filter is not None:
        keep = {c for c, by in cells.items() if any(cell_filter(r) for recs in by.values() for r in recs)}
        headline_scores = {c: s for c, s in scores.items() if c in keep}
    _pairwise(result, headline_scores, headline, only=only, reps=reps)
    result.iqm = iqm_by_norm(headline_scores, reps=reps)
    result.tables.append(_median_table(cells, "Median of the headline metric per cell (raw units)"))
    result.tables.append(_comparison_table(result.comparisons, "Comparisons (normalized scores)"))
    result.tables.append(_iqm_table(result.iqm))
    return result


def analyze_c3(inputs: Inputs, reps: int = 2000) -> ClaimResult:
    """C3: throughput of the benchmark runs themselves (RL env steps per CPU second; generative runs' CPU
    seconds), WN vs BN per cell; and the paired micro-benchmark table when ``overhead.json`` is given."""
    info = CLAIMS["C3"]
    result = ClaimResult("C3", info.title, info.measure)
    records = [
        r for r in inputs.records if {"C1", "C2"} & set(r.get("claims", [])) and r["status"] == "finished"
    ]

    def throughput(r: dict[str, Any]) -> tuple[float, bool]:
        if "steps_per_cpu_s" in r["metrics"]:
            return float(r["metrics"]["steps_per_cpu_s"] or math.nan), True
        cpu = (r.get("timings") or {}).get("run_cpu_s")
        return (float(cpu) if cpu else math.nan), False

    if records:
        result.suites = sorted({r["suite"] for r in records})
        cells = group_cells(records)
        scores = normalized_cells(cells, throughput)
        result.cell_scores = scores
        _pairwise(result, scores, (WN, BN), extra_against=(NONE,), reps=reps)
        result.iqm = iqm_by_norm(scores, reps=reps)
        result.headline_text = result.headline_text.replace(" > ", " faster than ", 1)
        rows = []
        norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
        for cell, by_norm in cells.items():
            base = [throughput(r)[0] for r in by_norm.get(NONE, [])]
            if not base:
                continue
            ref = float(np.median(base))
            higher = throughput(by_norm[NONE][0])[1]
            row = [cell, "steps per CPU s" if higher else "CPU s per run (inverted)"]
            for norm in norms:
                if norm not in by_norm:
                    row.append("—")
                    continue
                med = float(np.median([throughput(r)[0] for r in by_norm[norm]]))
                row.append(_fmt(med / ref if higher else ref / med, 2))
            rows.append(row)
        result.tables.append(
            Table(
                "Median throughput relative to no norm (higher is faster)", ["cell", "measure", *norms], rows
            )
        )
        result.tables.append(
            _comparison_table(result.comparisons, "P(faster) per pair (normalized throughput)")
        )
    overhead = inputs.bench.get("overhead")
    if overhead:
        rows = [
            [
                r["model"],
                r["norm"],
                f"{r['train_step_ratio']:.2f} [{r['train_step_ratio_q25']:.2f}, {r['train_step_ratio_q75']:.2f}]",
                f"{r['act_step_ratio']:.2f} [{r['act_step_ratio_q25']:.2f}, {r['act_step_ratio_q75']:.2f}]",
                f"{r['peak_memory_ratio']:.2f}",
            ]
            for r in overhead["rows"]
        ]
        meta = overhead.get("meta", {})
        result.tables.append(
            Table(
                f"Paired overhead benchmark (ratio to no norm, median [IQR] of {meta.get('repeats', '?')} "
                f"interleaved repeats, {meta.get('device', '?')}, {meta.get('torch_threads', '?')} thread)",
                ["model", "norm", "train step", "act step", "peak memory"],
                rows,
            )
        )
        wn = {r["model"]: r for r in overhead["rows"] if r["norm"] == WN}
        bn = {r["model"]: r for r in overhead["rows"] if r["norm"] == BN}
        cheaper = [
            f"{m}: train {wn[m]['train_step_ratio']:.2f}× vs {bn[m]['train_step_ratio']:.2f}×, act "
            f"{wn[m]['act_step_ratio']:.2f}× vs {bn[m]['act_step_ratio']:.2f}×, memory "
            f"{wn[m]['peak_memory_ratio']:.2f}× vs {bn[m]['peak_memory_ratio']:.2f}×"
            for m in wn
            if m in bn
        ]
        if cheaper:
            result.notes.append("WN vs BN in the paired benchmark — " + "; ".join(cheaper) + ".")
        if result.headline is None:
            result.verdict = "see table"
    return result


def analyze_c4(inputs: Inputs, reps: int = 2000) -> ClaimResult:
    """C4: the noise benchmark (the mechanism) and, when present, batch-size sweeps in training."""
    info = CLAIMS["C4"]
    result = ClaimResult("C4", info.title, info.measure)
    noise = inputs.bench.get("noise")
    if noise:
        rows_by_norm: dict[str, dict[int, float]] = defaultdict(dict)
        for r in noise["rows"]:
            rows_by_norm[r["norm"]][int(r["batch_size"])] = float(r["relative_spread"])
        sizes = sorted({b for by in rows_by_norm.values() for b in by})
        result.tables.append(
            Table(
                f"Relative spread of one input's output across {noise['meta'].get('companions', '?')} companion "
                "sets (train mode; 0 = no batch dependence)",
                ["norm", *[f"B={b}" for b in sizes]],
                [[n, *[_fmt(by.get(b, math.nan)) for b in sizes]] for n, by in rows_by_norm.items()],
            )
        )
        bn, wn = rows_by_norm.get(BN), rows_by_norm.get(WN)
        if bn and wn:
            small, large = min(bn), max(bn)
            noisy = all(v > 0 for v in bn.values()) and bn[small] > bn[large]
            wn_zero = all(abs(v) < 1e-6 for v in wn.values())
            result.verdict = stats.SUPPORTED if noisy and wn_zero else stats.CONTRADICTED
            result.headline_text = f"BN spread {bn[small]:.3f} at B={small} → {bn[large]:.3f} at B={large}; WN {max(wn.values()):.1g}"
            result.basis = f"{len(sizes)} batch sizes × {noise['meta'].get('companions', '?')} companion sets"
            result.notes.append(
                "Verdict rule (deterministic measurement, no bootstrap): supported when BN's spread is positive at "
                "every batch size and larger at the smallest than at the largest, and WN's is zero."
            )
    records = _records_for(inputs, "C4")
    if records:
        _base(result, records, inputs)
        cells = group_cells(records)
        scores = normalized_cells(cells)
        result.cell_records, result.cell_scores = cells, scores
        per_cell = {c: compare({c: s}, _wn_variant(s), BN, reps=reps) for c, s in scores.items() if BN in s}
        result.comparisons = list(per_cell.values())
        result.tables.append(
            _median_table(cells, "Training with small and large batches: median headline metric")
        )
        table = _comparison_table(result.comparisons, "WN vs BN per cell")
        table.header.insert(0, "cell")
        for row, cell in zip(table.rows, per_cell, strict=True):
            row.insert(0, cell)
        result.tables.append(table)
    return result


def _wn_variant(by_norm: Mapping[str, Any]) -> str:
    """The WN variant a sweep ran: plain WN when present, else WN with DDI."""
    return WN if WN in by_norm else "weight_ddi"


def _lr_of(record: Mapping[str, Any]) -> float | None:
    for key in LR_KEYS:
        value = record["config"]["params"].get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def good_lr_width(lrs: Sequence[float], scores: Sequence[float], best: float, tolerance: float) -> float:
    """Width, in decades, of the widest run of adjacent grid rates whose score is within ``tolerance`` of ``best``
    (a single good rate counts as one grid step; grids are log-spaced)."""
    order = np.argsort(lrs)
    lrs_sorted = np.log10(np.asarray(lrs, dtype=float)[order])
    good = np.asarray(scores, dtype=float)[order] >= best - tolerance
    step = float(np.median(np.diff(lrs_sorted))) if len(lrs_sorted) > 1 else 1.0
    widest = run = 0
    for flag in good:
        run = run + 1 if flag else 0
        widest = max(widest, run)
    return widest * step


def analyze_c5(inputs: Inputs, reps: int = 2000) -> ClaimResult:
    """C5: learning-rate sweeps; per (cell, norm, seed) the width of the good-LR range, then P(width WN > BN)."""
    info = CLAIMS["C5"]
    result = ClaimResult("C5", info.title, info.measure)
    claim_records = _records_for(inputs, "C5")
    _base(result, claim_records, inputs)
    records = [r for r in claim_records if _lr_of(r) is not None]
    if not records:
        return result
    cells = group_cells(records, exclude_params=LR_KEYS)
    widths: dict[str, dict[str, np.ndarray]] = {}
    curves: dict[str, dict[str, dict[float, np.ndarray]]] = {}
    table_rows = []
    single_rate = [c for c, by in cells.items() if len({_lr_of(r) for rs in by.values() for r in rs}) < 2]
    if single_rate:
        result.notes.append(f"Not a sweep (one learning rate), left out of C5: {', '.join(single_rate)}.")
    for cell, by_norm in cells.items():
        if cell in single_rate:
            continue
        # one group per (norm, rate), normalized together: the whole cell shares one scale
        by_norm_lr: dict[str, dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for norm, recs in by_norm.items():
            for r in recs:
                by_norm_lr[norm][_lr_of(r)].append(r)
        groups = {f"{n}\t{lr}": recs for n, lrs in by_norm_lr.items() for lr, recs in lrs.items()}
        normalized = normalized_cells({cell: groups}).get(cell, {})
        if not normalized:
            continue
        medians = {g: float(np.median(v)) for g, v in normalized.items() if len(v)}
        best = max(medians.values())
        curves[cell] = defaultdict(dict)
        widths[cell] = {}
        for norm, lrs in by_norm_lr.items():
            rates = sorted(lrs)
            per_rate = [normalized.get(f"{norm}\t{lr}", np.array([])) for lr in rates]
            for lr, values in zip(rates, per_rate, strict=True):
                curves[cell][norm][lr] = values
            seeds = min(len(v) for v in per_rate)
            if seeds == 0:
                continue
            widths[cell][norm] = np.array(
                [good_lr_width(rates, [v[s] for v in per_rate], best, LR_TOLERANCE) for s in range(seeds)]
            )
            diverged = sum(1 for lr in rates for r in lrs[lr] if r["status"] == "diverged")
            median_scores = [float(np.median(v)) if len(v) else math.nan for v in per_rate]
            good = [lr for lr, m in zip(rates, median_scores, strict=True) if m >= best - LR_TOLERANCE]
            table_rows.append(
                [
                    cell,
                    norm,
                    f"{float(np.median(widths[cell][norm])):.2f}",
                    ", ".join(f"{lr:g}" for lr in good) or "none",
                    str(diverged),
                    str(seeds),
                ]
            )
    result.cell_scores = widths
    result.cell_records = cells
    result.lr_curves = curves
    wn = _wn_variant({n for by in widths.values() for n in by})
    _pairwise(result, widths, (wn, BN), extra_against=(NONE,), reps=reps)
    if result.headline and result.headline.estimate:
        h = result.headline
        result.headline_text = f"P(good-LR range of {h.x} wider than {h.y}'s) = {h.estimate}"
    result.tables.append(
        Table(
            f"Good-LR range (normalized score within {LR_TOLERANCE} of the cell's best median)",
            [
                "cell",
                "norm",
                "median width (decades)",
                "good rates (median over seeds)",
                "diverged runs",
                "seeds",
            ],
            sorted(table_rows, key=lambda r: (r[0], norm_order(r[1]))),
        )
    )
    result.tables.append(_comparison_table(result.comparisons, "P(wider good-LR range) per pair"))
    return result


def analyze_c8(inputs: Inputs) -> ClaimResult:
    info = CLAIMS["C8"]
    result = ClaimResult("C8", info.title, info.measure)
    ddi = inputs.bench.get("ddi")
    if not ddi:
        return result
    rows = ddi["rows"]
    tolerance = float(ddi["meta"].get("init_tolerance", 1e-3))
    worst = max(r["init_max_abs_diff"] for r in rows)
    fresh = [r["fresh_mean_abs_diff"] for r in rows]
    result.verdict = stats.SUPPORTED if worst < tolerance else stats.CONTRADICTED
    result.headline_text = f"max |WN+DDI − BN| on the init batch = {worst:.1e} (tolerance {tolerance:g})"
    result.basis = f"{len({(r['in_features'], r['out_features']) for r in rows})} layer shapes × {len({r['seed'] for r in rows})} seeds"
    result.tables.append(
        Table(
            "WN+DDI vs BN, one layer, ZCA-whitened input (output units have unit variance)",
            [
                "layer",
                "seeds",
                "max |diff| init batch",
                "mean |diff| init batch",
                "mean |diff| fresh batch (median)",
            ],
            [
                [
                    f"{i}→{o}",
                    str(len(group)),
                    f"{max(r['init_max_abs_diff'] for r in group):.1e}",
                    f"{float(np.mean([r['init_mean_abs_diff'] for r in group])):.1e}",
                    f"{float(np.median([r['fresh_mean_abs_diff'] for r in group])):.3f}",
                ]
                for (i, o) in sorted({(r["in_features"], r["out_features"]) for r in rows})
                for group in [[r for r in rows if (r["in_features"], r["out_features"]) == (i, o)]]
            ],
        )
    )
    result.notes.append(
        f"On a fresh whitened batch the two differ by {min(fresh):.3f}–{max(fresh):.3f} output standard deviations "
        "(mean |diff|): BN re-estimates the batch statistics that WN fixed at init."
    )
    return result


def seed_spread_table(result: ClaimResult) -> Table:
    """C6: how much a norm's normalized score varies across seeds (standard deviation per cell, then median)."""
    rows = []
    norms = sorted({n for by in result.cell_scores.values() for n in by}, key=norm_order)
    for norm in norms:
        spreads = [
            float(np.std(by[norm], ddof=1)) for by in result.cell_scores.values() if len(by.get(norm, ())) > 1
        ]
        if spreads:
            rows.append([norm, f"{float(np.median(spreads)):.3f}", f"{max(spreads):.3f}", str(len(spreads))])
    return Table(
        "Spread across seeds (std of normalized score within a cell)",
        ["norm", "median over cells", "largest cell", "cells"],
        rows,
    )


def analyze(inputs: Inputs, reps: int = 2000) -> list[ClaimResult]:
    """One result per claim, C1-C8, whether or not data for it was given (``reps`` bootstrap resamples)."""
    c6 = analyze_comparison_claim(
        inputs, "C6", headline=("weight_ddi", WN), only=(WN, "weight_ddi"), reps=reps
    )
    if c6.cell_scores:
        c6.tables.insert(1, seed_spread_table(c6))
    c7 = analyze_comparison_claim(
        inputs,
        "C7",
        headline=(WN, NONE),
        cell_filter=lambda r: r["config"]["algo"].startswith("recurrent"),
        reps=reps,
    )
    if c7.cell_scores:
        c7.notes.append(
            "Batch-statistic norms (batch, batch_renorm, weight_meanonly) are refused inside an LSTM by the norm "
            "factory (one set of statistics cannot serve every time step), so C7 has no BN arm; the headline is "
            "WN-LSTM against the unnormalized LSTM in RecurrentPPO cells; feed-forward PPO on the same masked task "
            "is the memory-free reference."
        )
    results = [
        analyze_comparison_claim(inputs, "C1", reps=reps),
        analyze_comparison_claim(inputs, "C2", reps=reps),
        analyze_c3(inputs, reps),
        analyze_c4(inputs, reps),
        analyze_c5(inputs, reps),
        c6,
        c7,
        analyze_c8(inputs),
    ]
    return results
