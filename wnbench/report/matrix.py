"""The practitioner's matrix (registry ``matrix``): which norm, where. One row per algorithm family and generative
model, one column per arm; each entry is the arm's effect against no norm, described over tasks (never decided).

An entry: the median over the row's tasks of the task-level effect of the arm against ``none`` -- RL rows on the
fixed-anchor normalized score (random policy 0, rl-zoo reference 1; :mod:`wnbench.report.anchors`), difference of
means; generative rows, where no fixed anchor exists for every metric, P(arm > none) - 0.5 -- with the sign-flip
(Hartigan subset-mean) 95% interval over tasks (:class:`wnbench.report.inference.SignFlip`; not multiplicity
corrected: description), the normalized-AUC difference where records carry ``auc_normalized``, and the train-step
cost ratio to no norm from the overhead benchmark. A task's effect is the mean over its cells (cells: everything
but norm and seed, :func:`wnbench.report.cells.group_cells`); each cell compares its arms with its own no-norm
arm (off-policy: each design with its own no-norm runs, SAC, TD3 and CrossQ cells of a task averaged; a CrossQ
cell run only in its own design, BN, has no no-norm arm and is measured against SAC's on the same task and budget).

The best arm per row (highest median; no norm counts, at 0) is marked ★; an arm is marked ≈ (indistinguishable
from the best) when the lower end of the 95% task-level interval of P(best > arm) is at most 0.5 + the
registry's equivalence margin: the data cannot show the best ahead by more than a negligible amount. With fewer
than 6 tasks no 95% sign-flip interval exists (its smallest p-value is 2 / 2^k), so every arm of such a row is ≈.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .anchors import Anchor, rl_anchor
from .cells import design_cell_of, group_cells, is_scored, raw_score, score_cell, stage_of
from .inference import DIFFERENCE, PROBABILITY, SignFlip, task_effects
from .records import Inputs
from .registry import arm_of, is_careless_init, parse_label
from .results import Table
from .stats import ALPHA, Cell

NONE = "none"
#: Where each row's cells come from: (record kind, algorithms or models, datasets or None for any).
TWO_D = ("ring8", "grid25", "swissroll", "checkerboard", "spirals", "moons", "pinwheel", "circles")
ROW_CELLS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...] | None]] = {
    "on-policy": ("rl", ("ppo", "a2c"), None),
    "value-based": ("rl", ("dqn",), None),
    "off-policy": ("rl", ("sac", "td3", "crossq"), None),
    "recurrent": ("rl", ("recurrentppo",), None),
    "gan-2d": ("gen", ("gan",), TWO_D),
    "gan-image": ("gen", ("gan",), None),  # every GAN dataset that is not a 2-D density
    "vae": ("gen", ("vae",), None),
    "diffusion": ("gen", ("diffusion",), None),
}
#: Off-policy designs run only with their own norm (CrossQ is BN without a target network): where such a cell has
#: no no-norm arm, its arms are measured against the no-norm runs of ``DESIGN_REFERENCE`` on the same task and
#: budget -- design against design, as C1's off-policy hypotheses compare them.
DESIGNS = ("crossq",)
DESIGN_REFERENCE = "sac"
#: The overhead benchmark's networks whose train-step ratio stands for a row's cost (the mean over those present).
COST_MODELS = {"recurrent": ("lstm_t16",), "gan-image": ("dcgan_d", "dcgan_g")}
DEFAULT_COST_MODELS = ("mlp",)
#: An arm whose train step is another's (DDI changes the init only; running statistics change evaluation only).
COST_ALIASES = {"weight_ddi": "weight", "weight+meanonly": "weight_meanonly"}
ABSENT = "—"


@dataclass(frozen=True)
class MatrixSpec:
    """The registry's ``matrix`` section plus the constants it uses from ``method``."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cell_width: int = 40
    margin: float = 0.07  # the equivalence margin in P units (``method.margins.equivalence``)
    min_runs: int = 3  # scored runs an arm needs in a cell to enter it

    def __post_init__(self) -> None:
        unknown = [r for r in self.rows if r not in ROW_CELLS]
        if unknown:
            raise ValueError(f"matrix.rows: unknown row(s) {unknown}; known: {list(ROW_CELLS)}")
        if NONE not in self.columns:
            raise ValueError("matrix.columns: must include 'none' (every entry is relative to it)")


def matrix_spec(registry: Any) -> MatrixSpec | None:
    """The registry's matrix section as a :class:`MatrixSpec`; ``None`` for a registry without one (v2)."""
    section = getattr(registry, "matrix", None)
    if section is None:
        return None
    get = section.get if isinstance(section, Mapping) else lambda k, d=None: getattr(section, k, d)
    method = getattr(registry, "method", None)
    margins = getattr(method, "margins", None)
    margin = getattr(margins, "equivalence", None)
    if margin is None:
        margin = registry.defaults.rope if hasattr(registry, "defaults") else 0.07
    min_runs = getattr(method, "min_runs", None) or getattr(
        getattr(registry, "defaults", None), "min_runs", 3
    )
    return MatrixSpec(tuple(get("rows")), tuple(get("columns")), int(get("cell_width", 40) or 40),
                      float(margin), int(min_runs))  # fmt: skip


@dataclass
class MatrixEntry:
    """One arm in one row: median task-level effect against no norm with its interval, AUC, cost, marks."""

    arm: str
    tasks: int
    median: float
    low: float
    high: float
    auc: float | None = None
    cost: float | None = None
    best: bool = False
    tied: bool = False  # indistinguishable from the best (see the module docstring)
    p_best: tuple[float, float, float] | None = None  # P(best > arm): point, low, high over tasks
    row_tasks: int = 0  # the row's task count (the cell shows ``nK`` when this arm ran on fewer)

    def text(self) -> str:
        """The compact cell: ``★ +0.12 [-0.05,+0.30] auc+0.10 ×1.09`` (``n3``: the arm ran on 3 of the row's tasks)."""
        mark = "★ " if self.best else ("≈ " if self.tied else "")
        ci = (
            f"[{self.low:+.2f},{self.high:+.2f}]"
            if math.isfinite(self.low) and math.isfinite(self.high)
            else "[—]"
        )
        auc = f" auc{self.auc:+.2f}" if self.auc is not None and math.isfinite(self.auc) else ""
        cost = f" ×{self.cost:.2f}" if self.cost is not None else f" ×{ABSENT}"
        fewer = f" n{self.tasks}" if self.row_tasks and self.tasks < self.row_tasks else ""
        return f"{mark}{self.median:+.2f} {ci}{auc}{cost}{fewer}"

    def as_dict(self) -> dict[str, Any]:
        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else float(v)

        return {"arm": self.arm, "tasks": self.tasks, "median": num(self.median), "ci95": [num(self.low),
                num(self.high)], "auc": num(self.auc), "cost_ratio": num(self.cost), "best": self.best,
                "indistinguishable_from_best": self.tied,
                "p_best_over_arm": None if self.p_best is None else [num(v) for v in self.p_best]}  # fmt: skip


@dataclass
class MatrixRow:
    name: str
    scale: str  # what the median is of
    tasks: tuple[str, ...]
    entries: dict[str, MatrixEntry] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} ({len(self.tasks)} task{'s' * (len(self.tasks) != 1)})"


@dataclass
class Matrix:
    spec: MatrixSpec
    rows: list[MatrixRow]

    @property
    def columns(self) -> list[str]:
        """The registry's columns that some row has."""
        return [c for c in self.spec.columns if any(c in row.entries for row in self.rows)]

    def table(self) -> Table:
        """The compact Markdown table (cells of at most ``spec.cell_width`` characters)."""
        rows = [[row.label, *[row.entries[c].text() if c in row.entries else ABSENT for c in self.columns]]
                for row in self.rows]  # fmt: skip
        return Table("The practitioner's matrix: each arm against no norm, median over tasks", ["row", *self.columns],
                     rows)  # fmt: skip

    def notes(self) -> list[str]:
        """How to read the table, and the cells left out."""
        out = [
            "Entry: ★/≈ mark, the median over the row's tasks of the arm minus no norm (RL rows: fixed-anchor "
            "normalized score, random policy 0, rl-zoo reference 1; generative rows: P(arm > none) − 0.5), its 95% "
            "sign-flip interval over tasks (description, not multiplicity-corrected; [—]: fewer than 6 tasks, where "
            "no 95% interval exists), the normalized-AUC difference (RL), and the train-step time ratio to no norm "
            "from the overhead benchmark (RL: mlp; recurrent: lstm_t16; image GAN: dcgan; other generative: mlp; "
            f"×{ABSENT}: not benchmarked; nK: the arm ran on K of the row's tasks). ★ best median in the row; ≈ the lower end of the 95% task-level interval "
            f"of P(best > arm) is at most 0.5 + {self.spec.margin:g} (not shown to be worse than the best by more "
            "than a negligible amount). Each cell compares its arms with its own no-norm runs; off-policy: SAC, TD3 "
            "and CrossQ cells of a task averaged, each against the same algorithm without a norm, except CrossQ "
            "run only as its advocates run it (with its batch renorm, no no-norm arm): its arms (batch_renorm, "
            "weight+batch_renorm) are then measured against SAC without a norm on the same task and budget, on "
            "SAC's anchors -- design against design, as in C1's hypothesis SAC + WN vs CrossQ."
        ]
        out += [f"{row.name}: left out: {'; '.join(row.left_out)}." for row in self.rows if row.left_out]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "margin": self.spec.margin,
            "rows": [{"row": r.name, "scale": r.scale, "tasks": list(r.tasks),
                      "entries": {c: r.entries[c].as_dict() for c in self.columns if c in r.entries},
                      "left_out": r.left_out} for r in self.rows],
        }  # fmt: skip


# -- building it ---------------------------------------------------------------------------------------------------
def matrix_records(inputs: Inputs, registry: Any) -> list[dict[str, Any]]:
    """The records the matrix reads: shared-hyperparameter (``eval``) runs, except those of another analysis'
    measurement (learning-rate and batch-size sweeps, careless-init arms): records of a suite that only
    non-comparison claims name, or tagged only with registered non-comparison claims."""
    claims = getattr(registry, "claims", ())
    comparison = {s for c in claims if c.analysis == "comparison" for s in c.suites}
    other_suites = {s for c in claims if c.analysis != "comparison" for s in c.suites} - comparison
    other_ids = {c.id for c in claims if c.analysis != "comparison"}

    def measured_elsewhere(record: Mapping[str, Any]) -> bool:
        tags = record.get("claims") or []
        return record["suite"] in other_suites or bool(tags) and all(t in other_ids for t in tags)

    return [r for r in inputs.records if stage_of(r) == "eval" and not measured_elsewhere(r)]


def _row_of(config: Mapping[str, Any]) -> str | None:
    for row, (kind, algos, tasks) in ROW_CELLS.items():
        if config["kind"] != kind or config["algo"] not in algos:
            continue
        if row == "gan-image" and config["task"] in TWO_D:
            continue
        if tasks is None or config["task"] in tasks:
            return row
    return None


@dataclass
class _RowCells:
    """A row's cells as arrays per column: normalized (difference scale), oriented (P scale), AUC."""

    normalized: list[Cell] = field(default_factory=list)
    oriented: list[Cell] = field(default_factory=list)
    auc: list[Cell] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def _by_column(
    by_label: Mapping[str, Sequence[dict[str, Any]]], columns: Sequence[str]
) -> dict[str, list[dict]]:
    """Records per matrix column (the most specific column matching each label; labels matching none, and
    careless-init arms, dropped; labels matching the same column pooled)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for label, recs in by_label.items():
        if is_careless_init(label):
            continue  # a careless-init arm (C6) is not its norm's arm
        column = arm_of(label, columns)
        if column is not None:
            out.setdefault(column, []).extend(recs)
    return out


def _auc_cell(by_column: Mapping[str, Sequence[dict[str, Any]]], anchor: Anchor | None = None) -> Cell:
    """Each arm's normalized AUC (``auc_normalized`` with ``anchor`` for every record, else the RL fixed anchors
    of each record's algorithm); empty when records lack it."""
    out: Cell = {}
    for column, recs in by_column.items():
        values = []
        for r in recs:
            fixed = anchor or rl_anchor(r["config"]["task"], r["config"]["algo"])
            value = raw_score(r, "auc_normalized") if is_scored(r) else math.nan
            if fixed is not None and math.isfinite(value):
                values.append(float(fixed.normalize(np.array([value]))[0]))
        if values:
            out[column] = np.array(values)
    return out


def _reference_none(
    cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]], columns: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """``{design cell (task and budget): no-norm records}`` of the cells of :data:`DESIGN_REFERENCE`: the baseline
    a design that has no no-norm form of its own is measured against."""
    out: dict[str, list[dict[str, Any]]] = {}
    for by_label in cells.values():
        first = next(r for rs in by_label.values() for r in rs)
        if first["config"]["kind"] == "rl" and first["config"]["algo"] == DESIGN_REFERENCE:
            none = _by_column(by_label, columns).get(NONE)
            if none:
                out.setdefault(design_cell_of(first["config"]), []).extend(none)
    return out


def _collect(records: Sequence[dict[str, Any]], spec: MatrixSpec) -> dict[str, _RowCells]:
    out = {row: _RowCells() for row in spec.rows}
    grouped = group_cells(records)
    reference = _reference_none(grouped, spec.columns)
    for cell, by_label in grouped.items():
        first = next(r for rs in by_label.values() for r in rs)
        row = _row_of(first["config"])
        if row not in out:
            continue
        by_column = _by_column(by_label, spec.columns)
        anchor = None
        borrowed = (
            reference.get(design_cell_of(first["config"])) if first["config"]["algo"] in DESIGNS else None
        )
        if NONE not in by_column and borrowed:
            # a design with no no-norm form (CrossQ is BN): measured against SAC without a norm, same task and
            # budget, on SAC's anchor
            by_column = {NONE: borrowed, **by_column}
            anchor = rl_anchor(first["config"]["task"], DESIGN_REFERENCE)
            cell = f"{cell} (against {DESIGN_REFERENCE} without a norm)"
        scored = score_cell(by_column, anchor=anchor)
        if scored is None:
            continue
        keep = {c for c, v in scored.raw.items() if len(v) >= spec.min_runs}
        if NONE not in keep:
            out[row].left_out.append(f"{cell} (no-norm arm with fewer than {spec.min_runs} scored runs)")
            continue
        if keep == {NONE}:
            continue  # nothing to compare in this cell
        if ROW_CELLS[row][0] == "rl" and not scored.anchor.fixed:
            out[row].left_out.append(f"{cell} (no fixed anchor)")
            continue
        out[row].normalized.append({c: v for c, v in scored.normalized.items() if c in keep})
        out[row].oriented.append({c: v for c, v in scored.oriented.items() if c in keep})
        out[row].auc.append({c: v for c, v in _auc_cell(by_column, anchor).items() if c in keep})
        out[row].tasks.append(scored.task)
    return out


def _interval(estimates: np.ndarray) -> tuple[float, float]:
    if len(estimates) < 2:
        return -math.inf, math.inf
    low, high = SignFlip.of(estimates).interval(ALPHA)
    return float(low), float(high)


def _cost(row: str, arm: str, overhead: Mapping[str, Any] | None) -> float | None:
    """Mean train-step ratio to no norm over the row's benchmark networks; ``None`` when not benchmarked."""
    if not overhead:
        return None
    base, _ = parse_label(arm)
    names = {base, COST_ALIASES.get(base, base)}
    models = COST_MODELS.get(row, DEFAULT_COST_MODELS)
    ratios = [float(r["train_step_ratio"]) for r in overhead.get("rows", [])
              if r.get("model") in models and r.get("norm") in names]  # fmt: skip
    return float(np.mean(ratios)) if ratios else None


def _build_row(
    name: str, cells: _RowCells, spec: MatrixSpec, overhead: Mapping[str, Any] | None
) -> MatrixRow:
    rl = ROW_CELLS[name][0] == "rl"
    scale = DIFFERENCE if rl else PROBABILITY
    source = cells.normalized if rl else cells.oriented
    row = MatrixRow(name, "normalized score − none's" if rl else "P(arm > none) − 0.5",
                    tuple(dict.fromkeys(cells.tasks)), left_out=cells.left_out)  # fmt: skip
    present = [c for c in spec.columns if any(c in cell for cell in source)]
    for arm in present:
        if arm == NONE:
            effects = np.zeros(len(row.tasks))
        else:
            te = task_effects(source, cells.tasks, [arm], [NONE], scale)
            effects = te.estimates - te.null
        if not len(effects):
            continue
        low, high = _interval(effects)
        entry = MatrixEntry(
            arm,
            len(effects),
            float(np.median(effects)),
            low,
            high,
            cost=_cost(name, arm, overhead),
            row_tasks=len(row.tasks),
        )
        if rl and any(cells.auc):
            if arm == NONE:
                entry.auc = 0.0 if any(NONE in c for c in cells.auc) else None
            else:
                auc = task_effects(cells.auc, cells.tasks, [arm], [NONE], DIFFERENCE).estimates
                entry.auc = float(np.median(auc)) if len(auc) else None
        row.entries[arm] = entry
    _mark_best(row, cells, spec)
    return row


def _mark_best(row: MatrixRow, cells: _RowCells, spec: MatrixSpec) -> None:
    """★ on the highest median (first in column order on ties); ≈ where P(best > arm)'s 95% interval over tasks
    reaches down to 0.5 + margin."""
    if not row.entries:
        return
    best = max(row.entries.values(), key=lambda e: e.median)
    best.best = True
    for entry in row.entries.values():
        if entry is best:
            continue
        te = task_effects(cells.oriented, cells.tasks, [best.arm], [entry.arm], PROBABILITY)
        if not len(te.estimates):
            continue
        low, high = _interval(te.estimates)
        entry.p_best = (float(np.mean(te.estimates)), low, high)
        entry.tied = low <= 0.5 + spec.margin


def build_matrix(inputs: Inputs, registry: Any, spec: MatrixSpec | None = None) -> Matrix | None:
    """The practitioner's matrix of the inputs under the registry's ``matrix`` section; ``None`` when the registry
    has none. Rows without any cell are left out."""
    spec = spec or matrix_spec(registry)
    if spec is None:
        return None
    collected = _collect(matrix_records(inputs, registry), spec)
    overhead = inputs.bench.get("overhead")
    rows = [_build_row(name, cells, spec, overhead) for name, cells in collected.items() if cells.tasks]
    return Matrix(spec, [r for r in rows if r.entries])
