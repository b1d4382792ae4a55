"""What a suite has cost and what the rest of it will cost, per cell, from its own records: the table
``wnbench run --dry-run`` prints, so that a long sweep is planned (and checked against its plan) before it runs.

Spent: the run processes' own CPU time (``timings.cpu_s``, one torch thread each) of every stored record of the
suite's runs, failed and timed-out ones too. To run: each run without a finished record at the mean CPU time of
its arm's finished runs (same cell, norm and params), else of its cell's (any arm): the CPU-hours a quiet machine
would spend, not wall time. A cell with no finished run has no estimate; probe it (``--only``) first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .store import is_done


@dataclass
class CellCost:
    """One cell (task/algo at one budget): runs done and CPU-hours spent, runs to do and their estimate."""

    name: str
    done: int = 0
    spent_h: float = 0.0
    to_run: int = 0
    estimate_h: float = 0.0
    unestimated: int = 0  # runs to do with no finished run in their cell to estimate from


def cell_name(task: str, algo: str, steps: Any) -> str:
    """A cell's name, as the report's compute table writes it."""
    return f"{task}/{algo}" + (f" [steps={steps}]" if steps else "")


def _cpu_s(record: Mapping[str, Any] | None) -> float | None:
    cpu = ((record or {}).get("timings") or {}).get("cpu_s")
    return float(cpu) if isinstance(cpu, int | float) else None


def plan_cost(rows: Sequence[tuple[Any, Mapping[str, Any] | None]]) -> list[CellCost]:
    """Per cell, in the suite's order: ``rows`` as :func:`wnbench.suite.plan` gives them (run, record or None)."""
    cells: dict[str, CellCost] = {}
    by_arm: dict[tuple[str, str, str], list[float]] = {}
    by_cell: dict[str, list[float]] = {}
    pending = []
    for run, record in rows:
        name = cell_name(run.task, run.algo, (run.budget or {}).get("steps"))
        arm = (name, run.norm_label, json.dumps(run.params, sort_keys=True, default=str))
        cell = cells.setdefault(name, CellCost(name))
        cpu = _cpu_s(record)
        if cpu is not None:
            cell.spent_h += cpu / 3600.0
        if is_done(record):  # a failed or timed-out run stopped early: its time is spent, not a run's cost
            cell.done += 1
            if cpu is not None:
                by_arm.setdefault(arm, []).append(cpu)
                by_cell.setdefault(name, []).append(cpu)
        else:
            pending.append((cell, arm))
    for cell, arm in pending:
        cell.to_run += 1
        seen = by_arm.get(arm) or by_cell.get(cell.name)
        if seen:
            cell.estimate_h += sum(seen) / len(seen) / 3600.0
        else:
            cell.unestimated += 1
    return list(cells.values())


def cost_lines(costs: Sequence[CellCost]) -> list[str]:
    """The dry run's CPU-hours table as text lines, with the totals last."""
    width = max((len(c.name) for c in costs), default=4)
    lines = [
        "CPU-hours per cell (spent: the records' timings.cpu_s; to run: each run at its arm's mean, else its "
        "cell's):",
        f"  {'cell':<{width}}  {'done':>5}  {'spent':>7}  {'to run':>6}  {'estimate':>8}",
    ]
    for c in costs:
        estimate = f"{c.estimate_h:8.2f}" + (
            f"  ({c.unestimated} without an estimate)" if c.unestimated else ""
        )
        lines.append(f"  {c.name:<{width}}  {c.done:>5}  {c.spent_h:7.2f}  {c.to_run:>6}  {estimate}")
    spent = sum(c.spent_h for c in costs)
    estimate = sum(c.estimate_h for c in costs)
    unestimated = sum(c.unestimated for c in costs)
    total = f"total: {spent:.2f} CPU-h spent, about {estimate:.2f} CPU-h to run"
    if unestimated:
        total += f", and {unestimated} runs in cells with no finished run (probe them first)"
    lines.append(total)
    return lines
